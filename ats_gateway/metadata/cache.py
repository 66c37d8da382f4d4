"""Describe cache: one entry per (connection, sObject) in Redis, shared by every process.

An entry is revalidated against the org with `If-Modified-Since` on demand (first use, or
`refresh()`), after each full reconciliation of the jobs catalogue and at the latest every
`describe_refresh_seconds` (the `ats_gateway.metadata.refresh_describes` beat task, which asks
`revalidated_at()` whether one is due), and at once for one object when the org refuses a
value its cached describe allowed. A revalidation of many objects costs one Describe Global
call per connection when nothing changed (`refresh_all`). When the
org cannot be reached and Redis holds nothing, the snapshot in `schemas/objects/` is served and
the entry says so (`source: "snapshot"`), which `/readyz` shows with the entry's age.

Each process keeps the parsed describe in memory and checks the (tiny) version field in Redis at
most every `local_ttl` seconds, so a refresh made by a worker reaches every gateway process
without a restart, and a request does not move 40 KB of JSON out of Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from ats_gateway.metadata.describe import (
    NOT_MODIFIED,
    DescribeFetcher,
    ObjectDescribe,
    describe_version,
    http_date,
    load_snapshot,
)

log = logging.getLogger(__name__)

ORG, SNAPSHOT = "org", "snapshot"
KEY_PREFIX = "ats-gateway:describe:"
#: when the last scheduled revalidation of every describe ran (epoch seconds), whatever came of it
REVALIDATED_AT = "revalidated-at"
#: when intake last refused a picklist value the cached describe does not list (epoch seconds)
REQUESTED_AT = "revalidation-requested-at"


@dataclass(frozen=True)
class CachedDescribe:
    """A describe as cached, with where it came from and when."""

    connection: str
    sobject: str
    describe: ObjectDescribe
    version: str
    source: str  # "org" | "snapshot"
    fetched_at: float  # when this describe's content was obtained (epoch seconds)
    checked_at: float  # last successful revalidation against the org (or load of the snapshot)
    last_modified: str | None = None  # HTTP date sent as If-Modified-Since next time
    error: str | None = None  # the last refresh failure, cleared by a successful one

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.checked_at)

    def to_redis(self) -> dict[str, str]:
        return {
            "describe": json.dumps(self.describe.raw, separators=(",", ":")),
            "version": self.version,
            "source": self.source,
            "fetched_at": repr(self.fetched_at),
            "checked_at": repr(self.checked_at),
            "last_modified": self.last_modified or "",
            "error": self.error or "",
        }

    @classmethod
    def from_redis(cls, connection: str, sobject: str, data: Mapping[bytes, bytes]) -> Any:
        values = {k.decode(): v.decode() for k, v in data.items()}
        raw = json.loads(values["describe"])
        return cls(
            connection=connection,
            sobject=sobject,
            describe=ObjectDescribe(raw),
            version=values.get("version") or describe_version(raw),
            source=values.get("source") or SNAPSHOT,
            fetched_at=float(values.get("fetched_at") or 0),
            checked_at=float(values.get("checked_at") or 0),
            last_modified=values.get("last_modified") or None,
            error=values.get("error") or None,
        )


class DescribeCache:
    """Describes per connection and object: Redis first, then the org, then the snapshot.

    `fetchers` maps a connection name to a :class:`~ats_gateway.metadata.describe.DescribeFetcher`
    (or None when that connection is not configured: the snapshot is served).
    """

    def __init__(
        self,
        redis_client: redis.Redis | None,
        schemas_dir: str | Path,
        fetchers: Mapping[str, DescribeFetcher | None] | None = None,
        *,
        local_ttl: float = 1.0,
        key_prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        failure_backoff: float = 30.0,
        clock_skew: float = 120.0,
    ) -> None:
        self.redis = redis_client
        self.schemas_dir = Path(schemas_dir)
        self.fetchers: dict[str, DescribeFetcher | None] = dict(fetchers or {})
        self.local_ttl = local_ttl
        self.key_prefix = key_prefix
        self.clock = clock
        self.failure_backoff = failure_backoff
        #: `accept(connection, sobject, describe)` -> None, or why a fetched describe must not
        #: replace the cached one (set by Metadata: the contracts must still fit)
        self.accept: Callable[[str, str, ObjectDescribe], str | None] | None = None
        # If-Modified-Since is compared with the org's clock: ask "since a little before we
        # fetched", so a change made just after our fetch is not lost to clock skew.
        self.clock_skew = clock_skew
        self._down_until: dict[str, float] = {}  # connection -> no fetch before (unreachable)
        self._redis_down_until = 0.0  # no Redis read before (it was unreachable)
        self._local: dict[tuple[str, str], tuple[CachedDescribe, float]] = {}
        self._lock = threading.Lock()
        self._requested = 0.0

    def key(self, connection: str, sobject: str) -> str:
        return f"{self.key_prefix}{connection}:{sobject}"

    # ----------------------------------------------------------------------- reading

    def get(self, connection: str, sobject: str) -> CachedDescribe:
        """The current describe; loads it (org, else snapshot) on first use."""
        pair = (connection, sobject)
        now = self.clock()
        local = self._local.get(pair)
        if local and now - local[1] < self.local_ttl:
            return local[0]
        try:
            if self._redis_down_until > now:
                raise redis.ConnectionError("unreachable at the last attempt; retrying later")
            stored_version = self._redis_version(connection, sobject)
        except redis.RedisError as exc:
            if self._redis_down_until <= now:
                # One wait for Redis's retries per backoff, not one per describe read: with
                # Redis down, a start-up check reads a hundred describes (it took 166 s).
                self._redis_down_until = now + self.failure_backoff
                log.warning("describe cache: Redis unavailable (%s); serving local copy", exc)
            return local[0] if local else self._remember(self._from_snapshot(pair, str(exc)))
        if stored_version is None:
            return self.refresh(connection, sobject)
        if local and local[0].version == stored_version:
            self._local[pair] = (local[0], now)
            return local[0]
        entry = self._read(connection, sobject)
        if entry is None:  # deleted between the two reads
            return self.refresh(connection, sobject)
        return self._remember(entry)

    def peek(self, connection: str, sobject: str) -> CachedDescribe | None:
        """What Redis holds, without loading anything (for status reports)."""
        try:
            return self._read(connection, sobject)
        except redis.RedisError:
            local = self._local.get((connection, sobject))
            return local[0] if local else None

    # ----------------------------------------------------------------------- refreshing

    def refresh(self, connection: str, sobject: str, *, force: bool = False) -> CachedDescribe:
        """Revalidate one describe against the org (`If-Modified-Since` unless `force`)."""
        pair = (connection, sobject)
        try:
            current = self._read(connection, sobject)
        except redis.RedisError:
            current = None
        if current is None and pair in self._local:
            current = self._local[pair][0]
        fetcher = self.fetchers.get(connection)
        now = self.clock()
        if fetcher is None:
            if current is not None and current.source == ORG:
                return self._remember(current)  # another process talks to the org; keep it
            entry = self._from_snapshot(pair, None)
            if current is not None and current.version == entry.version:
                entry = replace(current, checked_at=now)
            return self._store(entry)
        since = None if force or current is None or current.source != ORG else current.last_modified
        try:
            if self._down_until.get(connection, 0) > now:
                raise ConnectionError("org unreachable at the last attempt; retrying later")
            answer = fetcher(sobject, if_modified_since=since)
        except Exception as exc:  # the org is down or refuses: keep serving what we have
            reason = f"{type(exc).__name__}: {exc}"[:300]
            if getattr(exc, "retryable", False) or isinstance(exc, OSError):
                # one timeout per connection, not one per object, while the org is down
                self._down_until[connection] = now + self.failure_backoff
            log.warning("describe refresh failed for %s/%s: %s", connection, sobject, reason)
            if current is None:
                return self._store(self._from_snapshot(pair, reason))
            return self._store(replace(current, error=reason))
        self._down_until.pop(connection, None)
        if answer is NOT_MODIFIED:
            if current is None:  # a 304 to an unconditional request: cannot happen, be safe
                return self.refresh(connection, sobject, force=True)
            # unchanged as of now: the next If-Modified-Since may start from here
            return self._store(
                replace(current, checked_at=now, last_modified=self._since(now), error=None)
            )
        if not isinstance(answer, Mapping) or "fields" not in answer:
            raise TypeError(f"describe fetcher returned {type(answer).__name__}, not a describe")
        version = describe_version(answer)
        if current is not None and current.version == version and current.source == ORG:
            entry = replace(current, checked_at=now, last_modified=self._since(now), error=None)
        else:
            entry = CachedDescribe(
                connection=connection,
                sobject=sobject,
                describe=ObjectDescribe(dict(answer)),
                version=version,
                source=ORG,
                fetched_at=now,
                checked_at=now,
                last_modified=self._since(now),
            )
            if current is not None and current.version != version:
                log.info("describe of %s/%s changed (%s)", connection, sobject, version)
            problem = self.accept(connection, sobject, entry.describe) if self.accept else None
            if problem:
                # A describe that breaks a contract (a field renamed or deleted in the org) must
                # not replace one that works: keep serving the last good one, and say why.
                log.error("describe of %s/%s not taken: %s", connection, sobject, problem)
                if current is None:
                    current = self._from_snapshot(pair, None)
                return self._store(replace(current, error=f"ContractError: {problem}"[:300]))
        return self._store(entry)

    def refresh_all(
        self, pairs: Iterable[tuple[str, str]], *, force: bool = False
    ) -> list[CachedDescribe]:
        """Revalidate many describes. A fetcher with `any_changed(if_modified_since)` (the
        org's object list, `GET /sobjects` with If-Modified-Since, which also changes on
        permission changes) is asked once per connection first: when nothing changed since the
        oldest check, every entry of that connection is confirmed with that one call."""
        pairs = list(pairs)
        confirmed: dict[tuple[str, str], CachedDescribe] = {}
        if not force:
            for connection in dict.fromkeys(conn for conn, _ in pairs):
                objects = [obj for conn, obj in pairs if conn == connection]
                confirmed.update(self._confirm_unchanged(connection, objects))
        return [
            confirmed.get((conn, obj)) or self.refresh(conn, obj, force=force)
            for conn, obj in pairs
        ]

    def _confirm_unchanged(
        self, connection: str, objects: list[str]
    ) -> dict[tuple[str, str], CachedDescribe]:
        probe = getattr(self.fetchers.get(connection), "any_changed", None)
        if probe is None:
            return {}
        now = self.clock()
        if self._down_until.get(connection, 0) > now:
            return {}
        entries = []
        for sobject in objects:
            try:
                entry = self._read(connection, sobject)
            except redis.RedisError:
                return {}
            # An entry whose last refresh failed (org down, or a describe not taken because it
            # broke a contract) still holds the `last_modified` of its last good check, so the
            # probe from there is right for it too; only entries never had from the org need
            # their own describe.
            if entry is None or entry.source != ORG or not entry.last_modified:
                return {}
            entries.append(entry)
        oldest = min(entries, key=lambda e: e.checked_at).last_modified
        try:
            changed = probe(oldest)
        except Exception as exc:  # let the per-object refresh find and record the failure
            log.info("describe global check failed for %s: %s", connection, exc)
            return {}
        if changed:
            return {}
        since = self._since(now)
        return {
            (connection, e.sobject): self._store(replace(e, checked_at=now, last_modified=since))
            for e in entries
        }

    def revalidated_at(self) -> float | None:
        """When the last scheduled revalidation ran (None: never, or Redis cannot say)."""
        if self.redis is None:
            return None
        try:
            value = self.redis.get(self.key_prefix + REVALIDATED_AT)
        except redis.RedisError:
            return None
        return float(value) if value else None

    def request_revalidation(self) -> None:
        """Intake refused a value the org may have added since: ask beat for a revalidation
        (it honours this at most every few minutes). At most one Redis write a second here."""
        now = self.clock()
        if self.redis is None or now - self._requested < 1.0:
            return
        self._requested = now
        with contextlib.suppress(redis.RedisError):
            self.redis.set(self.key_prefix + REQUESTED_AT, repr(now))

    def revalidation_requested_at(self) -> float | None:
        if self.redis is None:
            return None
        try:
            value = self.redis.get(self.key_prefix + REQUESTED_AT)
        except redis.RedisError:
            return None
        return float(value) if value else None

    def mark_revalidated(self, at: float | None = None) -> None:
        if self.redis is not None:
            with contextlib.suppress(redis.RedisError):
                self.redis.set(self.key_prefix + REVALIDATED_AT, repr(at or self.clock()))

    def forget(self, connection: str, sobject: str) -> None:
        """Drop an entry (tests, and `schemas pull` after writing a snapshot)."""
        self._local.pop((connection, sobject), None)
        if self.redis is not None:
            self.redis.delete(self.key(connection, sobject))

    # ----------------------------------------------------------------------- status

    def status(self, pairs: Iterable[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
        """Readiness: each entry's source and age; "degraded" when a configured org is not
        what we serve from, or the last refresh failed."""
        now = self.clock()
        state = "ok"
        objects: dict[str, Any] = {}
        for conn, obj in pairs:
            meta = self._meta(conn, obj)
            name = f"{conn}/{obj}"
            if meta is None:
                objects[name] = {"source": None, "loaded": False}
                continue
            info: dict[str, Any] = {
                "source": meta["source"],
                "age_seconds": round(max(0.0, now - float(meta["checked_at"] or 0)), 1),
                "version": meta["version"],
            }
            if meta["error"]:
                info["error"] = meta["error"]
            expects_org = self.fetchers.get(conn) is not None
            if meta["error"] or (expects_org and meta["source"] != ORG):
                state = "degraded"
            objects[name] = info
        sources = {v["source"] for v in objects.values() if v.get("source")}
        source = sources.pop() if len(sources) == 1 else ("mixed" if sources else None)
        return state, {"source": source, "objects": objects}

    # ----------------------------------------------------------------------- internals

    def _meta(self, connection: str, sobject: str) -> dict[str, str] | None:
        """An entry's small fields, without its describe (readiness runs often)."""
        names = ("version", "source", "checked_at", "error")
        try:
            if self.redis is None:
                raise redis.RedisError("no Redis")
            values = self.redis.hmget(self.key(connection, sobject), names)
        except redis.RedisError:
            local = self._local.get((connection, sobject))
            if local is None:
                return None
            e = local[0]
            return {
                "version": e.version,
                "source": e.source,
                "checked_at": str(e.checked_at),
                "error": e.error or "",
            }
        if values[0] is None:
            return None
        return {n: (v or b"").decode() for n, v in zip(names, values, strict=True)}

    def _since(self, now: float) -> str:
        return http_date(datetime.fromtimestamp(now - self.clock_skew, UTC))

    def _redis_version(self, connection: str, sobject: str) -> str | None:
        if self.redis is None:
            local = self._local.get((connection, sobject))
            return local[0].version if local else None
        value = self.redis.hget(self.key(connection, sobject), "version")
        return value.decode() if value else None

    def _read(self, connection: str, sobject: str) -> CachedDescribe | None:
        if self.redis is None:
            local = self._local.get((connection, sobject))
            return local[0] if local else None
        data = self.redis.hgetall(self.key(connection, sobject))
        if not data or b"describe" not in data:
            return None
        return CachedDescribe.from_redis(connection, sobject, data)

    def _from_snapshot(self, pair: tuple[str, str], error: str | None) -> CachedDescribe:
        raw = load_snapshot(self.schemas_dir, pair[1])
        now = self.clock()
        return CachedDescribe(
            connection=pair[0],
            sobject=pair[1],
            describe=ObjectDescribe(raw),
            version=describe_version(raw),
            source=SNAPSHOT,
            fetched_at=now,
            checked_at=now,
            error=error,
        )

    def _store(self, entry: CachedDescribe) -> CachedDescribe:
        if self.redis is not None:
            try:
                key = self.key(entry.connection, entry.sobject)
                pipe = self.redis.pipeline()
                pipe.hset(key, mapping=entry.to_redis())
                pipe.execute()
            except redis.RedisError as exc:
                log.warning("describe cache: could not store %s: %s", entry.sobject, exc)
        return self._remember(entry)

    def _remember(self, entry: CachedDescribe) -> CachedDescribe:
        with self._lock:
            self._local[(entry.connection, entry.sobject)] = (entry, self.clock())
        return entry
