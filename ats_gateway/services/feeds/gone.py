"""Which jobs were public and are not any more: the 410 Gone answer of closed jobs.

The jobs snapshot holds public jobs only, so a closed job is simply absent from it. To answer
410 (not 404) for a job that *was* listed, this module diffs each snapshot version it sees
against the previous one (Redis, shared by every process; no org call):

    ats-gateway:feeds:gone:live      hash id15 -> {"id","title","posted_at","digest","changed_at"}
                                     of the last version (``changed_at``: when its content last
                                     changed, as seen by the diff: the sitemap's ``lastmod``)
    ats-gateway:feeds:gone:closed    hash id15 -> {"id","title","posted_at","gone_at"}
    ats-gateway:feeds:gone:version   the last version diffed
    ats-gateway:feeds:gone:lock      one diff at a time (SET NX EX)

A job that comes back (reopened) leaves ``closed``. Entries of ``closed`` are kept for
``keep_seconds`` (default 90 days) and trimmed on each diff.

This is a stand-in with a deliberately small interface, :meth:`GoneJobs.lookup`: issue [12]
adds its own gone set to ``services/jobs`` (in-place snapshot updates). When that lands, point
:class:`~ats_gateway.services.feeds.FeedsService`'s ``gone`` callable at it and drop this
module. Until then a job closed before the gateway first saw the feeds, or closed and reopened
between two versions this process never saw, answers 404 instead of 410.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

PREFIX = "ats-gateway:feeds:gone:"


class GoneJobs:
    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        keep_seconds: float = 90 * 86400,
        clock: Callable[[], float] = time.time,
        prefix: str = PREFIX,
    ) -> None:
        self.redis = redis_client
        self.keep_seconds = keep_seconds
        self.clock = clock
        self.prefix = prefix

    def _key(self, name: str) -> str:
        return self.prefix + name

    def observe(self, version: str, docs: Iterable[Mapping[str, Any]]) -> bool:
        """Diff snapshot ``version`` against the last one diffed; False if skipped (already
        seen, older, or another process is at it)."""
        seen = self.redis.get(self._key("version"))
        if seen is not None and _newer_or_same(seen.decode(), version):
            return False
        if not self.redis.set(self._key("lock"), b"1", nx=True, ex=60):
            return False
        try:
            now = self.clock()
            previous = {k.decode(): v for k, v in self.redis.hgetall(self._key("live")).items()}
            first = not previous and seen is None
            current = {}
            for doc in docs:
                key = str(doc["id"])[:15]
                digest = _digest(doc)
                before = json.loads(previous[key]) if key in previous else None
                if before is not None and before.get("digest") == digest:
                    changed_at = before.get("changed_at")
                else:
                    changed_at = None if first else now
                current[key] = json.dumps(
                    {
                        "id": doc["id"],
                        "title": doc.get("title"),
                        "posted_at": doc.get("posted_at"),
                        "digest": digest,
                        "changed_at": changed_at,
                    },
                    separators=(",", ":"),
                )
            pipe = self.redis.pipeline(transaction=True)
            for key in previous.keys() - current.keys():
                info = json.loads(previous[key])
                info = {k: info.get(k) for k in ("id", "title", "posted_at")} | {"gone_at": now}
                pipe.hset(self._key("closed"), key, json.dumps(info, separators=(",", ":")))
            back = list(current.keys())
            if back:
                pipe.hdel(self._key("closed"), *back)
            pipe.delete(self._key("live"))
            if current:
                pipe.hset(self._key("live"), mapping=current)
            pipe.set(self._key("version"), version)
            pipe.execute()
            self._trim(now)
            return True
        finally:
            self.redis.delete(self._key("lock"))

    def _trim(self, now: float) -> None:
        old = [
            k
            for k, v in self.redis.hgetall(self._key("closed")).items()
            if now - float(json.loads(v).get("gone_at") or 0) > self.keep_seconds
        ]
        if old:
            self.redis.hdel(self._key("closed"), *old)

    def seen_version(self) -> str | None:
        raw = self.redis.get(self._key("version"))
        return None if raw is None else raw.decode()

    def changed_at(self) -> dict[str, float]:
        """id15 -> when the job's content last changed (jobs the diff saw change only)."""
        found = {}
        for key, raw in self.redis.hgetall(self._key("live")).items():
            when = json.loads(raw).get("changed_at")
            if when:
                found[key.decode()] = float(when)
        return found

    def lookup(self, job_id: str) -> dict[str, Any] | None:
        """What we kept of a job that left the snapshot (with ``gone_at``), or None."""
        if not job_id.isalnum() or len(job_id) not in (15, 18):
            return None
        raw = self.redis.hget(self._key("closed"), job_id[:15])
        if raw is None:
            return None
        info = json.loads(raw)
        if len(job_id) == 18 and str(info["id"])[15:].upper() != job_id[15:].upper():
            return None
        return info

    def clear(self) -> None:
        for name in ("live", "closed", "version", "lock"):
            self.redis.delete(self._key(name))


def _digest(doc: Mapping[str, Any]) -> str:
    raw = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:16]


def _newer_or_same(seen: str, version: str) -> bool:
    try:
        return int(seen) >= int(version)
    except ValueError:
        return seen == version
