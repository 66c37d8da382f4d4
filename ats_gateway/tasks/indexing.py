"""Search-engine notifications as Celery work ([22]; h19a routes this module to ``search``).

* ``ats_gateway.indexing.sweep`` (beat, every ``search_poll_seconds``, only when an engine is
  configured): moves new job lifecycle events (``services/jobs/lifecycle.py``, consumer
  ``search``) into each engine's pending notifications, then starts a publish run for each
  engine with something due (not backing off, quota left).
* ``ats_gateway.indexing.publish(engine)``: one batched request with the newest pending
  notifications; after a failed request it schedules itself again when the backoff ends.

A consumer that starts without a cursor begins at the newest lifecycle entry: turning an engine
on does not replay the stream's history to it (the sitemap covers what was open before).
Idle, a sweep costs a few Redis reads and no request to any engine.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from ats_gateway.config import Settings
from ats_gateway.extensions import services

SWEEP_TASK = "ats_gateway.indexing.sweep"
PUBLISH_TASK = "ats_gateway.indexing.publish"
CONSUMER = "search"
_SCHEDULED = "ats-gateway:search:{engine}:scheduled"


def _schedule(engine: str, countdown: float = 0.0) -> bool:
    """One publish run queued per engine at a time (the marker ends with the run)."""
    redis_client = services().redis
    ttl = int(countdown) + 120
    if not redis_client.set(_SCHEDULED.format(engine=engine), b"1", nx=True, ex=ttl):
        return False
    publish.apply_async(args=[engine], countdown=countdown)
    return True


@shared_task(name=SWEEP_TASK, ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> dict[str, Any]:
    found = services()
    notifier = found.search
    if not notifier.engines:
        return {"engines": 0}
    queued = 0

    def handle(events: list[Any]) -> None:
        nonlocal queued
        queued = notifier.intake(events)

    read = found.job_lifecycle.consume(CONSUMER, handle, from_now=True)
    started = [name for name in notifier.engines if notifier.due(name) and _schedule(name)]
    return {"read": read, "queued": queued, "started": started}


@shared_task(name=PUBLISH_TASK, ignore_result=True, soft_time_limit=120, time_limit=150)
def publish(engine: str) -> dict[str, Any]:
    found = services()
    found.redis.delete(_SCHEDULED.format(engine=engine))
    if engine not in found.search.engines:
        return {"ran": False, "reason": "engine not configured"}
    report = found.search.publish(engine)
    if report.get("retry_in"):
        _schedule(engine, float(report["retry_in"]))
    elif report.get("ran") and found.search.due(engine):
        _schedule(engine)  # more pending than one batch held
    return report


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    if not (settings.google_indexing_key_file or settings.indexnow_key):
        return {}
    seconds = settings.search_poll_seconds
    return {
        "search-engines-sweep": {
            "task": SWEEP_TASK,
            "schedule": seconds,
            "options": {"expires": seconds},
        }
    }
