"""The org's change events (Change Data Capture over the Pub/Sub API) keep the gateway current.

    ats-gateway events                    run the subscriber (several may run; one is active)
    init_app(app)                         start-up step: /readyz "events", the jobs service
                                          learns whether a subscriber keeps it current and
                                          which jobs are gone (410)
    build_subscriber(app) -> Subscriber   the subscriber over the app's long-lived services

Modules: :mod:`.subscriber` (stream, polling fallback, reconciliation), :mod:`.decoder`
(Avro + changedFields bitmaps), :mod:`.lease`, :mod:`.replay`, :mod:`.state`; the generated
Pub/Sub API stubs in :mod:`.proto`. The snapshot side is
:mod:`ats_gateway.services.jobs.changes`, the applications side
:mod:`ats_gateway.services.applications.status_events`.
"""

from __future__ import annotations

from typing import Any

from ats_gateway.events.state import EventsState

__all__ = ["EventsState", "build_subscriber", "init_app", "run_subscriber"]

LEASE_KEY = "ats-gateway:events:lease"
REPLAY_KEY = "ats-gateway:events:replay"
WATERMARK_KEY = "ats-gateway:events:watermark"


def init_app(app: Any) -> EventsState:
    """Start-up step (after the jobs service): readiness "events" and the jobs service hooks."""
    from ats_gateway.services.jobs.changes import GoneJobs

    settings = app.config["SETTINGS"]
    redis_client = app.extensions["redis"]
    state = EventsState(redis_client, heartbeat_seconds=settings.events_heartbeat_seconds)
    app.extensions["events_state"] = state
    jobs = app.extensions.get("jobs")
    if jobs is not None:
        gone = GoneJobs(redis_client)
        jobs.kept_current = state.live
        jobs.gone = gone.__contains__
    readiness = app.extensions.get("readiness")
    if readiness is not None:
        readiness.add("events", state.readiness)
    return state


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


def build_subscriber(app: Any) -> Any:
    """The subscriber over the app's Redis, jobs service and `job_portal` connection."""
    from ats_gateway.connections import get_connections
    from ats_gateway.events.lease import Lease
    from ats_gateway.events.replay import ReplayStore
    from ats_gateway.events.subscriber import Auth, Subscriber
    from ats_gateway.services.applications.runtime import CONNECTION, build_outbox
    from ats_gateway.services.applications.status_events import ApplicationStatusEvents
    from ats_gateway.services.jobs.changes import SnapshotChanges

    settings = app.config["SETTINGS"]
    redis_client = app.extensions["redis"]
    state = app.extensions.get("events_state") or init_app(app)
    client = get_connections(app).client(CONNECTION)

    def token(refresh: bool) -> Any:
        if refresh:
            return client.auth.refresh(stale=client.auth.cached())
        return client.auth.token()

    return Subscriber(
        channel=lambda: channel_for(settings),
        auth=Auth(token),
        changes=SnapshotChanges(app.extensions["jobs"], redis_client),
        applications=ApplicationStatusEvents(redis_client, build_outbox(settings, redis_client)),
        state=state,
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
