"""Jobs snapshot refresh: on the beat schedule (within the staleness bound) and from the hook."""

from __future__ import annotations

from celery import shared_task

from ats_gateway.extensions import services
from ats_gateway.services.jobs import RefreshFailed

REFRESH_TASK = "ats_gateway.jobs.refresh_snapshot"


@shared_task(name=REFRESH_TASK)
def refresh_jobs_snapshot(
    force: bool = False, requested_at: float | None = None
) -> dict[str, object]:
    """Reload every public job into a new snapshot.

    ``force`` (the hook): wait for a running refresh, then refresh again, so a change made
    before the hook was called is in the result; a snapshot whose query started after
    ``requested_at`` (when the hook came in) already has it, so bursts coalesce.
    Otherwise (beat): skip when the snapshot is younger than half the staleness bound or
    another refresh is running. A failure is recorded for /readyz and the last snapshot
    keeps being served; the next beat retries. Redelivery is harmless (acks late).
    """
    service = services().jobs
    try:
        if force:
            result = service.refresh(blocking=True, newer_than=requested_at)
        elif service.kept_current():
            # `ats-gateway events` keeps the snapshot current (its reconciliation replaces
            # this periodic full reload): the clock alone costs no org call.
            return {"outcome": "events"}
        else:
            result = service.refresh(blocking=False, min_age=service.staleness / 2)
    except RefreshFailed as exc:
        return {"outcome": "failed", "error": str(exc)[:300]}
    return result.as_dict()


def beat_schedule(settings) -> dict[str, dict[str, object]]:
    """Refresh at twice the rate of the staleness bound, so a snapshot is never older."""
    return {
        "jobs-snapshot-refresh": {
            "task": REFRESH_TASK,
            "schedule": max(1.0, settings.jobs_staleness_seconds / 2),
            "options": {"expires": max(1.0, settings.jobs_staleness_seconds / 2)},
        }
    }
