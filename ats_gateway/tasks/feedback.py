"""Delivery of queued interview feedback: a self-rescheduling drain task over the outbox.

The same shape as :mod:`ats_gateway.tasks.applications` (the outbox in Redis is the source of
truth; a task message only says "look at the queue"), over the ``feedback`` outbox and the
:class:`~ats_gateway.services.feedback.FeedbackDeliverer`. Retries, backoff, the dead-letter
queue and replay are the shared machinery of :mod:`ats_gateway.services.delivery`
(``ats-gateway dlq list --kind feedback``).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import shared_task
from celery.signals import worker_ready

from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.services.feedback.runtime import CONNECTION, KIND
from ats_gateway.tasks.drain import (
    drain_on_worker_start,
    run_drain,
    schedule_drain,
    sweep_schedule,
    task_name,
)
from ats_gateway.tasks.limits import FEEDBACK_BATCH

log = logging.getLogger(__name__)

TASK = task_name(KIND)

#: Feedback arrives one at a time and a person waits for it: deliver at once.
DEFAULT_DELAY = 0.0

#: How often beat looks at the feedback queue (a safety net: submissions and worker starts
#: schedule drains themselves; this catches a replayed dead letter or a lost timer).
SWEEP_SECONDS = 60.0


def schedule_delivery(
    settings: Settings, redis_client: redis.Redis, delay: float | None = None
) -> bool:
    """Make sure a feedback drain runs within ``delay`` seconds (default: at once)."""
    return schedule_drain(KIND, redis_client, DEFAULT_DELAY if delay is None else delay)


@shared_task(name=TASK, ignore_result=True)
def drain_feedback() -> dict[str, Any]:
    """Deliver what is due (one tree call per feedback), then reschedule if work remains."""
    found = services()
    if not found.settings.connections[CONNECTION].configured:
        waiting = found.feedback_outbox.counts()["queued"]
        if waiting:
            log.warning(
                "%d feedback(s) queued but the interview_feedback connection is not configured",
                waiting,
            )
        return {"ran": False, "batches": 0, "outcomes": {}}
    # One tree call per item: small batches keep a batch well inside its lease, and the batch
    # in flight when the drain's time is up within its soft time limit (tasks/limits.py).
    return run_drain(
        KIND,
        found.redis,
        found.feedback_outbox,
        found.feedback_deliverer,
        batch_size=FEEDBACK_BATCH,
        max_seconds=found.settings.drain_max_seconds,
    )


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return sweep_schedule(KIND, SWEEP_SECONDS)


@worker_ready.connect
def _drain_on_start(sender: Any = None, **_: Any) -> None:
    drain_on_worker_start(KIND, sender)
