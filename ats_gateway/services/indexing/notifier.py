"""The search engines' queues: job lifecycle events in, batched notifications out.

Per engine (prefix ``ats-gateway:search:<engine>:``)::

    pending     hash id15 -> the newest notification not yet told (JSON)
    order       zset id15 -> when its change happened (sent newest first)
    sent        hash id15 -> "TYPE|version" last told: one version of a job is told once
    backoff     hash attempts, next_at: after a failed request (exponential, with jitter)
    quota:<d>   publish requests counted on day <d> (Pacific time, as Google counts)
    quota-minute:<m>   and in minute <m> (Google: 380 requests a minute, all endpoints)
    lock        one publish run at a time per engine

    ats-gateway:search:stats   hash "<engine>|<type or request>|<outcome>" -> count (/metrics)

A job changed twice before it was told keeps only its newest state (pending is per job), so
the backlog is bounded by the number of jobs, not of changes. Beyond a daily quota the
gateway sends nothing more that day: what is pending stays, newest change first when the day
turns (Google counts its day in Pacific time), and a job's older pending state is replaced by
its newer one meanwhile. A crash between an engine's 200 and the ``sent`` record tells that
version again once (at least once, never lost).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import redis

from ats_gateway.services.indexing.model import (
    RETRY,
    SENT,
    URL_DELETED,
    URL_UPDATED,
    Notification,
    Result,
    RetryLater,
)

log = logging.getLogger(__name__)

PREFIX = "ats-gateway:search:"
STATS_KEY = PREFIX + "stats"
PACIFIC = ZoneInfo("America/Los_Angeles")

# KEYS pending, order, sent. ARGV id15, marker, json, at.
_INTAKE = """
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""

