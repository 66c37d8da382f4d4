"""The self-rescheduling drain shared by every outbox kind (applications, feedback).

The outbox in Redis, not the Celery message, is the source of truth: a drain task only says
"look at the queue". So a lost or duplicated task message costs at most a delay or an idle
run, never a delivery. A drain that leaves work behind (backoff, leases of a dead worker)
schedules the next one for when it is due; a starting worker drains at once; beat sweeps as a
safety net for timers that died with a worker.

A drain may carry a pacer (``services/pacing.py``): then a batch goes only when the org's API
budget allows it, and the next run is scheduled for when it will. Every task labels the org
calls it makes with a purpose (``task_prerun``), so the budget counts them by purpose.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun
from flask import current_app

from ats_gateway.salesforce.budget import set_purpose
from ats_gateway.services.delivery import KEY_PREFIX, Outbox, Pacer, drain

log = logging.getLogger(__name__)

# Schedule a drain for `target` unless one is already due at or before it.
_SCHEDULE = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


#: The purpose of the org calls a task makes, by task-name prefix (the rest: "interactive").
TASK_PURPOSES = {
    "ats_gateway.applications.": "delivery",
    "ats_gateway.feedback.": "feedback",
    "ats_gateway.jobs.": "reconciliation",
    "ats_gateway.metadata.": "describe",
}


def purpose_of_task(name: str) -> str | None:
    return next((p for prefix, p in TASK_PURPOSES.items() if name.startswith(prefix)), None)


@task_prerun.connect
def _label_org_calls(task: Any = None, **_: Any) -> None:
    set_purpose(purpose_of_task(getattr(task, "name", "") or ""))


@task_postrun.connect
def _unlabel_org_calls(**_: Any) -> None:
    set_purpose(None)


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
    pacer: Pacer | None = None,
    max_seconds: float = 45.0,
) -> dict[str, Any]:
    """One drain run: deliver what is due, then schedule the next run if work remains.

    `window` is the micro-batch window: the next run waits at least that long after a run
    that delivered, so items arriving under steady traffic travel together (a batch costs
    the same few org calls whether it holds 5 items or 1,000). With a `pacer` the queue also
    waits for the API allowance (at most the latency bound; see services/pacing.py).

    No batch starts after ``max_seconds``; the task's soft time limit (tasks/limits.py) bounds
    the batch in flight then, so one run never holds its worker past its deadline."""
    redis_client.delete(_marker(kind))  # this run covers everything due now
    purpose = purpose_of_task(task_name(kind)) or "delivery"
    try:
        report = drain(
            outbox,
            deliverer,
            batch_size=batch_size,
            pacer=pacer,
            purpose=purpose,
            max_seconds=max_seconds,
        )
    except SoftTimeLimitExceeded:
        # Interrupted outside the deliverer (which turns an interrupt into a retry of its
        # batch): a claimed batch is no longer renewed, so the next drain takes it back within
        # a lease. Schedule that drain now rather than leave it to the beat sweep.
        log.warning("%s drain reached its soft time limit; the next run takes over", kind)
        schedule_drain(kind, redis_client, float(outbox.lease_seconds))
        return {"ran": True, "interrupted": True}
    if report.ran and report.batches:
        log.info(
            "%s drain: %d batch(es), %d org call(s), outcomes %s, lost leases %d, pace %s",
            kind,
            report.batches,
            report.calls,
            report.outcomes,
            report.lost_leases,
            report.pace,
        )
    if report.next_run_in is not None:
        # Not locked out: the holder reschedules itself; locked out: check back shortly.
        delay = max(report.next_run_in, window) if report.ran else max(report.next_run_in, 1.0)
        schedule_drain(kind, redis_client, delay)
    return {
        "ran": report.ran,
        "batches": report.batches,
        "outcomes": report.outcomes,
        "calls": report.calls,
        "pace": report.pace,
        "next_run_in": report.next_run_in,
    }


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
