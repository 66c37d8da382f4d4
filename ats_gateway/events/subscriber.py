"""`ats-gateway events`: the org's change events, applied to the gateway's state.

One process at a time holds the Redis lease (:mod:`.lease`) and subscribes, through the
Pub/Sub API (``eventbus.v1.PubSub/Subscribe``, bidirectional gRPC, flow control by
``num_requested``), to the Change Data Capture channels of jobs and applications; others stand
by and take over within one lease period when it dies. After each applied batch the replay id is
stored in Redis (:mod:`.replay`) and a restarted subscriber resumes from it (``CUSTOM``).

Safety nets, each counted in the state hash (:mod:`.state`):

* a full reconciliation every ``events_reconcile_seconds`` (default 6 h), and at once when the
  stored replay id is refused as too old (``...replayid.corrupted`` /
  ``...validation.failed``), on a gap event (``GAP_*``) and on an overflow (``GAP_OVERFLOW``);
* when the endpoint is unreachable or the channel cannot be subscribed (CDC not enabled, no
  permission), delta polling: one ``queryAll`` of jobs with ``SystemModstamp > watermark``
  every ``events_poll_seconds`` (deleted rows included), never the full reload; the stream is
  tried again every ``events_stream_retry_seconds`` and polling stops when it is back.

Reference: Pub/Sub API guide, developer.salesforce.com/docs/platform/pub-sub-api (Subscribe
RPC, flow control, handling errors, event message durability) and the proto file
``pubsub_api.proto`` of github.com/forcedotcom/pub-sub-api, compiled into :mod:`.proto`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import redis

from ats_gateway.events.decoder import ChangeEvent, SchemaCache, decode_all
from ats_gateway.events.lease import Lease
from ats_gateway.events.proto import pubsub_api_pb2 as pb
from ats_gateway.events.proto import pubsub_api_pb2_grpc as pb_grpc
from ats_gateway.events.replay import ReplayStore
from ats_gateway.events.state import POLLING, STARTING, STREAM, EventsState
from ats_gateway.salesforce.errors import Unavailable
from ats_gateway.services.applications.status_events import ApplicationStatusEvents
from ats_gateway.services.jobs.changes import JobChange, SnapshotChanges
from ats_gateway.services.jobs.errors import RefreshFailed

log = logging.getLogger(__name__)

JOB_TOPIC = "/data/bpats__Job__ChangeEvent"
APPLICATION_TOPIC = "/data/bpats__Job_Board_Application__ChangeEvent"
MAX_REQUESTED = 100  # the most events one Subscribe may have outstanding (Pub/Sub API)
REPLAY_REFUSED = ("replayid.corrupted", "replayid.validation.failed")
# The stream cannot be had at all: fall back to polling (CDC not enabled, permission, down).
NO_STREAM_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)


CHANNEL_NAMES = {JOB_TOPIC: "jobs", APPLICATION_TOPIC: "applications"}


@dataclass(eq=False)
class Channel:
    """One change-event channel (a topic) and its own way of keeping current: its stream, or
    delta polling until ``next_try`` (each channel falls back and recovers on its own)."""

    name: str
    topic: str
    mode: str = STARTING
    reason: str = ""
    retries: int = 0
    next_try: float = 0.0  # when to (re)subscribe
    next_poll: float = 0.0  # polling: when to poll next
    call: Any = None
    wants: Any = None


class StreamDown(Exception):
    """The Pub/Sub stream is not available (the reason says why)."""


class ReplayTooOld(Exception):
    """The stored replay id is outside the retention window (or otherwise refused)."""


@dataclass
class Auth:
    """The call metadata of the Pub/Sub API: the connection's OAuth token, its instance URL
    and the org id (``tenantid``), plus the integration user's id (to ignore own changes)."""

    token: Callable[[bool], Any]  # force_refresh -> Token (access_token, instance_url, ...)

    def metadata(self, refresh: bool = False) -> tuple[tuple[str, str], ...]:
        tok = self.token(refresh)
        return (
            ("accesstoken", tok.access_token),
            ("instanceurl", tok.instance_url.rstrip("/")),
            ("tenantid", tok.org_id),
        )

    def user_id(self) -> str:
        tok = self.token(False)
        return tok.identity_url.rstrip("/").rsplit("/", 1)[-1] if tok.identity_url else ""


def _error_code(error: grpc.RpcError) -> str:
    """The ``error-code`` trailer Salesforce adds to a failed call ('' when absent)."""
    try:
        for key, value in error.trailing_metadata() or ():
            if key == "error-code":
                return str(value)
    except Exception:  # not every RpcError carries trailers
        return ""
    return ""


