"""Outbound webhooks: endpoints per API key, events about the key's own applications, and
signed delivery with retries and a dead-letter queue (see :mod:`.events`, :mod:`.sender`)."""

from ats_gateway.services.webhooks.egress import RefusedURL, resolve
from ats_gateway.services.webhooks.events import (
    EventPublisher,
    NotifyingDeliverer,
    event_id,
    queue_kind,
)
from ats_gateway.services.webhooks.registry import (
    EVENT_TYPES,
    Endpoint,
    EndpointRegistry,
    InvalidEndpoint,
)
from ats_gateway.services.webhooks.runtime import WebhooksRuntime, build_webhooks
from ats_gateway.services.webhooks.sender import WebhookSender, max_attempts

__all__ = [
    "EVENT_TYPES",
    "Endpoint",
    "EndpointRegistry",
    "EventPublisher",
    "InvalidEndpoint",
    "NotifyingDeliverer",
    "RefusedURL",
    "WebhookSender",
    "WebhooksRuntime",
    "build_webhooks",
    "event_id",
    "max_attempts",
    "queue_kind",
    "resolve",
]
