"""Describe refresh: revalidates every cached describe with `If-Modified-Since` (beat, every
`describe_refresh_seconds`, default 15 minutes), so org changes reach validation, JSON Schema
and OpenAPI without a restart."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from ats_gateway.config import Settings
from ats_gateway.extensions import services

TASK = "ats_gateway.metadata.refresh_describes"


@shared_task(name=TASK)
def refresh_describes(force: bool = False) -> dict[str, Any]:
    """Revalidate every describe the gateway uses; returns each one's source and version."""
    metadata = services().metadata
    entries = metadata.refresh(force=force)
    return {
        f"{e.connection}/{e.sobject}": {"source": e.source, "version": e.version, "error": e.error}
        for e in entries
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    every = max(30, int(settings.describe_refresh_seconds))
    # A refresh that could not run before the next one is due is simply dropped.
    return {"refresh-describes": {"task": TASK, "schedule": every, "options": {"expires": every}}}