def _same_user(a: str, b: str) -> bool:
    return bool(a and b) and a[:15] == b[:15]


class Subscriber:
    """The subscriber loop (one thread does the stream; a heartbeat thread keeps the lease)."""

    def __init__(
        self,
        *,
        channel: Callable[[], grpc.Channel],
        auth: Auth,
        changes: SnapshotChanges,
        applications: ApplicationStatusEvents | None,
        state: EventsState,
        lease: Lease,
        replay: ReplayStore,
        watermark_key: str,
        reconcile_seconds: float = 6 * 3600,
        poll_seconds: float = 30.0,
        stream_retry_seconds: float = 60.0,
        heartbeat_seconds: float = 5.0,
        batch_size: int = MAX_REQUESTED,
        topics: Sequence[str] = (JOB_TOPIC, APPLICATION_TOPIC),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel_factory = channel
        self.auth = auth
        self.changes = changes
        self.applications = applications
        self.state = state
        self.lease = lease
        self.replay = replay
        self.redis = state.redis
        self.watermark_key = watermark_key
        self.reconcile_seconds = reconcile_seconds
        self.poll_seconds = poll_seconds
        self.stream_retry_seconds = stream_retry_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.batch_size = max(1, min(batch_size, MAX_REQUESTED))
        self.topics = tuple(topics)
        self.clock = clock
        self.stop_event = threading.Event()
        self.mode = STARTING
        self.reason = ""
        self._calls: list[Any] = []
        self._calls_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self.schemas: SchemaCache | None = None
        self.channels = self._new_channels()

    def _new_channels(self) -> dict[str, Channel]:
        return {t: Channel(CHANNEL_NAMES.get(t, t.rsplit("/", 1)[-1]), t) for t in self.topics}

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self.stop_event.set()
        self._cancel_calls()

    def _cancel_calls(self) -> None:
        with self._calls_lock:
            for call in self._calls:
                call.cancel()

    def run(self) -> None:
        """Stand by until the lease is ours, then keep the state current until stopped."""
        beat = threading.Thread(target=self._heartbeat_loop, name="events-heartbeat", daemon=True)
        beat.start()
        redis_failures = 0
        try:
            while not self.stop_event.is_set():
                try:
                    if not self.lease.acquire():
                        redis_failures = 0
                        self.stop_event.wait(self.heartbeat_seconds)
                        continue
                    redis_failures = 0
                    log.info("events: lease taken; this subscriber is active")
                    self._active()
                except (redis.RedisError, Unavailable) as exc:
                    # [20] Redis restarting, failing over or frozen (directly, or under the
                    # token cache: Unavailable, e.g. BusyLoadingError while Redis loads its
                    # AOF; or the org unreachable at that moment): stand by and try again
                    # (backoff up to the lease's length), never exit: a supervisor would not
                    # restart a clean exit. The lease lapses meanwhile; whoever reaches Redis
                    # first after it takes over, and the stream resumes from its replay id.
                    redis_failures += 1
                    delay = min(self.lease.ttl_ms / 1000, 0.5 * 2 ** min(redis_failures, 6))
                    log.warning(
                        "events: Redis or the org %s (%s); standing by, trying again in %.1f s",
                        "unreachable" if isinstance(exc, redis.ConnectionError) else "failed",
                        type(exc).__name__,
                        delay,
                    )
                    self._cancel_calls()
                    self.stop_event.wait(delay)
        finally:
            self.stop_event.set()
            self._cancel_calls()
            try:
                if self.lease.holder() == self.lease.token:
                    self.state.stopped()
                self.lease.release()
            except redis.RedisError:  # stopping anyway: the lease lapses on its own
                log.warning("events: lease not released (Redis unreachable); it lapses")
            if self._channel is not None:
                self._channel.close()

    def _holding(self) -> bool:
        return not self.stop_event.is_set() and self.lease.holder() == self.lease.token

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.heartbeat_seconds):
            try:
                if self.lease.holder() != self.lease.token:
                    continue
                if not self.lease.renew():
                    log.warning("events: lease lost; standing by")
                    self._cancel_calls()
                    continue
                self.state.heartbeat(self.mode, reason=self.reason)
                if self.mode == STREAM:
                    self.state.write(confirmed_at=repr(self.clock()))
                self._maybe_reconcile()
                self._maybe_prune()
            except Exception:
                log.exception("events: heartbeat failed")

    # ------------------------------------------------------------------ reconciliation

    def reconcile(self, reason: str) -> None:
        """One full reload of the snapshot (the safety net), counted in the state."""
        with self._reconcile_lock:
            self._reconcile(reason)

    _attempted_at = 0.0

    def _reconcile(self, reason: str) -> None:
        log.info("events: full reconciliation (%s)", reason)
        self._attempted_at = self.clock()
        try:
            result = self.changes.reconcile()
        except RefreshFailed as exc:
            log.warning("events: reconciliation failed: %s", str(exc)[:200])
            return
        self.state.count_reconciliation(reason)
        self.state.write(confirmed_at=repr(self.clock()))
        log.info("events: reconciled: %s", result.as_dict())

    def _maybe_reconcile(self) -> None:
        """The periodic one; skipped while another runs (that one resets the clock)."""
        if self.clock() - self._attempted_at < 60 or not self._reconcile_lock.acquire(
            blocking=False
        ):
            return  # (a failed one is retried after a minute, not at every heartbeat)
        try:
            last = float(self.state.read().get("last_reconcile_at") or 0)
            if self.clock() - last >= self.reconcile_seconds:
                self._reconcile("interval")
        finally:
            self._reconcile_lock.release()

    _pruned_on: dt.date | None = None

    def _maybe_prune(self) -> None:
        """Once a day (UTC): jobs whose end date has passed leave, without an org call."""
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        if self._pruned_on == today:
            return
        report = self.changes.prune_expired()
        self._pruned_on = today
        if report.removed:
            log.info("events: %d jobs past their end date left the listing", report.removed)

    # ------------------------------------------------------------------ the active loop

    def _active(self) -> None:
        self._set_mode(STARTING, "")
        with self._reconcile_lock:  # (the heartbeat's periodic check may have done it)
            state = self.state.read()
            if self.changes.store.pointer() is None or not state.get("last_reconcile_at"):
                self._reconcile("start")
        self.channels = self._new_channels()
        channels = list(self.channels.values())
        self._published = None
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        try:
            while self._holding():
                now = self.clock()
                for channel in channels:
                    if channel.call is None and now >= channel.next_try:
                        self._open_channel(channel, inbox)
                    if channel.mode == POLLING and now >= channel.next_poll:
                        self._poll_channel(channel)
                self._publish_modes()
                due = min(
                    [c.next_poll for c in channels if c.mode == POLLING]
                    + [c.next_try for c in channels if c.call is None],
                    default=math.inf,
                )
                wait = min(self.heartbeat_seconds, max(due - self.clock(), 0.01))
                try:
                    topic, item = inbox.get(timeout=wait)
                except queue.Empty:
                    continue
                channel = self.channels[topic]
                if isinstance(item, tuple):  # (call, error): that call ended
                    call, error = item
                    if call is channel.call:
                        self._channel_ended(channel, error, opened=True)
                    continue
                self._handle(topic, item)
        finally:
            for channel in channels:
                self._close_channel(channel)

    _pending_reconcile: str | None = None

    def _set_mode(self, mode: str, reason: str) -> None:
        self.mode, self.reason = mode, reason
        self.state.heartbeat(mode, reason=reason)

    def _publish_modes(self) -> None:
        """The subscriber's mode is its channels': stream when every one streams, polling
        when any polls (readiness is degraded then), each channel's own in the state too."""
        channels = list(self.channels.values())
        polling = [c for c in channels if c.mode == POLLING]
        mode = POLLING if polling else STREAM if all(c.call for c in channels) else STARTING
        reason = "; ".join(f"{c.name}: {c.reason}" for c in polling)
        values = {}
        for c in channels:
            values[f"{c.name}_mode"] = c.mode
            values[f"{c.name}_reason"] = c.reason
        if (mode, reason, values) != self._published:
            self._published = (mode, reason, values)
            self.mode, self.reason = mode, reason
            self.state.heartbeat(mode, reason=reason, **values)

    _published: tuple[str, str, dict[str, str]] | None = None

    def _stub(self) -> pb_grpc.PubSubStub:
        if self._channel is None:
            self._channel = self.channel_factory()
        return pb_grpc.PubSubStub(self._channel)

    def _metadata_for(self, stub: Any, topic: str) -> Any:
        """The auth metadata, after checking ``topic`` can be had (``GetTopic``); raises
        :class:`StreamDown` with the reason when it cannot."""
        try:
            metadata = self.auth.metadata()
        except Exception as exc:
            raise StreamDown(f"no access token ({type(exc).__name__})") from None
        for attempt in (1, 2):
            try:
                stub.GetTopic(pb.TopicRequest(topic_name=topic), metadata=metadata, timeout=10)
                return metadata
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 1:
                    # The cached token expired: log in once and try again at once.
                    metadata = self.auth.metadata(refresh=True)
                    continue
                reason = f"GetTopic: {exc.code().name} {_error_code(exc)}".strip()
                raise StreamDown(reason) from None
        raise StreamDown("GetTopic: UNAUTHENTICATED")

    def _open_channel(self, channel: Channel, inbox: queue.Queue) -> None:
        """Subscribe ``channel`` (its topic only); a channel that cannot be had polls, alone:
        CDC off for jobs must not stop application status changes, nor the reverse."""
        try:
            stub = self._stub()
            metadata = self._metadata_for(stub, channel.topic)
        except StreamDown as exc:
            self._channel_ended(channel, exc)
            return
        # Schemas are fetched with the latest good token (one GetSchema per schema id).
        self.schemas = SchemaCache(
            lambda schema_id: (
                stub.GetSchema(
                    pb.SchemaRequest(schema_id=schema_id), metadata=metadata, timeout=30
                ).schema_json
            )
        )
        call, wants = self._open(stub, channel.topic, metadata, inbox)
        channel.call, channel.wants = call, wants
        with self._calls_lock:
            self._calls.append(call)
        threading.Thread(
            target=self._read,
            args=(channel.topic, call, wants, inbox),
            name=f"events-{channel.name}",
            daemon=True,
        ).start()
        was_polling = channel.mode == POLLING
        channel.mode, channel.reason = STREAM, ""
        if was_polling:
            log.info("events: %s stream back; its delta polling stops", channel.name)
        if channel.topic == JOB_TOPIC and self._pending_reconcile:
            reason, self._pending_reconcile = self._pending_reconcile, None
            self.reconcile(reason)

    def _close_channel(self, channel: Channel) -> None:
        call, wants = channel.call, channel.wants
        channel.call = channel.wants = None
        if call is None:
            return
        wants.put(None)
        call.cancel()
        with self._calls_lock:
            self._calls = [c for c in self._calls if c is not call]

    def _channel_ended(self, channel: Channel, error: Exception, *, opened: bool = False) -> None:
        """A channel's call ended (``opened``: it had been subscribed) or could not start:
        re-open it, or poll it alone."""
        self._close_channel(channel)
        now = self.clock()
        if isinstance(error, ReplayTooOld):
            log.warning("events: %s replay id refused (%s); reconciling", channel.name, error)
            self.replay.forget(channel.topic)
            if channel.topic == JOB_TOPIC:
                self._pending_reconcile = "replay_too_old"
            channel.next_try = now
            return
        # A stream that was up and dropped is re-opened at once (then after 1 s, 2 s: the
        # guide's bounded retries with backoff); polling only when that fails.
        channel.retries = 1 if opened else channel.retries + 1
        if channel.mode == STREAM and channel.retries <= 2:
            log.info("events: %s stream ended (%s); subscribing again", channel.name, error)
            channel.next_try = now + float(2 ** (channel.retries - 1) if channel.retries > 1 else 0)
            return
        if channel.mode != POLLING:
            log.warning("events: %s stream unavailable (%s); delta polling", channel.name, error)
            self.redis.delete(self._watermark_key(channel))
            channel.next_poll = now
        channel.mode, channel.reason = POLLING, str(error)
        channel.next_try = now + self.stream_retry_seconds
        if all(c.call is None for c in self.channels.values()) and self._channel is not None:
            self._channel.close()  # a fresh channel next time: no reconnect backoff
            self._channel = None

    def _poll_channel(self, channel: Channel) -> None:
        channel.next_poll = self.clock() + self.poll_seconds
        try:
            if channel.topic == JOB_TOPIC:
                self.poll_once()
            else:
                self.poll_applications_once()
        except Exception as exc:  # the org is unreachable too: keep serving, try again
            log.warning(
                "events: %s delta poll failed: %s",
                channel.name,
                f"{type(exc).__name__}: {exc}"[:200],
            )

    def _open(self, stub: Any, topic: str, metadata: Any, inbox: queue.Queue) -> tuple[Any, Any]:
        stored = self.replay.get(topic)
        first = pb.FetchRequest(topic_name=topic, num_requested=self.batch_size)
        if stored:
            first.replay_preset = pb.ReplayPreset.CUSTOM
            first.replay_id = stored
        else:
            first.replay_preset = pb.ReplayPreset.LATEST
        wants: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        wants.put(first)

        def requests() -> Iterator[pb.FetchRequest]:
            while True:
                request = wants.get()
                if request is None:
                    return
                yield request

        call = stub.Subscribe(requests(), metadata=metadata)
        return call, wants

    def _read(self, topic: str, call: Any, wants: queue.Queue, inbox: queue.Queue) -> None:
        """Forward one call's responses to the applying thread; ask for more as they come.
        When the call ends, ``(call, error)``: the applier ignores the end of a call it
        already replaced."""
        try:
            for response in call:
                inbox.put((topic, response))
                if response.pending_num_requested < self.batch_size // 2:
                    more = self.batch_size - response.pending_num_requested
                    wants.put(pb.FetchRequest(topic_name=topic, num_requested=more))
            inbox.put((topic, (call, StreamDown("the server ended the stream"))))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            code = _error_code(exc)
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and any(
                marker in code or marker in (exc.details() or "") for marker in REPLAY_REFUSED
            ):
                ended: Exception = ReplayTooOld(code or exc.details() or "")
            else:
                ended = StreamDown(f"Subscribe: {exc.code().name} {code}".strip())
            inbox.put((topic, (call, ended)))

    # ------------------------------------------------------------------ applying

    def _handle(self, topic: str, response: Any) -> None:
        if not response.events:
            # A keepalive: the bus is at latest_replay_id; storing it keeps a resume cheap.
            self.replay.set(topic, bytes(response.latest_replay_id))
            self.state.write(confirmed_at=repr(self.clock()))
            return
        assert self.schemas is not None
        events = decode_all(self.schemas, response.events)
        if topic == APPLICATION_TOPIC:
            if self.applications is not None:
                own = self.auth.user_id()
                self.applications.apply(
                    [e for e in events if not _same_user(e.commit_user, own)],
                    ignored=sum(1 for e in events if _same_user(e.commit_user, own)),
                )
        else:
            self.apply_job_events(events)
        # Only after the batch is applied: a crash before this line replays it (idempotent).
        self.replay.set(topic, bytes(response.events[-1].replay_id))
        self.state.write(last_event_at=repr(self.clock()), confirmed_at=repr(self.clock()))

    def apply_job_events(self, events: Sequence[ChangeEvent]) -> None:
        changes = []
        reconcile = ""
        for event in events:
            if event.is_overflow:
                reconcile = "overflow"
                continue
            if event.is_gap:
                reconcile = reconcile or "gap"
            changes.append(
                JobChange(
                    change_type=event.change_type,
                    record_ids=event.record_ids,
                    values=event.carried(),
                    needs_reread=bool(event.diff_fields),
                    commit_timestamp=event.commit_timestamp,
                )
            )
        if reconcile:
            self.reconcile(reconcile)
            return
        try:
            report = self.changes.apply(changes)
        except RefreshFailed as exc:
            log.warning("events: applying %d job changes failed (%s)", len(changes), exc)
            self.reconcile("apply_failed")
            return
        log.info("events: %d job changes applied: %s", len(changes), report.as_dict())

    # ------------------------------------------------------------------ delta polling

    def _watermark(self, key: str | None = None) -> dt.datetime:
        raw = self.redis.get(key or self.watermark_key)
        if raw:
            return dt.datetime.fromisoformat(raw.decode())
        # From when the snapshot was last known current (a minute of overlap is harmless:
        # applying a change twice leaves the same snapshot and publishes nothing).
        state = self.state.read()
        known = float(state.get("confirmed_at") or 0) or self.clock()
        return dt.datetime.fromtimestamp(known - 60, dt.UTC).replace(microsecond=0)

    def poll_once(self) -> None:
        watermark = self._watermark()
        report, newest = self.changes.poll(watermark)
        self.redis.set(self.watermark_key, newest.isoformat())
        self.state.write(confirmed_at=repr(self.clock()))
        if report.upserted or report.removed:
            log.info("events: delta poll applied %s", report.as_dict())

    def poll_applications_once(self) -> None:
        """Application status changes by delta polling (the applications channel cannot be
        streamed): one ``queryAll`` of the applications changed since the watermark."""
        if self.applications is None:
            return
        key = self._watermark_key(self.channels[APPLICATION_TOPIC])
        recorded, newest = self.applications.poll(
            self._watermark(key), own_user=self.auth.user_id()
        )
        self.redis.set(key, newest.isoformat())
        if recorded:
            log.info("events: delta poll recorded %d application status change(s)", recorded)

    def _watermark_key(self, channel: Channel) -> str:
        return (
            self.watermark_key
            if channel.topic == JOB_TOPIC
            else (f"{self.watermark_key}:{channel.name}")
        )