# KEYS pending, order, sent. ARGV id15, json as sent, marker or '' (rejected: not recorded).
_SETTLE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
return 1
"""


class Engine(Protocol):
    name: str
    batch_size: int

    def send(self, notes: list[Notification]) -> list[Result]: ...


class SearchNotifier:
    def __init__(
        self,
        redis_client: redis.Redis,
        engines: Iterable[Engine],
        *,
        job_url: Callable[[str], str],
        daily_quota: Mapping[str, int] | None = None,
        minute_quota: Mapping[str, int] | None = None,
        retry_base_seconds: float = 30.0,
        retry_max_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client
        self.engines = {e.name: e for e in engines}
        self.job_url = job_url
        self.daily_quota = dict(daily_quota or {})
        self.minute_quota = dict(minute_quota or {})
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.clock = clock
        self._intake = redis_client.register_script(_INTAKE)
        self._settle = redis_client.register_script(_SETTLE)

    def key(self, engine: str, name: str) -> str:
        return f"{PREFIX}{engine}:{name}"

    def _keys(self, engine: str) -> list[str]:
        return [self.key(engine, "pending"), self.key(engine, "order"), self.key(engine, "sent")]

    # ------------------------------------------------------------------ in

    def intake(self, events: Iterable[Any]) -> int:
        """Lifecycle events (:class:`~ats_gateway.services.jobs.lifecycle.LifecycleEvent`) ->
        pending notifications of every engine; returns how many were queued."""
        queued = 0
        for event in events:
            closed = event.event == "closed"
            note = Notification(
                job_id=event.job_id,
                url=self.job_url(event.job_id),
                type=URL_DELETED if closed else URL_UPDATED,
                version="closed" if closed else event.digest,
                at=event.at,
            )
            for engine in self.engines:
                queued += int(
                    self._intake(
                        keys=self._keys(engine),
                        args=[event.job_id[:15], note.marker, note.to_json(), repr(note.at)],
                    )
                )
        return queued

    # ------------------------------------------------------------------ out

    def quota_key(self, engine: str) -> str:
        day = dt.datetime.fromtimestamp(self.clock(), PACIFIC).date().isoformat()
        return self.key(engine, f"quota:{day}")

    def minute_key(self, engine: str) -> str:
        return self.key(engine, f"quota-minute:{int(self.clock() // 60)}")

    def remaining_quota(self, engine: str) -> int | None:
        """What the engine's quotas still allow now: today's, and this minute's."""
        left = []
        for quota, key in (
            (self.daily_quota.get(engine), self.quota_key(engine)),
            (self.minute_quota.get(engine), self.minute_key(engine)),
        ):
            if quota:
                left.append(max(0, quota - int(self.redis.get(key) or 0)))
        return min(left) if left else None

    def backoff_left(self, engine: str) -> float:
        next_at = self.redis.hget(self.key(engine, "backoff"), "next_at")
        return max(0.0, float(next_at) - self.clock()) if next_at else 0.0

    def due(self, engine: str) -> bool:
        """Something to send now (pending, not backing off, quota left)."""
        if not self.redis.zcard(self.key(engine, "order")) or self.backoff_left(engine):
            return False
        return self.remaining_quota(engine) != 0

    def publish(self, engine_name: str) -> dict[str, Any]:
        """One request to ``engine_name`` with its newest pending notifications."""
        engine = self.engines[engine_name]
        lock = self.redis.lock(
            self.key(engine_name, "lock"), timeout=300, blocking=False, thread_local=False
        )
        if not lock.acquire():
            return {"ran": False, "reason": "busy"}
        try:
            wait = self.backoff_left(engine_name)
            if wait:
                return {"ran": False, "reason": "backoff", "retry_in": wait}
            limit = engine.batch_size
            remaining = self.remaining_quota(engine_name)
            if remaining is not None:
                if remaining == 0:
                    return {"ran": False, "reason": "quota"}
                limit = min(limit, remaining)
            ids = self.redis.zrevrange(self.key(engine_name, "order"), 0, limit - 1)
            if not ids:
                return {"ran": False, "reason": "idle"}
            raws = self.redis.hmget(self.key(engine_name, "pending"), ids)
            notes, raw_of = [], {}
            for ident, raw in zip(ids, raws, strict=True):
                if raw is None:
                    self.redis.zrem(self.key(engine_name, "order"), ident)
                    continue
                note = Notification.from_json(raw)
                notes.append(note)
                raw_of[note.job_id] = raw
            if not notes:
                return {"ran": False, "reason": "idle"}
            if remaining is not None:
                # Counted before sending: a request Google received counts even if its answer
                # is lost, and the quota must never be overrun.
                pipe = self.redis.pipeline(transaction=False)
                for key, ttl in (
                    (self.quota_key(engine_name), 2 * 86400),
                    (self.minute_key(engine_name), 120),
                ):
                    pipe.incrby(key, len(notes))
                    pipe.expire(key, ttl)
                pipe.execute()
            try:
                results = engine.send(notes)
            except RetryLater as exc:
                delay = self._failed(engine_name, exc.retry_after)
                self._count(engine_name, "request", "failed")
                log.warning(
                    "%s: %d notifications not sent (%s); retry in %.0f s",
                    engine_name,
                    len(notes),
                    exc.reason,
                    delay,
                )
                return {"ran": True, "sent": 0, "retry_in": delay, "reason": exc.reason}
            self._count(engine_name, "request", "ok")
            counts = {"sent": 0, "rejected": 0, "retry": 0}
            for note, result in zip(notes, results, strict=True):
                counts[result.outcome] += 1
                self._count(engine_name, note.type, result.outcome)
                if result.outcome == RETRY:
                    continue
                marker = note.marker if result.outcome == SENT else ""
                self._settle(
                    keys=self._keys(engine_name),
                    args=[note.job_id[:15], raw_of[note.job_id], marker],
                )
            if counts["retry"]:
                counts["retry_in"] = self._failed(engine_name, None)
            else:
                self.redis.delete(self.key(engine_name, "backoff"))
            return {"ran": True, **counts}
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    def _failed(self, engine: str, retry_after: float | None) -> float:
        key = self.key(engine, "backoff")
        attempts = int(self.redis.hincrby(key, "attempts", 1))
        delay = min(self.retry_max, self.retry_base * 2 ** (attempts - 1))
        delay *= random.uniform(0.8, 1.2)  # jitter, not security
        if retry_after is not None:
            delay = min(self.retry_max, max(delay, retry_after))
        self.redis.hset(key, "next_at", repr(self.clock() + delay))
        self.redis.expire(key, int(self.retry_max) + 3600)
        return delay

    def _count(self, engine: str, kind: str, outcome: str) -> None:
        self.redis.hincrby(STATS_KEY, f"{engine}|{kind}|{outcome}", 1)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, dict[str, Any]]:
        found = {}
        for name in self.engines:
            quota = self.daily_quota.get(name)
            found[name] = {
                "pending": int(self.redis.zcard(self.key(name, "order"))),
                "retry_in": round(self.backoff_left(name), 1),
            }
            if quota:
                found[name]["quota_used_today"] = int(self.redis.get(self.quota_key(name)) or 0)
                found[name]["daily_quota"] = quota
        return found


class SearchMetrics:
    """``/metrics``: what every process reads from Redis at scrape time."""

    def __init__(self, notifier: SearchNotifier) -> None:
        self.notifier = notifier

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            stats = self.notifier.redis.hgetall(STATS_KEY)
            status = self.notifier.status()
        except redis.RedisError:  # Redis down: /readyz says so; a scrape must not fail
            return
        notes = CounterMetricFamily(
            "ats_gateway_search_notifications",
            "Job page notifications to search engines, by engine, type and outcome.",
            labels=["engine", "type", "outcome"],
        )
        requests_ = CounterMetricFamily(
            "ats_gateway_search_requests",
            "Requests to search engines' APIs, by engine and outcome (ok, failed: retried).",
            labels=["engine", "outcome"],
        )
        for field, value in stats.items():
            engine, kind, outcome = field.decode().split("|", 2)
            if kind == "request":
                requests_.add_metric([engine, outcome], int(value))
            else:
                notes.add_metric([engine, kind, outcome], int(value))
        yield notes
        yield requests_
        pending = GaugeMetricFamily(
            "ats_gateway_search_pending",
            "Jobs whose newest change a search engine has not been told yet.",
            labels=["engine"],
        )
        used = GaugeMetricFamily(
            "ats_gateway_search_quota_used_today",
            "Publish requests counted against the engine's daily quota today.",
            labels=["engine"],
        )
        for name, values in status.items():
            pending.add_metric([name], values["pending"])
            if "quota_used_today" in values:
                used.add_metric([name], values["quota_used_today"])
        yield pending
        yield used
