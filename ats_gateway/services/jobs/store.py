"""The versioned jobs snapshot in Redis, and each process's decoded copy of it.

Redis keys (prefix ``ats-gateway:jobs:``)::

    current          "<version>|<snapshot_at>"  the one GET a request makes
    snapshot:<v>     zlib(JSON {version, snapshot_at, records}); expires a while after replaced
    seq              INCR counter of versions
    status           hash: last_success_at, count, duration_ms, api_calls, last_error, ...
    refresh-lock     single-flight lock of refreshes (every process, every path)
    cooldown         throttles on-demand refresh attempts (SET NX EX)

A refresh writes the new snapshot and moves ``current`` in one MULTI, so a reader sees the
old snapshot or the new one, never a mix. A failed refresh leaves ``current`` alone (the last
snapshot keeps being served) and records the error for ``/readyz``.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "ats-gateway:jobs:"


@dataclass(frozen=True)
class Pointer:
    """What ``current`` says: the snapshot's version and when it was taken (epoch seconds)."""

    version: str
    snapshot_at: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.snapshot_at)


@dataclass(frozen=True)
class Snapshot:
    version: str
    snapshot_at: float
    records: list[dict[str, Any]]


class SnapshotStore:
    """Reads and writes snapshots; knows nothing of Salesforce or of the query engine."""

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        key_prefix: str = KEY_PREFIX,
        keep_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.prefix = key_prefix
        self.keep_seconds = keep_seconds
        self.clock = clock

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- reading ------------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        raw = self.redis.get(self.key("current"))
        if not raw:
            return None
        version, _, at = raw.decode().partition("|")
        return Pointer(version, float(at or 0))

    def load(self, version: str) -> Snapshot | None:
        blob = self.redis.get(self.key(f"snapshot:{version}"))
        if blob is None:
            return None
        doc = json.loads(zlib.decompress(blob))
        return Snapshot(str(doc["version"]), float(doc["snapshot_at"]), doc["records"])

    def status(self) -> dict[str, str]:
        raw = self.redis.hgetall(self.key("status"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    # -- writing ------------------------------------------------------------------------

    def publish(self, records: list[dict[str, Any]], *, snapshot_at: float, **info: Any) -> Pointer:
        """Store ``records`` as the new current snapshot; returns its pointer."""
        version = str(self.redis.incr(self.key("seq")))
        blob = zlib.compress(
            json.dumps(
                {"version": version, "snapshot_at": snapshot_at, "records": records},
                separators=(",", ":"),
            ).encode(),
            level=3,
        )
        previous = self.pointer()
        pipe = self.redis.pipeline(transaction=True)
        # The current snapshot never expires (an org outage of any length keeps it served);
        # the one it replaces stays a while for processes that have not switched yet.
        pipe.set(self.key(f"snapshot:{version}"), blob)
        pipe.set(self.key("current"), f"{version}|{snapshot_at!r}")
        if previous is not None:
            pipe.expire(self.key(f"snapshot:{previous.version}"), self.keep_seconds)
        pipe.hset(
            self.key("status"),
            mapping={
                "version": version,
                "last_success_at": repr(snapshot_at),
                "count": str(len(records)),
                "bytes": str(len(blob)),
                "last_error": "",
                "last_error_at": "",
                **{k: str(v) for k, v in info.items()},
            },
        )
        pipe.execute()
        return Pointer(version, snapshot_at)

    def record_failure(self, reason: str) -> None:
        self.redis.hset(
            self.key("status"),
            mapping={"last_error": reason[:300], "last_error_at": repr(self.clock())},
        )

    def lock(self, timeout: float) -> redis.lock.Lock:
        """The single-flight lock of refreshes (expires by itself if its holder dies)."""
        return self.redis.lock(self.key("refresh-lock"), timeout=timeout, thread_local=False)

    def claim_attempt(self, cooldown: float) -> bool:
        """At most one on-demand refresh attempt per ``cooldown`` seconds, across processes."""
        return bool(self.redis.set(self.key("cooldown"), b"1", nx=True, px=int(cooldown * 1000)))

    def clear(self) -> None:
        """Forget every snapshot (tests)."""
        for key in self.redis.scan_iter(match=self.prefix + "*"):
            self.redis.delete(key)


class LocalCache:
    """This process's decoded copy: the index of the current version, built once per version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: Any = None  # a JobIndex

    def get(self, version: str, build: Callable[[], Any]) -> Any:
        found = self.current
        if found is not None and found.version == version:
            return found
        with self._lock:  # one decode per process and version, not one per thread
            found = self.current
            if found is None or found.version != version:
                built = build()
                if built is not None:
                    self.current = built
                    # The index is long-lived and large: keep the cyclic GC from walking it
                    # on every full collection (refcounting still frees an old version).
                    gc.freeze()
                return built
            return found
