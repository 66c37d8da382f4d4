"""Building the feedback services from :class:`~ats_gateway.config.Settings`.

The HTTP edge and the worker each build these once per process (and keep them on the app);
nothing here connects at import time.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from ats_gateway.config import Settings
from ats_gateway.metadata import Metadata
from ats_gateway.metadata.describe import load_snapshot
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.services.delivery import Outbox
from ats_gateway.services.feedback.context import NAMES, ContextReader
from ats_gateway.services.feedback.org import FeedbackDeliverer, child_relationship
from ats_gateway.services.feedback.service import KIND, FeedbackService

CONNECTION = "interview_feedback"


def build_outbox(settings: Settings, redis_client: redis.Redis) -> Outbox:
    return Outbox.from_settings(redis_client, KIND, settings)


def build_contexts(
    settings: Settings, redis_client: redis.Redis, client: Callable[[], SalesforceClient]
) -> ContextReader:
    return ContextReader(client, redis_client, ttl=settings.feedback_context_ttl_seconds)


def build_service(
    settings: Settings,
    redis_client: redis.Redis,
    metadata: Callable[[], Metadata],
    client: Callable[[], SalesforceClient],
) -> FeedbackService:
    return FeedbackService(
        metadata,
        build_outbox(settings, redis_client),
        build_contexts(settings, redis_client, client),
    )


def build_deliverer(
    settings: Settings,
    redis_client: redis.Redis,
    client: SalesforceClient,
    metadata: Metadata | None = None,
) -> FeedbackDeliverer:
    if metadata is not None:
        describe = metadata.describe("interview_feedback").raw
    else:
        describe = load_snapshot(settings.schemas_dir, NAMES.feedback)
    relationship = child_relationship(describe, NAMES.topic_feedback, NAMES.topic_feedback_parent)
    contexts = build_contexts(settings, redis_client, lambda: client)
    return FeedbackDeliverer(client, relationship=relationship, on_delivered=contexts.forget)
