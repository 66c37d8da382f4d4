"""Builders of the feedback pieces, called once per process by the composition root
(:func:`ats_gateway.composition.build_services`); nothing here connects or reads at build time.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from ats_gateway.config import Settings
from ats_gateway.metadata import Metadata
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.services.delivery import Outbox
from ats_gateway.services.feedback.context import NAMES, ContextReader
from ats_gateway.services.feedback.org import FeedbackDeliverer, child_relationship
from ats_gateway.services.feedback.service import KIND, FeedbackService, FeedbackUnavailable

CONNECTION = "interview_feedback"
__all__ = [
    "CONNECTION",
    "KIND",
    "build_contexts",
    "build_deliverer",
    "build_service",
    "connection_client",
]


def connection_client(
    settings: Settings, clients: Callable[[str], SalesforceClient]
) -> Callable[[], SalesforceClient]:
    """The feedback connection's client, asked for on use: a gateway without that connection
    serves everything else and answers feedback requests 503."""

    def client() -> SalesforceClient:
        if not settings.connections[CONNECTION].configured:
            raise FeedbackUnavailable(
                "Interview feedback is not connected to the ATS yet; tell the recruiter.",
                reason="connection_not_configured",
            )
        return clients(CONNECTION)

    return client


def build_contexts(
    settings: Settings, redis_client: redis.Redis, client: Callable[[], SalesforceClient]
) -> ContextReader:
    return ContextReader(client, redis_client, ttl=settings.feedback_context_ttl_seconds)


def build_service(metadata: Metadata, outbox: Outbox, contexts: ContextReader) -> FeedbackService:
    return FeedbackService(lambda: metadata, outbox, contexts)


def build_deliverer(
    client: SalesforceClient, metadata: Metadata, contexts: ContextReader
) -> FeedbackDeliverer:
    """One sObject Tree per feedback; the tree's child relationship follows the live describe,
    and a delivered feedback drops its interview from the context cache."""

    def relationship() -> str:
        describe = metadata.describe(CONNECTION).raw
        return child_relationship(describe, NAMES.topic_feedback, NAMES.topic_feedback_parent)

    return FeedbackDeliverer(client, relationship=relationship, on_delivered=contexts.forget)
