"""`ats-gateway schemas pull --connection NAME` and `ats-gateway doctor`.

schemas pull   describes every object the connection uses, from the real org, and writes
               them to schemas/objects/*.json (stable formatting, readable diffs)
doctor         the permission preflight: each connection's describe flags against what its
               endpoints need; names connection, permission set, object and operation;
               exits 1 when a grant is missing, 2 when the org could not be checked
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ats_gateway.config import Settings, linkedin_feed_missing
from ats_gateway.metadata.contracts import (
    load_connections,
    load_contracts,
    referenced_objects,
)
from ats_gateway.metadata.describe import dump_snapshot, snapshot_path

#: settings -> client for a connection name (tests swap it)
ClientFactory = Callable[[Settings, str], Any]


def _default_client(settings: Settings, name: str) -> Any:
    from ats_gateway.connections import Connections
    from ats_gateway.redis_clients import build_redis

    return Connections(settings, build_redis(settings)).client(name)


def add_commands(sub: argparse._SubParsersAction) -> None:
    schemas = sub.add_parser(
        "schemas",
        help="describe snapshots (schemas/objects)",
        description="Work with the describe snapshots the gateway falls back on offline.",
    )
    schemas_sub = schemas.add_subparsers(title="schemas commands", metavar="ACTION")
    schemas.set_defaults(handler=lambda args: (schemas.print_help(), 2)[1])
    pull = schemas_sub.add_parser(
        "pull",
        help="write fresh snapshots from a real org",
        description="Describe each object the connection uses and write "
        "schemas/objects/<object>.json with stable formatting.",
    )
    pull.add_argument("--connection", required=True, help="e.g. job_portal")
    pull.add_argument(
        "--object",
        action="append",
        dest="objects",
        default=[],
        help="describe only this object (repeatable); default: every object the "
        "connection's resources and endpoints use",
    )
    pull.add_argument("--dir", default=None, help="schemas folder (default: settings)")
    pull.set_defaults(handler=cmd_pull)

    doctor = sub.add_parser(
        "doctor",
        help="check each connection's permissions against what its endpoints need",
        description="Describe every object each configured connection needs and compare its "
        "flags (queryable, createable, updateable) with the gateway's needs. Exit 0 when all "
        "is granted, 1 when something is missing, 2 when the org could not be checked.",
    )
    doctor.add_argument("--connection", action="append", default=[], help="only this one")
    doctor.add_argument("--json", action="store_true", help="print findings as JSON")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_pull(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    client_factory: ClientFactory = _default_client,
    out: Any = None,
) -> int:
    out = out or sys.stdout
    settings = settings or Settings.from_env()
    schemas_dir = args.dir or settings.schemas_dir
    name = args.connection
    if name not in settings.connections or not settings.connections[name].configured:
        print(
            f"connection {name!r} is not configured (set ATS_GATEWAY_{name.upper()}_LOGIN_URL, "
            "_CLIENT_ID, ...)",
            file=sys.stderr,
        )
        return 2
    objects = args.objects or [
        obj
        for conn, obj in referenced_objects(
            load_contracts(schemas_dir).values(), load_connections(schemas_dir)
        )
        if conn == name
    ]
    client = client_factory(settings, name)
    failed = 0
    for sobject in objects:
        try:
            describe = client.describe(sobject)
        except Exception as exc:
            print(f"{sobject}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        path = snapshot_path(schemas_dir, sobject)
        text = dump_snapshot(describe)
        before = path.read_text(encoding="utf-8") if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        state = "new" if before is None else ("unchanged" if before == text else "updated")
        print(
            f"{sobject}: {state} ({len(describe.get('fields') or [])} fields) -> {path}", file=out
        )
    return 1 if failed else 0


def board_setting_problems(settings: Settings) -> list[tuple[str, str]]:
    """[22] ``(setting, sentence)`` for each setting a board's feed lacks while the feed is on
    (the LinkedIn feed answers 503 until they are set); none while it is off."""
    if not settings.feed_key_linkedin:
        return []
    missing = linkedin_feed_missing(settings.linkedin_company_id, settings.linkedin_poster_email)
    return [
        (
            name,
            f"setting {name}: LinkedIn requires it on every job; /feeds/linkedin.xml answers 503 "
            "until it is set"
            + (" (the numeric id of the company's LinkedIn Page)" if "COMPANY" in name else ""),
        )
        for name in missing
    ]


def cmd_doctor(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    metadata: Any = None,
    out: Any = None,
) -> int:
    from ats_gateway.metadata import build_metadata
    from ats_gateway.metadata.preflight import MISSING, UNVERIFIED, gateway_key_findings

    out = out or sys.stdout
    settings = settings or Settings.from_env()
    if metadata is None:
        from ats_gateway.redis_clients import build_redis

        metadata = build_metadata(settings, build_redis(settings))
    wanted = set(args.connection or metadata.connections)
    unknown = wanted - set(metadata.connections)
    if unknown:
        print(f"unknown connection(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    findings = [f for f in metadata.preflight(verify=True) if f.connection in wanted]
    findings += [  # the External IDs exactly-once delivery upserts by (ATS_Gateway_Id__c)
        f
        for f in gateway_key_findings(
            metadata.connections, metadata.cache.get, metadata.permission_sets
        )
        if f.connection in wanted
    ]
    unset = board_setting_problems(settings)
    if args.json:
        rows = [f.as_dict() for f in findings]
        rows += [{"setting": name, "state": MISSING, "sentence": text} for name, text in unset]
        print(json.dumps(rows, indent=2), file=out)
    else:
        for f in findings:
            mark = {"ok": "ok     ", MISSING: "MISSING", UNVERIFIED: "UNKNOWN"}[f.state]
            print(f"{mark} {f.sentence}", file=out)
        for _, text in unset:
            print(f"MISSING {text}", file=out)
    missing = sum(f.state == MISSING for f in findings) + len(unset)
    unverified = sum(f.state == UNVERIFIED for f in findings)
    checks = len(findings) + len(unset)
    print(
        f"{checks} checks: {checks - missing - unverified} ok, {missing} missing, "
        f"{unverified} not verified",
        file=out,
    )
    if missing:
        return 1
    return 2 if unverified else 0
