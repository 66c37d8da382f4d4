"""The sandbox's Pub/Sub API: Salesforce's ``eventbus.v1.PubSub`` gRPC service over the bus.

Implements ``Subscribe`` (bidirectional; flow control by ``num_requested``, capped at 100
outstanding; replay presets LATEST / EARLIEST / CUSTOM honoured on the first FetchRequest
only; an empty keepalive FetchResponse carrying ``latest_replay_id`` while events are owed
and none arrive), ``GetTopic`` and ``GetSchema``. ``Publish``, ``PublishStream`` and
``ManagedSubscribe`` answer UNIMPLEMENTED (change events cannot be published). A stream
owed no events and sent no FetchRequest for ``pubsub_idle_close_seconds`` (60 s, as
Salesforce) after its last FetchResponse is ended by the server (status OK).

Every call must carry the metadata ``accesstoken`` (a session of the sandbox's OAuth token
endpoint, the same token as REST), ``instanceurl`` and ``tenantid`` (the org id, 15 or 18
chars). Failures are a gRPC status whose description ends with ``rpcId: <uuid>`` plus the
trailers ``error-code: sfdc.platform.eventbus.grpc.<code>`` and ``rpc-id`` (Pub/Sub API guide,
"Handling Errors"; the status per code is documented only for some codes, see the README).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import grpc

from sandbox_org.ids import ORG_ID
from sandbox_org.pubsub.cdc import ChangeEvents, replay_bytes
from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2
from sandbox_org.pubsub.proto import pubsub_api_pb2_grpc as pb2_grpc

_log = logging.getLogger(__name__)

MAX_REQUESTED = 100  # events owed to one Subscribe call at most (Pub/Sub API flow control)
KEEPALIVE_SECONDS = 270.0  # an empty FetchResponse at least this often while events are owed
#: A stream owed no events is closed this long after its last FetchResponse unless a new
#: FetchRequest arrives (Pub/Sub API guide, "Subscribe RPC Method", keepalive table: 60 s;
#: Salesforce's Java sample says 70 s). ``SandboxConfig.pubsub_idle_close_seconds``.
IDLE_CLOSE_SECONDS = 60.0
_PREFIX = "sfdc.platform.eventbus.grpc."


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error_code, self.message = code, error_code, message


def _fail(context: grpc.ServicerContext, rpc_id: str, err: _Abort) -> None:
    context.set_trailing_metadata((("error-code", _PREFIX + err.error_code), ("rpc-id", rpc_id)))
    context.abort(err.code, f"{err.message} rpcId: {rpc_id}")


@dataclass
class _Stream:
    """One Subscribe call's flow-control state (guarded by the bus condition)."""

    topic: str
    pending: int = 0
    closed: bool = False
    error: _Abort | None = None
    generation: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class PubSubServicer(pb2_grpc.PubSubServicer):
    def __init__(self, sandbox: Any, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.sb = sandbox
        self.bus: ChangeEvents = sandbox.events
        self.keepalive_seconds = keepalive_seconds

    # -- checks shared by every RPC -----------------------------------------------------------

    def _check(self, context: grpc.ServicerContext) -> None:
        if self.bus.down:
            raise _Abort(
                grpc.StatusCode.UNAVAILABLE,
                "service.unavailable",
                "The service is unavailable. Try again later.",
            )
        md = {k.lower(): v for k, v in context.invocation_metadata()}
        token = md.get("accesstoken")
        tenant = md.get("tenantid", "")
        instance = urlparse(md.get("instanceurl", ""))
        configured = self.sb.config.instance_url
        session = self.sb.sessions.lookup(token) if isinstance(token, str) and token else None
        if (
            session is None
            or tenant not in (ORG_ID, ORG_ID[:15])
            or instance.scheme not in ("http", "https")
            or not instance.netloc
            or (configured and urlparse(configured).netloc != instance.netloc)
        ):
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "service.auth.error",
                "Error validating the credentials or the session has expired. "
                "Provide valid credentials in the accesstoken, instanceurl and tenantid headers.",
            )

    def _topic_entity(self, topic: str) -> str | None:
        topics = self.bus.topics()
        if topic not in topics:
            raise _Abort(
                grpc.StatusCode.NOT_FOUND,
                "topic.not.found",
                f"The topic information for org {ORG_ID} and topic {topic} not found. "
                "Ensure the topic name is correct and that the topic exists.",
            )
        return topics[topic]

    # -- unary RPCs ---------------------------------------------------------------------------

    def GetTopic(self, request: Any, context: grpc.ServicerContext) -> Any:
        rpc_id = str(uuid.uuid4())
        try:
            self._check(context)
            entity = self._topic_entity(request.topic_name)
        except _Abort as err:
            _fail(context, rpc_id, err)
            raise  # unreachable: abort raises
        schema_id = self.bus.schemas[entity].schema_id if entity else ""
        return pb2.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=ORG_ID,
            can_publish=False,
            can_subscribe=True,
            schema_id=schema_id,
            rpc_id=rpc_id,
        )

    def GetSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        rpc_id = str(uuid.uuid4())
        try:
            self._check(context)
            schema = self.bus.by_schema_id.get(request.schema_id)
            if schema is None:
                raise _Abort(
                    grpc.StatusCode.NOT_FOUND,
                    "schema.not.found",
                    f"The schema {request.schema_id} was not found.",
                )
        except _Abort as err:
            _fail(context, rpc_id, err)
            raise
        return pb2.SchemaInfo(
            schema_json=schema.schema_json, schema_id=schema.schema_id, rpc_id=rpc_id
        )

    # -- Subscribe ----------------------------------------------------------------------------

    def Subscribe(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        rpc_id = str(uuid.uuid4())
        bus = self.bus
        try:
            self._check(context)
            first = next(request_iterator, None)
            if first is None:
                return
            entity = self._topic_entity(first.topic_name)
            if first.num_requested <= 0:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "subscription.fetch.requested.events.invalid",
                    "The number of requested events must be greater than zero.",
                )
            try:
                position = bus.start_position(first.replay_preset, first.replay_id)
            except ValueError as exc:
                if str(exc) == "missing":
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "subscription.fetch.replayid.validation.failed",
                        "A replay ID is required with the CUSTOM replay preset.",
                    ) from None
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "subscription.fetch.replayid.corrupted",
                    "The Replay ID validation failed. Ensure the Replay ID is valid "
                    "and within the retention window.",
                ) from None
        except _Abort as err:
            _fail(context, rpc_id, err)
            return

        stream = _Stream(first.topic_name, min(MAX_REQUESTED, first.num_requested))
        with bus.cond:
            stream.generation = bus.generation

        def on_done() -> None:
            with bus.cond:
                stream.closed = True
                bus.cond.notify_all()

        context.add_callback(on_done)
        reader = threading.Thread(
            target=self._read_requests,
            args=(request_iterator, stream),
            name="pubsub-fetch-reader",
            daemon=True,
        )
        reader.start()
        last_sent = time.monotonic()
        idle_close = float(getattr(self.sb.config, "pubsub_idle_close_seconds", IDLE_CLOSE_SECONDS))
        try:
            while True:
                with bus.cond:
                    deadline = last_sent + self.keepalive_seconds
                    idle_deadline = last_sent + idle_close
                    while not (
                        stream.closed
                        or stream.error
                        or bus.down
                        or bus.generation != stream.generation
                        or (stream.pending > 0 and bus.has_after(position))
                        or (stream.pending > 0 and time.monotonic() >= deadline)
                        or (stream.pending == 0 and time.monotonic() >= idle_deadline)
                    ):
                        wake = deadline if stream.pending > 0 else idle_deadline
                        bus.cond.wait(timeout=max(0.01, wake - time.monotonic()))
                    if stream.closed:
                        return
                    if stream.error:
                        raise stream.error
                    if bus.down or bus.generation != stream.generation:
                        raise _Abort(
                            grpc.StatusCode.UNAVAILABLE,
                            "service.unavailable",
                            "The service is unavailable. Try again later.",
                        )
                    if stream.pending == 0:
                        # Owed nothing and asked for nothing since the last response: the
                        # server ends the call, as Salesforce does after 60 s.
                        _log.info("pubsub: closing an idle stream (rpcId %s)", rpc_id)
                        return
                    events, tip = bus.after(position, entity, stream.pending)
                    if events and not bus.allocation.take(len(events)):
                        raise _Abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            "subscription.limit.exceeded",
                            "You have exceeded the event delivery limit for your org.",
                        )
                    stream.pending -= len(events)
                    position = tip
                    pending = stream.pending
                if events or time.monotonic() >= deadline:
                    last_sent = time.monotonic()
                    yield pb2.FetchResponse(
                        events=[
                            pb2.ConsumerEvent(
                                event=pb2.ProducerEvent(
                                    id=ev.event_id, schema_id=ev.schema_id, payload=ev.payload
                                ),
                                replay_id=replay_bytes(ev.seq),
                            )
                            for ev in events
                        ],
                        latest_replay_id=replay_bytes(tip),
                        rpc_id=rpc_id,
                        pending_num_requested=pending,
                    )
        except _Abort as err:
            _fail(context, rpc_id, err)

    def _read_requests(self, request_iterator: Any, stream: _Stream) -> None:
        """Later FetchRequests add to what is owed (topic must match; presets are ignored)."""
        bus = self.bus
        try:
            for req in request_iterator:
                with bus.cond:
                    if req.topic_name and req.topic_name != stream.topic:
                        stream.error = _Abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "subscription.fetch.topic.mismatch",
                            "The topic name in the FetchRequest does not match the "
                            "topic of the subscription.",
                        )
                    elif req.num_requested > 0:
                        stream.pending = min(MAX_REQUESTED, stream.pending + req.num_requested)
                    bus.cond.notify_all()
                    if stream.error:
                        return
        except Exception:  # the call ended (cancelled or closed): the response loop sees it
            _log.debug("pubsub request stream ended", exc_info=True)

    # -- not offered ------------------------------------------------------------------------

    def _unimplemented(self, context: grpc.ServicerContext, what: str) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{what} is not offered by the sandbox org")

    def Publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context, "Publish")

    def PublishStream(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context, "PublishStream")

    def ManagedSubscribe(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented(context, "ManagedSubscribe")


@dataclass
class PubSubServer:
    """A running Pub/Sub API endpoint (``port`` is the bound port)."""

    server: grpc.Server
    host: str
    port: int
    tls: bool

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float | None = 0.5) -> None:
        self.server.stop(grace).wait(10)


def start_pubsub(
    sandbox: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: tuple[bytes, bytes] | None = None,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    max_workers: int = 64,
) -> PubSubServer:
    """Serve the Pub/Sub API for ``sandbox`` (a ``Sandbox``) on host:port (0: a free port).

    ``tls``: (private key PEM, certificate chain PEM) to serve TLS; None serves plain text.
    Each open Subscribe call holds one of ``max_workers`` threads.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pubsub"),
        # No SO_REUSEPORT: a second sandbox on a taken port must fail, not share it.
        options=[("grpc.so_reuseport", 0)],
    )
    pb2_grpc.add_PubSubServicer_to_server(PubSubServicer(sandbox, keepalive_seconds), server)
    address = f"{host}:{port}"
    try:
        if tls:
            bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises on a failed bind in recent versions
        bound = 0
    if not bound:
        raise OSError(f"cannot bind the Pub/Sub API to {address}")
    server.start()
    return PubSubServer(server, host, bound, tls is not None)
