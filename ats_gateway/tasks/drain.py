"""The self-rescheduling drain shared by every outbox kind (applications, feedback).

The outbox in Redis, not the Celery message, is the source of truth: a drain task only says
"look at the queue". So a lost or duplicated task message costs at most a delay or an idle
run, never a delivery. A drain that leaves work behind (backoff, leases of a dead worker)
schedules the next one for when it is due; a starting worker drains at once; beat sweeps as a
safety net for timers that died with a worker.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from flask import current_app

from ats_gateway.services.delivery import KEY_PREFIX, Outbox, drain

log = logging.getLogger(__name__)

# Schedule a drain for `target` unless one is already due at or before it.
_SCHEDULE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def task_name(kind: str) -> str:
    return f"ats_gateway.{kind}.drain"


def _marker(kind: str) -> str:
    return f"{KEY_PREFIX}{kind}:scheduled"


def schedule_drain(kind: str, redis_client: redis.Redis, delay: float) -> bool:
    """Make sure a drain of `kind` runs within `delay` seconds (one timer per kind).

    Needs the Flask app context (a request, or a task: both have one)."""
    delay = max(0.0, delay)
    target = time.time() + delay
    ttl_ms = int((delay + 30) * 1000)
    if not redis_client.eval(_SCHEDULE, 1, _marker(kind), repr(target), ttl_ms):
        return False
    # This app's Celery (its broker), not whichever Celery app was made default last.
    current_app.extensions["celery"].send_task(task_name(kind), countdown=delay)
    return True


def run_drain(
    kind: str,
    redis_client: redis.Redis,
    outbox: Outbox,
    deliverer: Any,
    *,
    batch_size: int,
    window: float = 0.0,
) -> dict[str, Any]:
    """One drain run: deliver what is due, then schedule the next run if work remains.

    `window` is the micro-batch window: the next run waits at least that long after a run
    that delivered, so items arriving under steady traffic travel together (a batch costs
    the same few org calls whether it holds 5 items or 1,000)."""
    redis_client.delete(_marker(kind))  # this run covers everything due now
    report = drain(outbox, deliverer, batch_size=batch_size)
    if report.ran and report.batches:
        log.info(
            "%s drain: %d batch(es), outcomes %s, lost leases %d",
            kind,
            report.batches,
            report.outcomes,
            report.lost_leases,
        )
    if report.next_run_in is not None:
        # Not locked out: the holder reschedules itself; locked out: check back shortly.
        delay = max(report.next_run_in, window) if report.ran else max(report.next_run_in, 1.0)
        schedule_drain(kind, redis_client, delay)
    return {"ran": report.ran, "batches": report.batches, "outcomes": report.outcomes}


def drain_on_worker_start(kind: str, sender: Any = None) -> None:
    """A starting worker looks at the queue at once (a dead worker's batch, lost timers)."""
    try:
        app = getattr(sender, "app", None)
        if app is None:
            from celery import current_app as celery_app

            app = celery_app
        app.send_task(task_name(kind))
    except Exception:  # the broker may not be up yet; the next submission schedules one
        log.warning("could not schedule a %s drain at worker start", kind, exc_info=True)


def sweep_schedule(kind: str, seconds: float) -> dict[str, dict[str, Any]]:
    """A beat entry draining `kind` every `seconds`; an idle sweep is one Redis claim."""
    return {
        f"{kind}-delivery-sweep": {
            "task": task_name(kind),
            "schedule": seconds,
            "options": {"expires": seconds},
        }
    }
