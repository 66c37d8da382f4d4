"""Building the webhooks services from :class:`~ats_gateway.config.Settings` (one builder,
to move into the composition root of [11] as one field of ``Services``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from ats_gateway.services.delivery import Outbox
from ats_gateway.services.webhooks.events import EventPublisher, queue_kind
from ats_gateway.services.webhooks.registry import Endpoint, EndpointRegistry
from ats_gateway.services.webhooks.sender import WebhookSender, max_attempts


@dataclass
class WebhooksRuntime:
    settings: Any
    redis: redis.Redis
    registry: EndpointRegistry
    publisher: EventPublisher
    applications: Outbox

    def queue(self, endpoint_id: str) -> Outbox:
        s = self.settings
        return Outbox(
            self.redis,
            queue_kind(endpoint_id),
            status_ttl=int(s.webhook_retention_seconds),
            lease_seconds=max(30.0, 4 * (s.webhook_connect_timeout + s.webhook_read_timeout)),
            retry_base_seconds=s.webhook_retry_base_seconds,
            retry_max_seconds=s.webhook_retry_max_seconds,
            fsync=False,
        )

    def sender(self, endpoint: Endpoint) -> WebhookSender:
        s = self.settings
        return WebhookSender(
            endpoint,
            env=s.env,
            applications=self.applications,
            attempts_limit=max_attempts(
                s.webhook_retry_window_seconds,
                s.webhook_retry_base_seconds,
                s.webhook_retry_max_seconds,
            ),
            connect_timeout=s.webhook_connect_timeout,
            read_timeout=s.webhook_read_timeout,
        )


def build_webhooks(
    settings: Any,
    redis_client: redis.Redis,
    applications: Outbox,
    *,
    on_enqueued: Callable[[Sequence[str]], Any] | None = None,
) -> WebhooksRuntime:
    registry = EndpointRegistry(redis_client, env=settings.env)
    runtime = WebhooksRuntime(settings, redis_client, registry, None, applications)  # type: ignore[arg-type]
    runtime.publisher = EventPublisher(
        registry, runtime.queue, applications, on_enqueued=on_enqueued
    )
    return runtime
