"""Job lifecycle events ([22], ``services/jobs/lifecycle.py``) become ``job.closed`` webhooks.

``ats_gateway.jobs.lifecycle_webhooks`` (beat, every ``job_events_poll_seconds``) reads the
lifecycle stream from its own cursor (consumer ``webhooks``) and publishes one ``job.closed``
per closed job to every endpoint subscribed to it, whichever path saw the job leave (change
events, delta polling, expiry, the full reconciliation). The event's ``webhook-id`` comes from
the stream entry's id, so an entry read twice (a crash before the cursor moved) is queued
once per endpoint. Only Redis work here: the sends are the webhook send tasks'.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.services.jobs.lifecycle import CLOSED, LifecycleEvent

TASK = "ats_gateway.jobs.lifecycle_webhooks"
CONSUMER = "webhooks"


def publish_closed(events: list[LifecycleEvent], publisher: Any) -> int:
    closed = [e for e in events if e.event == CLOSED]
    for event in closed:
        publisher.on_job_closed(event.job_id, event.at, change_id=event.entry_id)
    return len(closed)


@shared_task(name=TASK, ignore_result=True)
def lifecycle_webhooks() -> dict[str, Any]:
    found = services()
    closed = 0

    def handle(events: list[LifecycleEvent]) -> None:
        nonlocal closed
        closed = publish_closed(events, found.webhooks.publisher)

    read = found.job_lifecycle.consume(CONSUMER, handle)
    return {"read": read, "closed": closed}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    seconds = settings.job_events_poll_seconds
    return {
        "job-lifecycle-webhooks": {
            "task": TASK,
            "schedule": seconds,
            "options": {"expires": seconds},
        }
    }
