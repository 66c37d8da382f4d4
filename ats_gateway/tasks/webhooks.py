"""Webhook delivery tasks: one self-rescheduling send task per endpoint, and a beat sweep.

Each endpoint has its own queue and its own task run (single flight per endpoint through the
queue's drain lock), so a receiver that times out holds back only its own events; the
applications drain only *enqueues* events (a few Redis calls), it never waits for a receiver.

* ``ats_gateway.webhooks.send(endpoint_id)``: send what is due, then schedule the next run
  for when the next retry is due (one timer per endpoint, as in ``tasks/drain.py``).
* ``ats_gateway.webhooks.sweep`` (beat): a timer lost with a dead worker is re-armed; the
  org's application status changes ([12]'s Redis stream) become ``application.status_changed``
  events.

The org's status changes are read from the stream [12]'s change-event subscriber appends to,
``ats:events:application_status`` (fields ``application_id``, ``org_status``, ``changed_at``
in epoch ms), from a cursor kept in Redis: a crash re-reads a few entries, and the stable
event ids make that harmless.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import redis
from celery import shared_task
from flask import current_app

from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.redis_clients import build_redis
from ats_gateway.services.delivery import KEY_PREFIX, drain
from ats_gateway.services.webhooks import WebhooksRuntime, build_webhooks, queue_kind

log = logging.getLogger(__name__)

SEND_TASK = "ats_gateway.webhooks.send"
SWEEP_TASK = "ats_gateway.webhooks.sweep"
STATUS_STREAM = "ats:events:application_status"  # [12] ApplicationStatusEvents.STREAM_KEY
STATUS_CURSOR = "ats-gateway:webhooks:status-cursor"
STATUS_LOCK = "ats-gateway:webhooks:status-lock"
STATUS_READ_COUNT = 500

# Schedule a run for `target` unless one is already due at or before it (tasks/drain.py).
_SCHEDULE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def _marker(endpoint_id: str) -> str:
    return f"{KEY_PREFIX}{queue_kind(endpoint_id)}:scheduled"


def runtime(app: Any = None) -> WebhooksRuntime:
    """This process's webhooks services (built in the composition root)."""
    return services(app).webhooks


def schedule_send(redis_client: redis.Redis, endpoint_id: str, delay: float = 0.0) -> bool:
    """Make sure the endpoint's send task runs within ``delay`` seconds (app context needed)."""
    delay = max(0.0, delay)
    target = time.time() + delay
    ttl_ms = int((delay + 30) * 1000)
    if not redis_client.eval(_SCHEDULE, 1, _marker(endpoint_id), repr(target), ttl_ms):
        return False
    current_app.extensions["celery"].send_task(SEND_TASK, args=[endpoint_id], countdown=delay)
    return True


def schedule_sends(redis_client: redis.Redis, endpoint_ids: Sequence[str]) -> None:
    for endpoint_id in endpoint_ids:
        schedule_send(redis_client, endpoint_id)


def send_due(hooks: WebhooksRuntime, endpoint_id: str) -> dict[str, Any]:
    """One run for one endpoint: deliver what is due; returns the drain report as a dict."""
    endpoint = hooks.registry.get(endpoint_id)
    if endpoint is None:
        return {"ran": False, "reason": "endpoint removed"}
    queue = hooks.queue(endpoint_id)
    hooks.redis.delete(_marker(endpoint_id))
    report = drain(
        queue,
        hooks.sender(endpoint),
        batch_size=hooks.settings.webhook_batch_size,
        max_seconds=30.0,
    )
    if report.next_run_in is not None:
        delay = report.next_run_in if report.ran else max(report.next_run_in, 1.0)
        schedule_send(hooks.redis, endpoint_id, delay)
    return {"ran": report.ran, "batches": report.batches, "outcomes": report.outcomes}


@shared_task(name=SEND_TASK, ignore_result=True)
def send_webhooks(endpoint_id: str) -> dict[str, Any]:
    return send_due(runtime(), endpoint_id)


