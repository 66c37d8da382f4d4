"""The org's change events (Change Data Capture over the Pub/Sub API) keep the gateway current.

    ats-gateway events                    run the subscriber (several may run; one is active)
    EventsState                           the subscriber's mode in Redis (the composition
                                          root builds one: /readyz "events", and the jobs
                                          service asks it whether a subscriber keeps it current)
    build_subscriber(services)            the subscriber over the composition root's pieces

Modules: :mod:`.subscriber` (stream, polling fallback, reconciliation), :mod:`.decoder`
(Avro + changedFields bitmaps), :mod:`.lease`, :mod:`.replay`, :mod:`.state`; the generated
Pub/Sub API stubs in :mod:`.proto`. The snapshot side is
:mod:`ats_gateway.services.jobs.changes`, the applications side
:mod:`ats_gateway.services.applications.status_events`.
"""

from __future__ import annotations

from typing import Any

from ats_gateway.events.state import EventsState

__all__ = ["EventsState", "build_subscriber", "run_subscriber"]

LEASE_KEY = "ats-gateway:events:lease"
REPLAY_KEY = "ats-gateway:events:replay"
WATERMARK_KEY = "ats-gateway:events:watermark"


def channel_for(settings: Any) -> Any:
    """A gRPC channel to the Pub/Sub API endpoint (TLS with the system roots, or plain for a
    local sandbox)."""
    import grpc

    # No client keepalive pings: servers answer pings on an idle stream more often than
    # every 5 minutes with GOAWAY "too_many_pings"; the Pub/Sub API sends an empty
    # FetchResponse at least every 270 s instead, which keeps the stream alive.
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if settings.pubsub_tls:
        return grpc.secure_channel(
            settings.pubsub_endpoint, grpc.ssl_channel_credentials(), options=options
        )
    return grpc.insecure_channel(settings.pubsub_endpoint, options=options)


def build_subscriber(services: Any) -> Any:
    """The subscriber over the composition root's pieces (:class:`~ats_gateway.composition.
    Services`): Redis, the jobs service, the applications outbox, the `job_portal` client."""
    from ats_gateway.events.lease import Lease
    from ats_gateway.events.replay import ReplayStore
    from ats_gateway.events.subscriber import Auth, Subscriber
    from ats_gateway.services.applications.runtime import CONNECTION
    from ats_gateway.services.applications.status_events import ApplicationStatusEvents
    from ats_gateway.services.jobs.changes import SnapshotChanges

    settings = services.settings
    redis_client = services.redis
    client = services.connections.client(CONNECTION)

    def token(refresh: bool) -> Any:
        if refresh:
            return client.auth.refresh(stale=client.auth.cached())
        return client.auth.token()

    return Subscriber(
        channel=lambda: channel_for(settings),
        auth=Auth(token),
        changes=SnapshotChanges(services.jobs, redis_client),
        applications=ApplicationStatusEvents(
            redis_client, services.applications_outbox, client=lambda: client
        ),
        state=services.events_state,
        lease=Lease(redis_client, LEASE_KEY, settings.events_lease_seconds),
        replay=ReplayStore(redis_client, REPLAY_KEY),
        watermark_key=WATERMARK_KEY,
        reconcile_seconds=settings.events_reconcile_seconds,
        poll_seconds=settings.events_poll_seconds,
        stream_retry_seconds=settings.events_stream_retry_seconds,
        heartbeat_seconds=settings.events_heartbeat_seconds,
    )


def run_subscriber(subscriber: Any, stopping: list[int]) -> int:
    """Run ``subscriber`` until ``stopping`` (a list a signal handler appends to) fills."""
    import threading
    import time

    worker = threading.Thread(target=subscriber.run, name="events", daemon=True)
    worker.start()
    while not stopping and worker.is_alive():
        time.sleep(0.2)
    subscriber.stop()
    worker.join(timeout=30)
    return 0
