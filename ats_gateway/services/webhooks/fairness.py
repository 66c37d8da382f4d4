"""Fair sharing of the webhook workers among receivers, across every worker process (Redis).

* **One run per endpoint** at a time: the endpoint queue's drain lock (single flight).
* :class:`Slots`: at most ``limit`` runs at a time per API key (the owner), so one key's slow
  or dead endpoints (up to 10 of them) hold at most ``limit`` worker threads; a run that finds
  its key's slots taken is put off for a moment, costing no attempt and no thread.
* :class:`Breaker`: a circuit breaker per endpoint. After ``threshold`` failed runs in a row
  (deadline passed, unreachable, 5xx, and nothing answered 2xx) the endpoint is paused for a
  backoff that doubles with each trip up to ``max_seconds``; then one event is tried (half
  open): a 2xx closes the breaker, a failure pauses it again for longer. A paused endpoint
  costs nothing: its events wait in its queue (their retry schedule goes on when it resumes).

Redis keys::

    ats-gateway:webhooks:slots:<owner>      sorted set: run token -> expiry (epoch s)
    ats-gateway:webhooks:breaker:<id>       hash: failures trips open_until
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

PREFIX = "ats-gateway:webhooks:"

# KEYS: slots; ARGV: token, now, expiry, limit. Expired holders (a killed worker) drop out.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) - tonumber(ARGV[2])) + 60)
return 1
"""

# KEYS: breaker; ARGV: outcome (ok|failing), now, threshold, base, max, ttl
# Returns the pause in ms started by this failure (0: none).
_RECORD = """
if ARGV[1] == 'ok' then redis.call('DEL', KEYS[1]) return 0 end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
if failures < tonumber(ARGV[3]) then return 0 end
local trips = redis.call('HINCRBY', KEYS[1], 'trips', 1)
local pause = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(trips - 1, 30))
-- half open next: one more failure re-opens it
redis.call('HSET', KEYS[1], 'failures', tonumber(ARGV[3]) - 1,
           'open_until', tostring(tonumber(ARGV[2]) + pause))
return math.floor(pause * 1000)
"""


class Slots:
    """A counting semaphore per owner, shared by every worker process."""

    def __init__(self, client: redis.Redis, limit: int, hold_seconds: float) -> None:
        self.redis = client
        self.limit = max(1, int(limit))
        self.hold_seconds = hold_seconds  # a holder that died frees its slot after this
        self._acquire = client.register_script(_ACQUIRE)

    @staticmethod
    def key(owner: str) -> str:
        return f"{PREFIX}slots:{owner}"

    def acquire(self, owner: str) -> str | None:
        """A token for one slot of ``owner``, or None when all are taken."""
        token = uuid.uuid4().hex
        now = time.time()
        ok = self._acquire(
            keys=[self.key(owner)], args=[token, now, now + self.hold_seconds, self.limit]
        )
        return token if ok else None

    def release(self, owner: str, token: str) -> None:
        self.redis.zrem(self.key(owner), token)

    def held(self, owner: str) -> int:
        self.redis.zremrangebyscore(self.key(owner), "-inf", time.time())
        return int(self.redis.zcard(self.key(owner)))


@dataclass(frozen=True)
class BreakerState:
    wait: float  # seconds until the endpoint may be tried (0: now)
    half_open: bool  # it tripped before: try one event only


class Breaker:
    """Consecutive failed runs per endpoint; see the module docstring."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        threshold: int,
        base_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.threshold = max(1, int(threshold))
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._record = client.register_script(_RECORD)

    @staticmethod
    def key(endpoint_id: str) -> str:
        return f"{PREFIX}breaker:{endpoint_id}"

    def state(self, endpoint_id: str) -> BreakerState:
        trips, open_until = self.redis.hmget(self.key(endpoint_id), "trips", "open_until")
        wait = max(0.0, float(open_until or 0) - self.clock())
        return BreakerState(wait=wait, half_open=bool(trips) and wait == 0)

    def record(self, endpoint_id: str, health: str | None) -> float:
        """Note a run's result (``ok``/``failing``; None: nothing tried); returns the pause it
        started, in seconds (0 when the breaker stays closed)."""
        if health is None:
            return 0.0
        paused_ms = self._record(
            keys=[self.key(endpoint_id)],
            args=[
                health,
                self.clock(),
                self.threshold,
                self.base_seconds,
                self.max_seconds,
                int(self.max_seconds * 4 + 86400),
            ],
        )
        return int(paused_ms) / 1000
