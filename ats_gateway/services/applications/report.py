"""`ats-gateway report sources --since 7d`: applications by source and job, from the status
records the gateway keeps in Redis (30 days; no candidate data, no org call).

Each application's status record carries the ``source`` label and ``job_id`` written at intake
(see :mod:`ats_gateway.services.applications.sources`); applications accepted before source
attribution existed count as ``(none)``. Refused submissions (422, 409) are not counted: they
never became applications. Failed deliveries are counted with their status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from collections import Counter
from typing import Any

from ats_gateway.printable import escape_nonprintable
from ats_gateway.services.applications.sources import UNKNOWN
from ats_gateway.services.delivery import Outbox

_SINCE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``2w``, ``90s``."""
    match = _SINCE.match(text.strip().lower())
    if not match:
        raise ValueError(f"--since {text!r}: use a number and one of s m h d w, e.g. 7d")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def count_sources(
    outbox: Outbox, *, since: dt.timedelta, now: float | None = None
) -> list[dict[str, Any]]:
    """``[{source, job_id, applications, delivered}]``, most applications first."""
    cutoff = (time.time() if now is None else now) - since.total_seconds()
    counts: Counter[tuple[str, str]] = Counter()
    delivered: Counter[tuple[str, str]] = Counter()
    fields = ("created_at", "source", "job_id", "status")
    keys = list(outbox.redis.scan_iter(match=outbox.item_key("*"), count=1000))
    for start in range(0, len(keys), 500):
        pipe = outbox.redis.pipeline(transaction=False)
        for key in keys[start : start + 500]:
            pipe.hmget(key, *fields)
        for created, source, job, status in pipe.execute():
            if created is None or float(created) < cutoff:
                continue
            group = (source.decode() if source else UNKNOWN, job.decode() if job else "")
            counts[group] += 1
            if status in (b"delivered", b"duplicate"):
                delivered[group] += 1
    return [
        {"source": s, "job_id": j, "applications": n, "delivered": delivered[(s, j)]}
        for (s, j), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def add_commands(sub: Any) -> None:
    report = sub.add_parser("report", help="reports from the gateway's own records")
    report_sub = report.add_subparsers(title="reports", metavar="REPORT")
    report.set_defaults(handler=lambda args: (report.print_help(), 2)[1])
    sources = report_sub.add_parser(
        "sources", help="applications by source and job (from the status records)"
    )
    sources.add_argument("--since", default="7d", help="how far back, e.g. 7d, 24h (default 7d)")
    sources.add_argument("--json", action="store_true", help="print JSON")
    sources.set_defaults(handler=cmd_sources)


def cmd_sources(args: argparse.Namespace) -> int:
    from ats_gateway.config import Settings
    from ats_gateway.redis_clients import build_redis
    from ats_gateway.services.applications.runtime import KIND

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    settings = Settings.from_env()
    client = build_redis(settings, socket_connect_timeout=5)
    rows = count_sources(Outbox.from_settings(client, KIND, settings), since=since)
    if args.json:
        print(json.dumps({"since": args.since, "rows": rows}))
        return 0
    # Sources are client text: each value escaped whole, newlines included, so a source
    # cannot forge a report line ([21]); `ats-gateway` escapes the rest of its output too.
    rows = [
        {
            **row,
            "source": escape_nonprintable(row["source"]),
            "job_id": escape_nonprintable(row["job_id"]),
        }
        for row in rows
    ]
    by_source: Counter[str] = Counter()
    for row in rows:
        by_source[row["source"]] += row["applications"]
    print(f"applications since {args.since}: {sum(by_source.values())}")
    for source, n in by_source.most_common():
        print(f"  {source:<24} {n:>7}")
    print()
    print(f"  {'source':<24} {'job':<18} {'applications':>12} {'delivered':>9}")
    for row in rows:
        print(
            f"  {row['source']:<24} {row['job_id']:<18} "
            f"{row['applications']:>12} {row['delivered']:>9}"
        )
    return 0
