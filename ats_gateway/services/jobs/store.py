"""The versioned jobs catalogue in Redis: full snapshots now and then, a log of deltas between.

Redis keys (prefix ``ats-gateway:jobs:``)::

    current          "<version>|<snapshot_at>"  read by every request (the gateway's processes
                     keep it, told of changes by Redis: see ``redis_tracking``)
    seq              INCR counter of versions (each version is one entry of ``log``)
    log              Redis Stream, one entry per version, id "<version>-1":
                       kind=delta     at, up (JSON: whole public records added or changed),
                                      rm (JSON: ids that left)
                       kind=snapshot  at (load ``snapshot:<version>`` instead of replaying)
    base             the version of the newest full snapshot
    snapshot:<v>     zlib(JSON {version, snapshot_at, records}); expires a while after replaced
    status           hash: last_success_at, count, duration_ms, api_calls, last_error, ...
    refresh-lock     single-flight lock of every writer (refresh, deltas, compaction)
    cooldown         throttles on-demand refresh attempts (SET NX EX)

A change costs one small log entry, not a catalogue: a process that is at version ``v`` reads
the entries after ``v`` (XRANGE) and applies them to its index in place. A full snapshot is
written at the first load, on reconciliation and at compaction (every ``compact_every``
deltas): ``base`` then points at it and the log is trimmed to start at the *previous* base
(XTRIM MINID), so the log stays bounded and a process at most one snapshot behind still
replays; one further behind (or at a trimmed or missing version) loads ``base`` and replays
from there.

Each write moves the log, ``current`` and ``status`` in one MULTI, so a reader that sees
version ``v`` in ``current`` finds its entry in the log. A failed refresh leaves ``current``
alone (the last catalogue keeps being served) and records the error for ``/readyz``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from ats_gateway.redis_tracking import HotKeys, PlainKeys

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


@dataclass(frozen=True)
class Entry:
    """One version of the log: a delta, or the mark of a full snapshot to load instead."""

    version: str
    snapshot_at: float
    kind: str  # "delta" | "snapshot"
    upserts: list[dict[str, Any]]
    removals: list[str]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class SnapshotStore:
    """Reads and writes snapshots and the delta log; knows nothing of Salesforce or of the
    query engine. Writers hold :meth:`lock`."""

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        key_prefix: str = KEY_PREFIX,
        keep_seconds: int = 3600,
        compact_every: int = 1000,
        clock: Callable[[], float] = time.time,
        hot: HotKeys | None = None,
    ) -> None:
        self.redis = redis_client
        # ``current`` is read by every request: the app passes keys the process answers
        # itself while Redis has not said they changed (`redis_tracking.TrackedKeys`).
        self.hot: HotKeys = hot or PlainKeys(redis_client)
        self.prefix = key_prefix
        self.keep_seconds = keep_seconds
        self.compact_every = max(1, int(compact_every))
        self.clock = clock

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- reading ------------------------------------------------------------------------

    def pointer(self, *, fresh: bool = False) -> Pointer | None:
        """What ``current`` says; ``fresh``: asked of Redis, not of the process's copy."""
        key = self.key("current")
        raw = self.redis.get(key) if fresh else self.hot.get(key)
        if not raw:
            return None
        version, _, at = raw.decode().partition("|")
        return Pointer(version, float(at or 0))

    def base(self) -> str | None:
        """The version of the newest full snapshot."""
        raw = self.redis.get(self.key("base"))
        return raw.decode() if raw else None

    def load(self, version: str) -> Snapshot | None:
        blob = self.redis.get(self.key(f"snapshot:{version}"))
        if blob is None:
            return None
        doc = json.loads(zlib.decompress(blob))
        return Snapshot(str(doc["version"]), float(doc["snapshot_at"]), doc["records"])

    def entries(self, after: str, upto: str | None = None) -> list[Entry]:
        """The log's entries of the versions after ``after`` (up to ``upto``), oldest first."""
        raw = self.redis.xrange(
            self.key("log"), min=f"{int(after) + 1}-0", max=f"{upto}-1" if upto else "+"
        )
        out = []
        for ident, fields in raw:
            kind = fields.get(b"kind", b"delta").decode()
            out.append(
                Entry(
                    ident.decode().partition("-")[0],
                    float(fields[b"at"]),
                    kind,
                    json.loads(fields[b"up"]) if b"up" in fields else [],
                    json.loads(fields[b"rm"]) if b"rm" in fields else [],
                )
            )
        return out

    def log_length(self) -> int:
        return int(self.redis.xlen(self.key("log")))

    def status(self) -> dict[str, str]:
        raw = self.redis.hgetall(self.key("status"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    # -- writing ------------------------------------------------------------------------

    def _snapshot_blob(self, version: str, records: list[dict[str, Any]], at: float) -> bytes:
        doc = {"version": version, "snapshot_at": at, "records": records}
        return zlib.compress(_dumps(doc), level=3)

    def _rebase(self, pipe: Any, version: str, blob: bytes) -> None:
        """Make ``snapshot:<version>`` the base; the previous base stays a while, and the log
        is trimmed to start at it (a process at most one snapshot behind still replays)."""
        previous = self.base()
        pipe.set(self.key(f"snapshot:{version}"), blob)
        pipe.set(self.key("base"), version)
        if previous is not None and previous != version:
            # The base never expires (an org outage of any length keeps it served); the one
            # it replaces stays a while for processes that are loading it right now.
            pipe.expire(self.key(f"snapshot:{previous}"), self.keep_seconds)
            pipe.xtrim(self.key("log"), minid=f"{previous}-0", approximate=False)

    def publish(self, records: list[dict[str, Any]], *, snapshot_at: float, **info: Any) -> Pointer:
        """Store ``records`` as a new version that every process loads whole (the first load,
        a contract change); returns its pointer. Prefer :meth:`append` for changes."""
        version = str(self.redis.incr(self.key("seq")))
        blob = self._snapshot_blob(version, records, snapshot_at)
        pipe = self.redis.pipeline(transaction=True)
        self._rebase(pipe, version, blob)
        pipe.xadd(self.key("log"), {"kind": "snapshot", "at": repr(snapshot_at)}, id=f"{version}-1")
        pipe.set(self.key("current"), f"{version}|{snapshot_at!r}")
        self._status(pipe, version, snapshot_at, len(records), bytes=len(blob), **info)
        pipe.execute()
        self.hot.forget(self.key("current"))
        return Pointer(version, snapshot_at)

    def append(
        self,
        upserts: list[dict[str, Any]],
        removals: list[str],
        *,
        snapshot_at: float,
        count: int,
        **info: Any,
    ) -> Pointer:
        """A new version that is the current one plus this delta (``count``: jobs after it)."""
        version = str(self.redis.incr(self.key("seq")))
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            self.key("log"),
            {
                "kind": "delta",
                "at": repr(snapshot_at),
                "up": _dumps(upserts),
                "rm": _dumps(removals),
            },
            id=f"{version}-1",
        )
        pipe.set(self.key("current"), f"{version}|{snapshot_at!r}")
        self._status(pipe, version, snapshot_at, count, **info)
        pipe.execute()
        self.hot.forget(self.key("current"))
        return Pointer(version, snapshot_at)

    def compact(self, version: str, records: list[dict[str, Any]], *, snapshot_at: float) -> None:
        """Write the full catalogue of ``version`` (already in the log) as the new base."""
        blob = self._snapshot_blob(version, records, snapshot_at)
        pipe = self.redis.pipeline(transaction=True)
        self._rebase(pipe, version, blob)
        pipe.hset(self.key("status"), mapping={"base": version, "bytes": str(len(blob))})
        pipe.execute()

    def deltas_since_base(self) -> int:
        """How many versions the log holds after the base (what a newcomer replays)."""
        base, pointer = self.base(), self.pointer()
        if base is None or pointer is None:
            return 0
        return max(0, int(pointer.version) - int(base))

    def _status(self, pipe: Any, version: str, at: float, count: int, **info: Any) -> None:
        pipe.hset(
            self.key("status"),
            mapping={
                "version": version,
                "last_success_at": repr(at),
                "count": str(count),
                "last_error": "",
                "last_error_at": "",
                **{k: str(v) for k, v in info.items()},
            },
        )

    def record_failure(self, reason: str) -> None:
        self.redis.hset(
            self.key("status"),
            mapping={"last_error": reason[:300], "last_error_at": repr(self.clock())},
        )

    def lock(self, timeout: float) -> redis.lock.Lock:
        """The single-flight lock of writers (expires by itself if its holder dies)."""
        return self.redis.lock(self.key("refresh-lock"), timeout=timeout, thread_local=False)

    def claim_attempt(self, cooldown: float) -> bool:
        """At most one on-demand refresh attempt per ``cooldown`` seconds, across processes."""
        return bool(self.redis.set(self.key("cooldown"), b"1", nx=True, px=int(cooldown * 1000)))

    def clear(self) -> None:
        """Forget every snapshot and the log (tests)."""
        for key in self.redis.scan_iter(match=self.prefix + "*"):
            self.redis.delete(key)
        self.hot.forget(self.key("current"))


class LocalCache:
    """This process's one copy of the catalogue (a JobIndex kept current by deltas)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Any = None  # a JobIndex
