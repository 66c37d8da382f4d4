"""Building the webhooks services from :class:`~ats_gateway.config.Settings` (one builder,
called by the composition root as one field of ``Services``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ats_gateway.services.delivery import Outbox
from ats_gateway.services.webhooks.events import EventPublisher, queue_kind
from ats_gateway.services.webhooks.fairness import Breaker, Slots
from ats_gateway.services.webhooks.registry import Endpoint, EndpointRegistry
from ats_gateway.services.webhooks.sender import WebhookSender, max_attempts


def send_time_limits(settings: Any) -> tuple[float, float]:
    """(soft, hard) Celery time limits of one send run: its budget, one more whole attempt
    (the last one may start just inside the budget), and a margin to settle the batch."""
    soft = settings.webhook_run_seconds + settings.webhook_deadline_seconds + 15.0
    return soft, soft + 15.0


@dataclass
class WebhooksRuntime:
    settings: Any
    redis: redis.Redis
    registry: EndpointRegistry
    publisher: EventPublisher
    applications: Outbox
    slots: Slots = field(init=False)
    breaker: Breaker = field(init=False)
    _queues: dict[str, Outbox] = field(default_factory=dict, init=False, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.slots = Slots(self.redis, s.webhook_key_concurrency, self.lease_seconds)
        self.breaker = Breaker(
            self.redis,
            threshold=s.webhook_breaker_failures,
            base_seconds=s.webhook_breaker_base_seconds,
            max_seconds=s.webhook_breaker_max_seconds,
        )

    @property
    def lease_seconds(self) -> float:
        # Longer than a send run can live (the task's hard limit), so a lease never needs
        # renewing: no heartbeat thread per endpoint queue. A worker killed mid-run frees its
        # batch and drain lock when the lease ends.
        return send_time_limits(self.settings)[1] + 30.0

    def queue(self, endpoint_id: str) -> Outbox:
        """The endpoint's queue, one object per endpoint for the life of the process.

        Built anew on each run it started a lease-heartbeat thread each time that never
        ended ([19]: 1,162 threads in a worker after an hour)."""
        with self._mutex:
            found = self._queues.get(endpoint_id)
            if found is None:
                s = self.settings
                found = Outbox(
                    self.redis,
                    queue_kind(endpoint_id),
                    status_ttl=int(s.webhook_retention_seconds),
                    lease_seconds=self.lease_seconds,
                    retry_base_seconds=s.webhook_retry_base_seconds,
                    retry_max_seconds=s.webhook_retry_max_seconds,
                    fsync=False,
                    heartbeat=False,
                )
                self._queues[endpoint_id] = found
            return found

    def forget(self, endpoint_id: str) -> None:
        """Drop the cached queue object of a removed endpoint."""
        with self._mutex:
            self._queues.pop(endpoint_id, None)

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
            deadline_seconds=s.webhook_deadline_seconds,
            run_seconds=s.webhook_run_seconds,
            on_gone=lambda gone, reason: self.registry.disable(gone.id, reason),
            ca_file=s.webhook_ca_file,
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
