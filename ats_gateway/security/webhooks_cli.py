"""`ats-gateway webhooks ...`: endpoints and their dead letters, for operators.

The key is named as ``keys list`` prints it (``sk_<id>``; the bare id and the whole plaintext
key work too). An unknown, revoked or publishable key is refused: an endpoint stored under a
key id that never submits anything would never receive an event ([19]: ``--key sk_demosk``
stored the endpoint under ``key:sk_demosk`` while the key's applications carry
``key:demosk``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ats_gateway.config import Settings
from ats_gateway.redis_clients import build_redis
from ats_gateway.security.keys import KeyStore
from ats_gateway.services.webhooks import WebhooksRuntime, build_webhooks
from ats_gateway.tasks.webhooks import SEND_TASK

HELP = """Webhook endpoints and their dead letters.

  ats-gateway webhooks add --key sk_ID --url URL [--event TYPE ...]    (prints the secret once)
  ats-gateway webhooks list [--key sk_ID] [--json]
  ats-gateway webhooks remove ENDPOINT_ID
  ats-gateway webhooks test ENDPOINT_ID            (queues a signed webhook.test event)
  ats-gateway webhooks dlq list [--json]
  ats-gateway webhooks dlq replay ENDPOINT_ID EVENT_ID | --all
"""


def add_commands(sub: Any) -> None:
    import argparse

    from ats_gateway.services.webhooks import EVENT_TYPES

    hooks = sub.add_parser(
        "webhooks",
        help="manage webhook endpoints and their dead letters",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hooks.set_defaults(handler=lambda args: (hooks.print_help(), 2)[1])
    actions = hooks.add_subparsers(title="webhooks commands", metavar="ACTION")
    add = actions.add_parser("add", help="register an endpoint for a key")
    add.add_argument(
        "--key", required=True, help="the key as `keys list` prints it (sk_<id>): its events"
    )
    add.add_argument("--url", required=True)
    add.add_argument("--event", action="append", choices=EVENT_TYPES, dest="events")
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="endpoints, oldest first")
    listing.add_argument("--key")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    remove = actions.add_parser("remove", help="delete an endpoint")
    remove.add_argument("id")
    remove.set_defaults(handler=cmd_remove)
    test = actions.add_parser("test", help="send a signed webhook.test event")
    test.add_argument("id")
    test.set_defaults(handler=cmd_test)
    dlq = actions.add_parser("dlq", help="dead-lettered events")
    dlq.set_defaults(handler=lambda args: (dlq.print_help(), 2)[1])
    dlq_actions = dlq.add_subparsers(title="dlq commands", metavar="ACTION")
    dlq_list = dlq_actions.add_parser("list", help="dead letters of every endpoint")
    dlq_list.add_argument("--json", action="store_true")
    dlq_list.set_defaults(handler=cmd_dlq_list)
    replay = dlq_actions.add_parser("replay", help="queue dead letters again")
    replay.add_argument("endpoint", nargs="?")
    replay.add_argument("event", nargs="?")
    replay.add_argument("--all", action="store_true")
    replay.set_defaults(handler=cmd_dlq_replay)


def _cli_runtime(settings: Settings | None) -> WebhooksRuntime:
    """The CLI's webhooks pieces, from the same builder the composition root uses (the CLI
    needs no app: building them all would mean connections, metadata and the rest)."""
    from ats_gateway.services.delivery import Outbox

    settings = settings or Settings.from_env()
    client = build_redis(settings, socket_connect_timeout=5)
    return build_webhooks(settings, client, Outbox.from_settings(client, "applications", settings))


def _send_from_cli(settings: Settings, endpoint_ids: Sequence[str]) -> None:
    """Ask the workers to send now (a bare Celery client on the broker sends by name)."""
    from ats_gateway.tasks.queues import broker_client

    client = broker_client(settings)  # [19] routed to the webhooks queue
    try:
        for endpoint_id in endpoint_ids:
            client.send_task(SEND_TASK, args=[endpoint_id])
    finally:
        client.close()


def _out(text: str) -> None:
    import sys

    sys.stdout.write(text + "\n")


def key_id(text: str) -> str:
    """The key id in ``sk_<id>`` / ``pk_<id>`` (as ``keys list`` prints it), a whole key
    ``sk_<id>_<secret>``, or a bare id."""
    for prefix in ("pk_", "sk_"):
        if text.startswith(prefix):
            return text[len(prefix) :].split("_", 1)[0]
    return text


def cmd_add(args: Any, settings: Settings | None = None) -> int:
    from ats_gateway.services.webhooks import InvalidEndpoint

    hooks = _cli_runtime(settings)
    key = KeyStore(hooks.redis).get(key_id(args.key))
    if key is None:
        _out(f"error: --key: no key {args.key!r} (see `ats-gateway keys list`)")
        return 2
    if not key.active:
        _out(f"error: --key: the key {key.prefix} is revoked")
        return 2
    if key.publishable:
        _out(f"error: --key: {key.prefix} is a publishable key; webhooks are for secret keys")
        return 2
    try:
        endpoint = hooks.registry.create(f"key:{key.id}", args.url, args.events)
    except InvalidEndpoint as exc:
        _out(f"error: {exc.field}: {exc.message}")
        return 2
    _out(f"{endpoint.id}  {endpoint.url}  {' '.join(sorted(endpoint.events))}")
    _out(f"secret (shown once): {endpoint.secret}")
    return 0


def cmd_list(args: Any, settings: Settings | None = None) -> int:
    import json

    hooks = _cli_runtime(settings)
    endpoints = hooks.registry.list(f"key:{key_id(args.key)}" if args.key else None)
    if args.json:
        _out(json.dumps([{**e.to_public_dict(), "owner": e.owner} for e in endpoints], indent=2))
    else:
        lines = [
            f"{e.id}  {e.owner}  {e.url}  {' '.join(sorted(e.events))}"
            + ("" if e.active else f"  disabled: {e.disabled_reason}")
            for e in endpoints
        ]
        _out("\n".join(lines) or "no endpoints")
    return 0


def cmd_remove(args: Any, settings: Settings | None = None) -> int:
    hooks = _cli_runtime(settings)
    ok = hooks.registry.remove(args.id)
    hooks.forget(args.id)
    _out("removed" if ok else f"no endpoint {args.id}")
    return 0 if ok else 1


def cmd_test(args: Any, settings: Settings | None = None) -> int:
    import json
    import uuid

    from ats_gateway.services.webhooks.events import iso

    hooks = _cli_runtime(settings)
    if hooks.registry.get(args.id) is None:
        _out(f"no endpoint {args.id}")
        return 1
    message_id = "msg_" + uuid.uuid4().hex
    body = json.dumps(
        {"type": "webhook.test", "timestamp": iso(time.time()), "data": {"endpoint_id": args.id}},
        separators=(",", ":"),
    )
    hooks.queue(args.id).put({"type": "webhook.test", "body": body}, item_id=message_id)
    _send_from_cli(hooks.settings, [args.id])
    _out(f"queued {message_id}")
    return 0


def cmd_dlq_list(args: Any, settings: Settings | None = None) -> int:
    import json

    hooks = _cli_runtime(settings)
    rows = []
    for endpoint in hooks.registry.list():
        for record in hooks.queue(endpoint.id).dead_letters():
            rows.append({"endpoint_id": endpoint.id, **record})
    if args.json:
        _out(json.dumps(rows, indent=2, default=str))
    else:
        lines = [
            f"{r['endpoint_id']}  {r['id']}  {(r.get('error') or {}).get('code', '')}" for r in rows
        ]
        _out("\n".join(lines) or "no dead letters")
    return 0


def cmd_dlq_replay(args: Any, settings: Settings | None = None) -> int:
    hooks = _cli_runtime(settings)
    touched, count = [], 0
    if args.all:
        for endpoint in hooks.registry.list():
            n = hooks.queue(endpoint.id).replay_all()
            if n:
                touched.append(endpoint.id)
                count += n
    elif args.endpoint and args.event:
        if hooks.queue(args.endpoint).replay(args.event):
            touched.append(args.endpoint)
            count = 1
    else:
        _out("give ENDPOINT_ID EVENT_ID, or --all")
        return 2
    if touched:
        _send_from_cli(hooks.settings, touched)
    _out(f"replayed {count}")
    return 0 if count or args.all else 1
