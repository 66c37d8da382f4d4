"""Search-engine notifications ([22]): job pages pushed to Google's Indexing API and IndexNow.

    notifier = build_notifier(settings, redis_client, job_url=feeds.org.job_url)
    notifier.intake(lifecycle_events)    pending notifications (newest state per job)
    notifier.publish("google")           one batched request, within the quota
    notifier.status()                    pending, backoff, quota used (also on /metrics)

Each engine is optional: Google when ``ATS_GATEWAY_GOOGLE_INDEXING_KEY_FILE`` names a
service-account key file, IndexNow when ``ATS_GATEWAY_INDEXNOW_KEY`` is set. The Celery side
is ``tasks/indexing.py``. Modules: :mod:`.notifier` (queues, quota, backoff, metrics),
:mod:`.google`, :mod:`.indexnow`, :mod:`.model`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis

from ats_gateway.services.indexing.google import GoogleIndexing
from ats_gateway.services.indexing.indexnow import IndexNow
from ats_gateway.services.indexing.model import URL_DELETED, URL_UPDATED, Notification
from ats_gateway.services.indexing.notifier import SearchMetrics, SearchNotifier

__all__ = [
    "URL_DELETED",
    "URL_UPDATED",
    "GoogleIndexing",
    "IndexNow",
    "Notification",
    "SearchMetrics",
    "SearchNotifier",
    "build_notifier",
]

log = logging.getLogger(__name__)

KEY_FORMAT = re.compile(r"[A-Za-z0-9-]{8,128}")


def build_notifier(
    settings: Any, redis_client: redis.Redis, *, job_url: Callable[[str], str]
) -> SearchNotifier:
    """The notifier for these settings (no engine configured: one that never sends)."""
    timeout = (settings.search_connect_timeout, settings.search_read_timeout)
    engines: list[Any] = []
    quotas: dict[str, int] = {}
    per_minute: dict[str, int] = {}
    if settings.google_indexing_key_file:
        engines.append(
            GoogleIndexing(
                settings.google_indexing_key_file,
                token_uri=settings.google_indexing_token_uri,
                endpoint=settings.google_indexing_endpoint,
                batch_endpoint=settings.google_indexing_batch_endpoint,
                batch_size=settings.google_indexing_batch_size,
                timeout=timeout,
            )
        )
        quotas[GoogleIndexing.name] = settings.google_indexing_daily_quota
        per_minute[GoogleIndexing.name] = settings.google_indexing_minute_quota
    if settings.indexnow_key and not KEY_FORMAT.fullmatch(settings.indexnow_key):
        log.error(
            "ATS_GATEWAY_INDEXNOW_KEY must be 8 to 128 characters of a-z, A-Z, 0-9 and '-' "
            "(https://www.indexnow.org/documentation): IndexNow is off"
        )
    elif settings.indexnow_key:
        host = settings.indexnow_host or urlsplit(job_url("x")).hostname or ""
        if urlsplit(job_url("x")).hostname != host:
            log.warning(
                "ATS_GATEWAY_INDEXNOW_HOST (%s) is not the host of the job pages: IndexNow "
                "will refuse their URLs",
                host,
            )
        engines.append(
            IndexNow(
                settings.indexnow_key,
                host,
                endpoint=settings.indexnow_endpoint,
                key_location=settings.indexnow_key_location,
                batch_size=settings.indexnow_batch_size,
                timeout=timeout,
            )
        )
    return SearchNotifier(
        redis_client,
        engines,
        job_url=job_url,
        daily_quota=quotas,
        minute_quota=per_minute,
        retry_base_seconds=settings.search_retry_base_seconds,
        retry_max_seconds=settings.search_retry_max_seconds,
    )
