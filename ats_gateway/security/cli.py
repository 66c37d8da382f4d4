"""`ats-gateway keys create|list|revoke`: API keys in the gateway's Redis (ATS_GATEWAY_REDIS_URL).

    ats-gateway keys create --kind publishable --name "Career site" \\
        --scope jobs:read --scope applications:write --origin https://careers.example.com
    ats-gateway keys create --kind secret --name "Job board X" --scope applications:write \\
        --rate-limit 100/minute
    ats-gateway keys list [--active] [--json]
    ats-gateway keys revoke <id or pk_id/sk_id prefix>

The plaintext key is printed once, at creation; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ats_gateway.config import Settings
from ats_gateway.redis_clients import build_redis
from ats_gateway.security.keys import (
    PUBLISHABLE,
    SCOPES,
    SECRET,
    ApiKey,
    InvalidKeySpec,
    KeyStore,
)
from ats_gateway.services.webhooks import EndpointRegistry


def add_commands(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="Manage API keys (publishable pk_... for browsers, secret sk_... for "
        "servers). The plaintext is shown once, at creation.",
    )
    keys_sub = keys.add_subparsers(title="keys commands", metavar="ACTION")
    keys.set_defaults(handler=lambda args: (keys.print_help(), 2)[1])

    create = keys_sub.add_parser("create", help="issue a key and print it once")
    create.add_argument("--kind", choices=[PUBLISHABLE, SECRET], required=True)
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        required=True,
        dest="scopes",
        help="repeatable",
    )
    create.add_argument(
        "--origin",
        action="append",
        default=[],
        dest="origins",
        help="allowed browser origin (publishable keys; repeatable), e.g. https://careers.x.com",
    )
    create.add_argument("--rate-limit", default="", help='own limit, e.g. "100/minute"')
    create.add_argument(
        "--source", default="", help='default source of its applications, e.g. "Job Board"'
    )
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=cmd_create)

    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--active", action="store_true", help="hide revoked keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    revoke = keys_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key", help="key id, or its pk_<id> / sk_<id> prefix")
    revoke.set_defaults(handler=cmd_revoke)


def _store() -> KeyStore:
    settings = Settings.from_env()
    return KeyStore(build_redis(settings, socket_connect_timeout=5))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts)) if ts else "-"


def cmd_create(args: argparse.Namespace) -> int:
    try:
        key, plaintext = _store().create(
            kind=args.kind,
            name=args.name,
            scopes=args.scopes,
            origins=args.origins,
            rate_limit=args.rate_limit,
            source=args.source,
        )
    except InvalidKeySpec as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**key.to_public_dict(), "key": plaintext}))
    else:
        print(f"created {key.kind} key {key.prefix} ({key.name})")
        print(f"  scopes:  {', '.join(sorted(key.scopes))}")
        if key.origins:
            print(f"  origins: {', '.join(key.origins)}")
        if key.rate_limit:
            print(f"  limit:   {key.rate_limit}")
        print()
        print(f"  {plaintext}")
        print()
        print("Store it now: it is shown only this once (the gateway keeps a hash).")
    return 0


def _row(key: ApiKey) -> str:
    state = "revoked " + _when(key.revoked_at) if key.revoked_at else "active"
    return (
        f"{key.prefix:<20} {key.kind:<11} {state:<28} {key.name!r} "
        f"scopes={','.join(sorted(key.scopes))}"
        + (f" origins={','.join(key.origins)}" if key.origins else "")
        + (f" limit={key.rate_limit}" if key.rate_limit else "")
    )


def cmd_list(args: argparse.Namespace) -> int:
    keys = _store().list(include_revoked=not args.active)
    if args.json:
        print(json.dumps([k.to_public_dict() for k in keys]))
        return 0
    if not keys:
        print("no keys")
    for key in keys:
        print(_row(key))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    key_id = args.key
    for prefix in ("pk_", "sk_"):
        if key_id.startswith(prefix):
            key_id = key_id[len(prefix) :].split("_", 1)[0]
    key = _store().revoke(key_id)
    if key is None:
        print(f"error: no key {args.key!r}", file=sys.stderr)
        return 1
    print(f"revoked {key.prefix} ({key.name}) at {_when(key.revoked_at)}")
    # [19] its webhook endpoints stop with it (they kept receiving, and the revoked key could
    # no longer list or delete them)
    stopped = EndpointRegistry(_store().redis).disable_owner(
        f"key:{key.id}", f"the key {key.prefix} was revoked at {_when(key.revoked_at)}"
    )
    if stopped:
        print(f"disabled its {len(stopped)} webhook endpoint(s): {', '.join(stopped)}")
    return 0
