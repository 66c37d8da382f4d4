"""Webhook delivery tasks: one self-rescheduling send task per endpoint, and a beat sweep.

Each endpoint has its own queue and its own task run (single flight per endpoint through the
queue's drain lock), so a receiver that times out holds back only its own events; the
applications drain only *enqueues* events (a few Redis calls), it never waits for a receiver.
The task names are ``ats_gateway.webhooks.*``: the Celery routes send them to the webhooks
queue and its own workers ([19]).

* ``ats_gateway.webhooks.send(endpoint_id)``: send what is due, then schedule the next run
  for when the next retry is due (one timer per endpoint, as in ``tasks/drain.py``). A run
  takes one of its key's slots first, and skips an endpoint whose breaker is open
  (``services/webhooks/fairness.py``); every attempt has a deadline and the run a budget,
  and the task has Celery soft and hard time limits above both (a backstop; they need the
  prefork pool).
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
from ats_gateway.services.delivery import KEY_PREFIX, Item, Outcome, drain
from ats_gateway.services.webhooks import WebhooksRuntime, queue_kind
from ats_gateway.services.webhooks.runtime import send_time_limits

log = logging.getLogger(__name__)

SEND_TASK = "ats_gateway.webhooks.send"
SWEEP_TASK = "ats_gateway.webhooks.sweep"
STATUS_STREAM = "ats:events:application_status"  # [12] ApplicationStatusEvents.STREAM_KEY
STATUS_CURSOR = "ats-gateway:webhooks:status-cursor"
STATUS_LOCK = "ats-gateway:webhooks:status-lock"
STATUS_READ_COUNT = 500
SLOT_WAIT_SECONDS = 1.0  # a run that finds its key's slots taken comes back after this
# Defaults of the task's Celery limits (send_task passes the ones from the settings).
_SOFT, _HARD = send_time_limits(Settings())
SWEEP_SOFT, SWEEP_HARD = 60, 90

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
    soft, hard = send_time_limits(runtime().settings)
    current_app.extensions["celery"].send_task(
        SEND_TASK,
        args=[endpoint_id],
        countdown=delay,
        soft_time_limit=soft,
        time_limit=hard,
    )
    return True


def schedule_sends(redis_client: redis.Redis, endpoint_ids: Sequence[str]) -> None:
    for endpoint_id in endpoint_ids:
        schedule_send(redis_client, endpoint_id)


class _Disabled:
    """The deliverer of a disabled endpoint: its queued events go to the dead-letter queue
    (replayable with ``webhooks dlq replay`` should it be enabled again), none is sent."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def deliver(self, items: Sequence[Item], progress: Any) -> list[Outcome]:
        return [Outcome.failed(code="ENDPOINT_DISABLED", message=self.reason) for _ in items]


def send_due(hooks: WebhooksRuntime, endpoint_id: str) -> dict[str, Any]:
    """One run for one endpoint: deliver what is due; returns the drain report as a dict."""
    endpoint = hooks.registry.get(endpoint_id)
    if endpoint is None:
        hooks.forget(endpoint_id)
        return {"ran": False, "reason": "endpoint removed"}
    queue = hooks.queue(endpoint_id)
    hooks.redis.delete(_marker(endpoint_id))
    settings = hooks.settings
    if not endpoint.active:
        report = drain(queue, _Disabled(endpoint.disabled_reason), batch_size=1000)
        return {"ran": report.ran, "reason": "disabled", "outcomes": report.outcomes}
    breaker = hooks.breaker.state(endpoint_id)
    if breaker.wait > 0:
        # paused: nothing is tried, no thread is spent; come back when it may be tried
        schedule_send(hooks.redis, endpoint_id, breaker.wait)
        return {"ran": False, "reason": "breaker open", "retry_in": round(breaker.wait, 3)}
    slot = hooks.slots.acquire(endpoint.owner)
    if slot is None:
        schedule_send(hooks.redis, endpoint_id, SLOT_WAIT_SECONDS)
        return {"ran": False, "reason": "key's slots taken"}
    sender = hooks.sender(endpoint)
    try:
        report = drain(
            queue,
            sender,
            # half open: one event tells whether the receiver is back
            batch_size=1 if breaker.half_open else settings.webhook_batch_size,
            max_batches=1 if breaker.half_open else 20,
            max_seconds=settings.webhook_run_seconds,
        )
    finally:
        hooks.slots.release(endpoint.owner, slot)
    paused = hooks.breaker.record(endpoint_id, sender.health)
    if report.next_run_in is not None:
        delay = report.next_run_in if report.ran else max(report.next_run_in, 1.0)
        schedule_send(hooks.redis, endpoint_id, max(delay, paused))
    return {
        "ran": report.ran,
        "batches": report.batches,
        "outcomes": report.outcomes,
        "health": sender.health,
        "paused": paused,
    }


@shared_task(name=SEND_TASK, ignore_result=True, soft_time_limit=_SOFT, time_limit=_HARD)
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


@shared_task(name=SWEEP_TASK, ignore_result=True, soft_time_limit=SWEEP_SOFT, time_limit=SWEEP_HARD)
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