def read_status_changes(hooks: WebhooksRuntime, *, count: int = STATUS_READ_COUNT) -> int:
    """Turn new entries of the org status stream into events; returns how many were read."""
    lock = hooks.redis.lock(STATUS_LOCK, timeout=60, blocking=False, thread_local=False)
    if not lock.acquire():
        return 0
    read = 0
    try:
        # First run: from the start of the (capped) stream. Starting "from now" lost every
        # change written between the subscriber's start and this first read (found by
        # bench/status_webhooks.py); an old change is sent late at worst, once, with its
        # stable webhook-id (the entry id), and only to the key that submitted it.
        cursor = hooks.redis.get(STATUS_CURSOR) or b"0-0"
        entries = hooks.redis.xread({STATUS_STREAM: cursor}, count=count) or []
        for _, rows in entries:
            for entry_id, fields in rows:
                values = {k.decode(): v.decode() for k, v in fields.items()}
                if values.get("application_id") and values.get("org_status") is not None:
                    hooks.publisher.on_application_status_changed(
                        values["application_id"],
                        values["org_status"],
                        int(values.get("changed_at") or 0) / 1000,
                        change_id=entry_id.decode(),
                    )
                hooks.redis.set(STATUS_CURSOR, entry_id)
                read += 1
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    return read


def on_application_status_changed(application_id: str, status: str, changed_at: float) -> None:
    """The consumer interface for the org's status changes (epoch seconds), for callers that
    do not go through the stream."""
    runtime().publisher.on_application_status_changed(application_id, status, changed_at)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> dict[str, Any]:
    """Read the org's status changes; re-arm the send timer of endpoints with due events."""
    hooks = runtime()
    changes = read_status_changes(hooks)
    armed = 0
    now = time.time()
    for endpoint in hooks.registry.list():
        due = hooks.queue(endpoint.id).next_due()
        if due is not None and not hooks.redis.exists(_marker(endpoint.id)):
            armed += schedule_send(hooks.redis, endpoint.id, max(0.0, due - now))
    return {"status_changes": changes, "armed": armed}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    seconds = settings.webhook_status_poll_seconds
    return {
        "webhooks-sweep": {"task": SWEEP_TASK, "schedule": seconds, "options": {"expires": seconds}}
    }


# ---------------------------------------------------------------------------------- CLI

HELP = """Webhook endpoints and their dead letters.

  ats-gateway webhooks add --key KEY_ID --url URL [--event TYPE ...]   (prints the secret once)
  ats-gateway webhooks list [--key KEY_ID] [--json]
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
    add.add_argument("--key", required=True, help="the API key id (its applications' events)")
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
    from ats_gateway.redis_clients import cli_celery

    client = cli_celery(settings)
    try:
        for endpoint_id in endpoint_ids:
            client.send_task(SEND_TASK, args=[endpoint_id])
    finally:
        client.close()


def _out(text: str) -> None:
    import sys

    sys.stdout.write(text + "\n")


def cmd_add(args: Any, settings: Settings | None = None) -> int:
    from ats_gateway.services.webhooks import InvalidEndpoint

    hooks = _cli_runtime(settings)
    try:
        endpoint = hooks.registry.create(f"key:{args.key}", args.url, args.events)
    except InvalidEndpoint as exc:
        _out(f"error: {exc.field}: {exc.message}")
        return 2
    _out(f"{endpoint.id}  {endpoint.url}  {' '.join(sorted(endpoint.events))}")
    _out(f"secret (shown once): {endpoint.secret}")
    return 0


def cmd_list(args: Any, settings: Settings | None = None) -> int:
    import json

    hooks = _cli_runtime(settings)
    endpoints = hooks.registry.list(f"key:{args.key}" if args.key else None)
    if args.json:
        _out(json.dumps([{**e.to_public_dict(), "owner": e.owner} for e in endpoints], indent=2))
    else:
        lines = [f"{e.id}  {e.owner}  {e.url}  {' '.join(sorted(e.events))}" for e in endpoints]
        _out("\n".join(lines) or "no endpoints")
    return 0


def cmd_remove(args: Any, settings: Settings | None = None) -> int:
    ok = _cli_runtime(settings).registry.remove(args.id)
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
