"""Hot keys read without a round trip: Redis's server-assisted client-side caching.

A few keys are read on every request and change rarely: the API-key generation (a key served
from the process's cache is confirmed against it) and the jobs catalogue's ``current``
pointer. Reading them from Redis cost a listing one round trip each. Each process now keeps
their values and one extra connection on which Redis itself says when a key under a tracked
prefix changes: ``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX ...`` and
``SUBSCRIBE __redis__:invalidate`` (the RESP2 form; Redis 6+ and every Valkey;
https://redis.io/docs/latest/develop/reference/client-side-caching/).

Before a value is served, the invalidations already received are applied: a non-blocking read
of that connection under a lock, no round trip. Redis sends an invalidation in the same pass of
its event loop as the writer's reply (just after it), so a change is seen by the requests that
reach a process from a few microseconds after the writer heard back (on another host, one
message's delivery time); the process that wrote a key itself forgets it at once (``forget``).

Whatever is uncertain empties the cache: a (re)connection, ``FLUSHDB`` (an invalidation of
``None``), any error on the tracking connection. Until the tracking connection is up (it is
opened by a background thread, never on a request's path), every read goes to Redis as before.
A value read while an invalidation arrived is served but not kept (the epoch moved). And a
value is kept at most ``max_age`` seconds (1 s): a connection that died without a word (a host
lost, no TCP reset) can make a process late by that much, never for longer; it costs each
process one GET per key a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"

_ALL: weakref.WeakSet[TrackedKeys] = weakref.WeakSet()


class HotKeys(Protocol):
    """What a store needs of the keys every request reads: ``get``, and ``forget`` after it
    wrote one itself (its own process sees its write at once, not when the invalidation
    arrives a moment after the write's reply)."""

    def get(self, key: str) -> bytes | None: ...

    def forget(self, key: str) -> None: ...


class PlainKeys:
    """:class:`HotKeys` without a cache (CLI commands, workers): every read is a GET."""

    def __init__(self, client: redis.Redis) -> None:
        self.get = client.get

    def forget(self, key: str) -> None:
        pass


class TrackedKeys:
    """Values of ``keys`` (exact names, tracked as prefixes), kept current by Redis.

    ``client`` answers the reads that miss; ``connect`` opens the tracking connection (a raw
    RESP2 ``redis.Connection`` on the same server, no retries: errors must surface here)."""

    def __init__(
        self,
        client: redis.Redis,
        connect: Callable[[], Any],
        keys: Iterable[str],
        *,
        poll_seconds: float = 0.5,
        max_age: float = 1.0,
    ) -> None:
        self.client = client
        self._connect = connect
        self.keys = tuple(dict.fromkeys(keys))
        self._tracked = frozenset(self.keys)
        self.poll_seconds = poll_seconds
        self.max_age = max_age
        self._lock = threading.Lock()
        self._values: dict[str, tuple[bytes | None, float]] = {}  # key -> (value, read at)
        self._epoch = 0
        self._conn: Any = None
        self._poller: Any = None
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        #: counts for tests and /metrics-style checks: reads served here, reads sent to Redis
        self.hits = 0
        self.misses = 0
        _ALL.add(self)

    # -- reading ------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value of ``key``: for one of ``keys``, from this process when Redis would have
        told it of a change; any other key (nobody tracks it) from Redis."""
        if key not in self._tracked:
            return self.client.get(key)
        self._ensure_started()
        now = time.monotonic()
        with self._lock:
            if self._drain():
                found = self._values.get(key)
                if found is not None and now - found[1] < self.max_age:
                    self.hits += 1
                    return found[0]
            epoch, tracking = self._epoch, self._conn is not None
        self.misses += 1
        value = self.client.get(key)
        if tracking:
            with self._lock:
                if self._drain() and self._epoch == epoch:
                    self._values[key] = (value, now)
        return value

    def forget(self, key: str) -> None:
        """This process wrote ``key``: the next read goes to Redis (the invalidation follows)."""
        with self._lock:
            self._epoch += 1
            self._values.pop(key, None)

    @property
    def tracking(self) -> bool:
        return self._conn is not None

    # -- the tracking connection -------------------------------------------------------

    def _drain(self) -> bool:
        """Apply what the tracking connection received (caller holds the lock); False when it
        is down (nothing cached can be trusted)."""
        conn = self._conn
        if conn is None:
            return False
        poller = self._poller
        if poller is not None and not poller.poll(0):
            # Nothing arrived since the last drain, which left redis-py's buffer empty: one
            # poll(2) instead of redis-py's non-blocking read (several calls and an exception).
            return True
        try:
            while conn.can_read(timeout=0):
                message = conn.read_response()
                if (
                    isinstance(message, list)
                    and len(message) == 3
                    and message[0] == b"message"
                    and message[1] == CHANNEL
                ):
                    self._invalidate(message[2])
        except (redis.RedisError, OSError) as exc:
            log.warning("tracked keys: the invalidation connection failed (%s)", type(exc).__name__)
            self._drop()
            return False
        return True

    def _invalidate(self, keys: list[bytes] | None) -> None:
        self._epoch += 1
        if keys is None:  # FLUSHDB / FLUSHALL, or the server asks us to forget everything
            self._values.clear()
            return
        for raw in keys:
            self._values.pop(raw.decode(errors="replace"), None)

    def _drop(self) -> None:
        conn, self._conn, self._poller = self._conn, None, None
        self._values.clear()
        self._epoch += 1
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()

    def _open(self) -> None:
        """Open the tracking connection (outside the lock: it may wait for a connect)."""
        conn = self._connect()
        conn.connect()
        conn.send_command("CLIENT", "ID")
        own_id = conn.read_response()
        prefixes = [part for key in self.keys for part in ("PREFIX", key)]
        conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *prefixes)
        conn.read_response()
        conn.send_command("SUBSCRIBE", CHANNEL)
        conn.read_response()
        sock = getattr(conn, "_sock", None)  # redis-py's socket (private; else no fast path)
        poller = None
        if sock is not None and hasattr(select, "poll"):  # (not on Windows)
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        with self._lock:
            self._drop()  # nothing read before this moment is known to be current
            if self._closed:  # closed while this connection was being opened
                conn.disconnect()
                return
            self._conn, self._poller = conn, poller

    def _ensure_started(self) -> None:
        if self._pid == os.getpid() or self._closed:
            return
        # First use in this process (gunicorn forks after the app is built): what the parent
        # held is not ours.
        with self._lock:
            if self._pid == os.getpid() or self._closed:
                return
            self._pid = os.getpid()
            # (the parent's socket is left alone: closing it here could shut it for the parent)
            self._conn = self._poller = None
            self._values.clear()
            self._thread = threading.Thread(
                target=_keep_tracking, args=(weakref.ref(self),), name="tracked-keys", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop tracking (the background thread ends at its next turn); reads go to Redis."""
        with self._lock:
            self._closed = True
            self._drop()


def close_all() -> None:
    """Close every tracker of this process (before its Redis goes away: a test session's end)."""
    for tracked in list(_ALL):
        tracked.close()


def _keep_tracking(ref: weakref.ReferenceType[TrackedKeys]) -> None:
    """Open the tracking connection, reopen it after a failure, and drain it while requests are
    few (so the server never buffers much for us). Ends with its TrackedKeys."""
    backoff, failing = 0.2, False
    while True:
        tracked = ref()
        if tracked is None or tracked._pid != os.getpid() or tracked._closed:
            return
        poll = tracked.poll_seconds
        if tracked._conn is None:
            try:
                tracked._open()
                if failing:
                    log.info("tracked keys: the invalidation connection is back")
                backoff, failing = 0.2, False
            except (redis.RedisError, OSError) as exc:
                if not failing:  # once per outage, not once per attempt
                    log.warning("tracked keys: no invalidation connection (%s)", type(exc).__name__)
                poll, backoff, failing = backoff, min(backoff * 2, 5.0), True
        else:
            with tracked._lock:
                tracked._drain()
        del tracked
        time.sleep(poll)
