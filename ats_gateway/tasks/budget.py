"""``ats-gateway budget``: the org's API budget and the delivery forecast, as /readyz shows it.

Reads Redis only (the usage the org reported last, our own spend by purpose, the queue): it
makes no org call, so running it costs nothing of the budget it reports.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import redis

from ats_gateway.config import Settings
from ats_gateway.redis_clients import build_redis

HELP = """The gateway's share of the org's daily API limit and the delivery forecast:
calls spent in the last 24 h by purpose, the ceiling, the current delivery wait and when the
queue will be delivered at the current pace. Makes no org call."""


def add_commands(sub: Any) -> None:
    budget = sub.add_parser("budget", help="API budget: spend by purpose, ceiling, forecast")
    budget.description = HELP
    budget.add_argument("--json", action="store_true", help="print JSON")
    budget.set_defaults(handler=cmd_budget)


def forecast(settings: Settings) -> dict[str, Any]:
    from ats_gateway.connections import Connections
    from ats_gateway.services.applications.runtime import CONNECTION, KIND
    from ats_gateway.services.delivery import Outbox
    from ats_gateway.services.pacing import build_pacer

    client = build_redis(settings, socket_connect_timeout=5)
    org = Connections(settings, client).client(CONNECTION)
    outbox = Outbox.from_settings(client, KIND, settings)
    return build_pacer(settings, client, org).forecast(outbox)


def render(f: dict[str, Any]) -> str:
    d = f["delivery"]
    lines = []
    if f["org"] is None:
        lines.append("org: not logged in yet (no call made); figures appear after the first")
    else:
        paused = "  ** PAUSED: the org is near its own limit **" if f["paused_by_org"] else ""
        lines.append(
            f"org {f['org']}: {_n(f['org_used'])} of {_n(f['org_limit'])} calls used "
            f"(reserve {_n(f['org_reserve'])}){paused}"
        )
    spent = f["spent_24h"]
    lines.append(
        f"ceiling: {_n(f['ceiling'])} calls / 24 h ({f['ceiling_source']}); "
        f"spent {spent['all']:,}, left {_n(f['ceiling_left'])}"
    )
    lines.append(
        "spent in the last 24 h: " + ", ".join(f"{k} {v:,}" for k, v in spent.items() if k != "all")
    )
    rate = f["pace_calls_per_second"]
    pace = f"{rate:.4f} calls/s" if rate else "unknown"
    lines.append(f"pace: {pace}; a delivery batch costs ~{f['batch_cost']} calls")
    oldest = d["oldest_wait_seconds"]
    waited = f", oldest waiting {oldest:.0f} s" if oldest is not None else ""
    lines.append(f"delivery: {d['queued']:,} queued ({d['due']:,} due{waited}); {d['decision']}")
    if d["wait_seconds"] is not None and d["due"]:
        wait, bound = d["wait_seconds"], d["max_wait_seconds"]
        lines.append(f"  next batch in {wait:.0f} s (max wait {bound:.0f} s)")
    if d["eta"] is not None:
        lines.append(f"  queue delivered by {d['eta']} (in {d['eta_seconds']:.0f} s)")
    elif d["queued"]:
        lines.append("  queue delivered: unknown (paused until the org has calls again)")
    return "\n".join(lines)


def cmd_budget(args: Any, settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    try:
        f = forecast(settings)
    except redis.RedisError as exc:
        sys.stderr.write(f"cannot read the budget from Redis ({type(exc).__name__})\n")
        return 1
    sys.stdout.write((json.dumps(f, indent=2) if args.json else render(f)) + "\n")
    return 0


def _n(value: Any) -> str:
    return "?" if value is None else f"{value:,}"
