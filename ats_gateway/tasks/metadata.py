"""Describe revalidation, tied to what tells us the org may have changed, not to a clock.

Org metadata changes rarely, and a change that matters shows up by itself: the org refuses a
value its cached describe allowed (delivery then re-describes that object at once, see
`services/applications/org.py`). So the describes are revalidated with the org

* after each full reconciliation of the jobs catalogue (the events subscriber's safety net,
  every `events_reconcile_seconds`, default 6 h, and on gaps),
* at the latest every `describe_refresh_seconds` (default 6 h; covers a stack without a
  subscriber),
* when intake refused a picklist value the cached describe does not list (an admin may have
  just added it), at most every `REQUESTED_MIN_SECONDS` (15 min: bounded even under junk), and
* on demand (`refresh_describes.delay(force=True)`, `ats-gateway schemas pull`).

Beat only asks, every minute, whether a revalidation is due: one Redis read, no org call. A
revalidation with nothing changed costs one Describe Global call (`GET /sobjects` with
`If-Modified-Since`, 304) per connection (`DescribeCache.refresh_all`).
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from ats_gateway.config import Settings
from ats_gateway.extensions import services

TASK = "ats_gateway.metadata.refresh_describes"
#: how often beat asks whether a revalidation is due (a Redis read; never an org call)
CHECK_SECONDS = 60.0
#: a revalidation asked for by refused picklist values runs at most this often
REQUESTED_MIN_SECONDS = 900.0


def revalidation_due(svc: Any, now: float | None = None) -> str | None:
    """Why the describes should be revalidated now ("reconciled", "requested", "max-age",
    "never"), or None."""
    now = time.time() if now is None else now
    last = svc.metadata.cache.revalidated_at()
    if last is None:
        return "never"
    reconciled = float(svc.events_state.read().get("last_reconcile_at") or 0)
    if reconciled > last:
        return "reconciled"
    requested = svc.metadata.cache.revalidation_requested_at() or 0
    if requested > last and now - last >= REQUESTED_MIN_SECONDS:
        return "requested"
    if now - last >= svc.settings.describe_refresh_seconds:
        return "max-age"
    return None


@shared_task(name=TASK)
def refresh_describes(force: bool = False, when_due: bool = False) -> dict[str, Any]:
    """Revalidate every describe the gateway uses; returns each one's source and version.

    `when_due` (beat): only when `revalidation_due` says so."""
    svc = services()
    started = time.time()
    if when_due:
        reason = revalidation_due(svc, started)
        if reason is None:
            return {"revalidated": False}
    entries = svc.metadata.refresh(force=force)
    # Marked whatever came of it: a failure is retried at the next reconciliation or max age
    # (and a refusal by the org re-describes its object at once), never every minute.
    svc.metadata.cache.mark_revalidated(started)
    return {
        f"{e.connection}/{e.sobject}": {"source": e.source, "version": e.version, "error": e.error}
        for e in entries
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    every = max(1.0, min(CHECK_SECONDS, float(settings.describe_refresh_seconds)))
    # A check that could not run before the next one is due is simply dropped.
    return {
        "refresh-describes": {
            "task": TASK,
            "schedule": every,
            "kwargs": {"when_due": True},
            "options": {"expires": every},
        }
    }
