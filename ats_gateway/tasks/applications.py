"""Delivery of queued applications: a self-rescheduling drain task over the outbox.

The outbox in Redis, not the Celery message, is the source of truth: a drain task only says
"look at the queue". So a lost or duplicated task message costs at most a delay or an idle
run, never an application. Intake schedules a drain after the micro-batch window
(``delivery_window_seconds``, so submissions arriving together travel together); a drain that
leaves work behind (backoff, leases of a dead worker) schedules the next one for when it is
due; a worker that starts schedules one at once, which picks up whatever a killed worker left.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready

from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.redis_clients import build_redis
from ats_gateway.services.applications.runtime import KIND
from ats_gateway.tasks.drain import (
    drain_on_worker_start,
    run_drain,
    schedule_drain,
    sweep_schedule,
    task_name,
)

log = logging.getLogger(__name__)

TASK = task_name(KIND)
SWEEP_SECONDS = 30.0


def schedule_delivery(
    settings: Settings, redis_client: redis.Redis, delay: float | None = None
) -> bool:
    """Make sure a drain runs within ``delay`` seconds (default: the micro-batch window, so
    submissions arriving together travel together). Needs the Flask app context."""
    delay = settings.delivery_window_seconds if delay is None else delay
    return schedule_drain(KIND, redis_client, delay)


@shared_task(name=TASK, ignore_result=True)
def drain_applications() -> dict[str, Any]:
    """Deliver what is due in micro-batches, then schedule the next run if work remains."""
    found = services()
    return run_drain(
        KIND,
        found.redis,
        found.applications_outbox,
        found.applications_deliverer,
        batch_size=found.settings.delivery_batch_size,
        window=found.settings.delivery_window_seconds,
        pacer=found.pacer if found.settings.delivery_paced else None,
        max_seconds=found.settings.drain_max_seconds,
    )


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """A safety net under the self-rescheduling drains: a worker that died holding the next
    drain's timer (Celery keeps ETA tasks in the worker) would otherwise leave retries waiting
    for the broker's visibility timeout."""
    return sweep_schedule(KIND, SWEEP_SECONDS)


@worker_ready.connect
def _drain_on_start(sender: Any = None, **_: Any) -> None:
    drain_on_worker_start(KIND, sender)


# ---------------------------------------------------------------------------------- CLI

DLQ_HELP = """Dead letters: deliveries the org refused for good (validation rule, permission...).

  ats-gateway dlq list [--kind applications] [--json]
  ats-gateway dlq show ID
  ats-gateway dlq replay ID | --all      (after fixing the cause in the org)
  ats-gateway dlq drop ID                (forget its data; the failed status stays)
"""


def add_commands(sub: Any) -> None:
    """Register ``ats-gateway dlq list | show ID | replay ID|--all | drop ID``."""
    import argparse

    dlq = sub.add_parser(
        "dlq",
        help="list, show, replay or drop dead-lettered deliveries",
        description=DLQ_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dlq.set_defaults(handler=lambda args: (dlq.print_help(), 2)[1])
    dlq_sub = dlq.add_subparsers(title="dlq commands", metavar="ACTION")

    def common(parser: Any) -> Any:
        parser.add_argument("--kind", default=KIND, help="outbox kind (default: applications)")
        parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    listing = common(dlq_sub.add_parser("list", help="dead letters, oldest first"))
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(handler=cmd_dlq_list)
    show = common(dlq_sub.add_parser("show", help="one item's status and the org's reason"))
    show.add_argument("id")
    show.set_defaults(handler=cmd_dlq_show)
    replay = common(dlq_sub.add_parser("replay", help="queue dead letters again"))
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?")
    target.add_argument("--all", action="store_true", help="every dead letter of the kind")
    replay.set_defaults(handler=cmd_dlq_replay)
    drop = common(dlq_sub.add_parser("drop", help="remove a dead letter and its data"))
    drop.add_argument("id")
    drop.set_defaults(handler=cmd_dlq_drop)


def _cli_outbox(args: Any, settings: Settings | None = None) -> tuple[Settings, Any]:
    from ats_gateway.services.delivery import Outbox

    settings = settings or Settings.from_env()
    client = build_redis(settings, socket_connect_timeout=5)
    return settings, Outbox.from_settings(client, args.kind, settings)


def _print(args: Any, value: Any, text: str) -> None:
    import json
    import sys

    sys.stdout.write((json.dumps(value, indent=2, default=str) if args.json else text) + "\n")


def _line(record: dict[str, Any]) -> str:
    error = record.get("error") or {}
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.get("updated_at", 0)))
    reason = error.get("reason") or error.get("message") or ""
    dropped = " (dropped)" if record.get("dropped_at") else ""
    where = error.get("object", "")
    if error.get("org_fields"):
        where += "." + ",".join(error["org_fields"])
    where = f"  [{where}]" if where else ""
    return f"{record['id']}  {when}Z  {error.get('code', '')}{where}  {reason}{dropped}"


def cmd_dlq_list(args: Any, settings: Settings | None = None) -> int:
    _, outbox = _cli_outbox(args, settings)
    records = outbox.dead_letters(limit=args.limit)
    text = "\n".join(_line(r) for r in records) or "no dead letters"
    _print(args, records, text)
    return 0


def cmd_dlq_show(args: Any, settings: Settings | None = None) -> int:
    _, outbox = _cli_outbox(args, settings)
    record = outbox.get(args.id)
    if record is None:
        _print(args, {"error": "not found"}, f"no item {args.id}")
        return 1
    import json

    _print(args, record, json.dumps(record, indent=2, default=str))
    return 0


def cmd_dlq_replay(args: Any, settings: Settings | None = None) -> int:
    settings, outbox = _cli_outbox(args, settings)
    count = outbox.replay_all() if args.all else int(outbox.replay(args.id))
    if count:
        _schedule_from_cli(settings, args.kind)
    _print(args, {"replayed": count}, f"replayed {count}")
    return 0 if count or args.all else 1


def cmd_dlq_drop(args: Any, settings: Settings | None = None) -> int:
    _, outbox = _cli_outbox(args, settings)
    ok = outbox.drop(args.id)
    _print(args, {"dropped": ok}, "dropped" if ok else f"{args.id} is not a dead letter")
    return 0 if ok else 1


def _schedule_from_cli(settings: Settings, kind: str) -> None:
    """Outside a worker: ask the workers to drain ``kind`` now (``ats_gateway.<kind>.drain``).

    A bare Celery client on the broker is enough to send a task by name (and keeps the tasks
    layer from importing the app factory)."""
    from ats_gateway.tasks.queues import broker_client

    client = broker_client(settings)
    try:
        client.send_task(task_name(kind))
    finally:
        client.close()
