"""Delivery of queued interview feedback: a self-rescheduling drain task over the outbox.

The same shape as :mod:`ats_gateway.tasks.applications` (the outbox in Redis is the source of
truth; a task message only says "look at the queue"), over the ``feedback`` outbox and the
:class:`~ats_gateway.services.feedback.FeedbackDeliverer`. Retries, backoff, the dead-letter
queue and replay are the shared machinery of :mod:`ats_gateway.services.delivery`
(``ats-gateway dlq list --kind feedback``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready
from flask import current_app

from ats_gateway.config import Settings
from ats_gateway.connections import get_connections
from ats_gateway.extensions import get_redis
from ats_gateway.services.delivery import KEY_PREFIX, drain
from ats_gateway.services.feedback import KIND
from ats_gateway.services.feedback.runtime import CONNECTION, build_deliverer, build_outbox

log = logging.getLogger(__name__)

TASK = "ats_gateway.feedback.drain"

# Schedule a drain for `target` unless one is already due at or before it.
_SCHEDULE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

#: Feedback arrives one at a time and a person waits for it: deliver at once.
DEFAULT_DELAY = 0.0


def _marker() -> str:
    return f"{KEY_PREFIX}{KIND}:scheduled"


def schedule_delivery(
    settings: Settings, redis_client: redis.Redis, delay: float | None = None
) -> bool:
    """Make sure a feedback drain runs within ``delay`` seconds."""
    delay = DEFAULT_DELAY if delay is None else max(0.0, delay)
    target = time.time() + delay
    ttl_ms = int((delay + 30) * 1000)
    if not redis_client.eval(_SCHEDULE, 1, _marker(), repr(target), ttl_ms):
        return False
    drain_feedback.apply_async(countdown=delay)
    return True


def _runtime() -> dict[str, Any]:
    app = current_app
    runtime = app.extensions.get("feedback_delivery")
    if runtime is None:
        settings = app.config["SETTINGS"]
        redis_client = get_redis(app)
        client = get_connections(app).client(CONNECTION)
        runtime = {
            "outbox": build_outbox(settings, redis_client),
            "deliverer": build_deliverer(
                settings, redis_client, client, app.extensions.get("metadata")
            ),
            "client": client,
        }
        app.extensions["feedback_delivery"] = runtime
    return runtime


@shared_task(name=TASK, ignore_result=True)
def drain_feedback() -> dict[str, Any]:
    """Deliver what is due (one tree call per feedback), then reschedule if work remains."""
    settings = current_app.config["SETTINGS"]
    redis_client = get_redis(current_app)
    redis_client.delete(_marker())
    if not settings.connections["interview_feedback"].configured:
        waiting = build_outbox(settings, redis_client).counts()["queued"]
        if waiting:
            log.warning(
                "%d feedback(s) queued but the interview_feedback connection is not configured",
                waiting,
            )
        return {"ran": False, "batches": 0, "outcomes": {}}
    runtime = _runtime()
    # One tree call per item: small batches keep a batch well inside its lease.
    report = drain(runtime["outbox"], runtime["deliverer"], batch_size=10)
    if report.ran and report.batches:
        log.info(
            "feedback drain: %d batch(es), outcomes %s, lost leases %d",
            report.batches,
            report.outcomes,
            report.lost_leases,
        )
    if report.next_run_in is not None:
        delay = report.next_run_in if report.ran else max(report.next_run_in, 1.0)
        schedule_delivery(settings, redis_client, delay)
    return {"ran": report.ran, "batches": report.batches, "outcomes": report.outcomes}


@worker_ready.connect
def _drain_on_start(sender: Any = None, **_: Any) -> None:
    """A starting worker looks at the queue at once (a dead worker's item, lost timers)."""
    try:
        drain_feedback.apply_async(countdown=0)
    except Exception:  # the broker may not be up yet; the next submission schedules one
        log.warning("could not schedule a feedback drain at worker start", exc_info=True)


#: How often beat looks at the feedback queue (a safety net: submissions and worker starts
#: schedule drains themselves; this catches a replayed dead letter or a lost timer).
SWEEP_SECONDS = 60.0


def beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    """A periodic drain; costs no API call while the queue is empty."""
    return {
        "feedback-drain-sweep": {
            "task": TASK,
            "schedule": SWEEP_SECONDS,
            "options": {"expires": SWEEP_SECONDS},
        }
    }
