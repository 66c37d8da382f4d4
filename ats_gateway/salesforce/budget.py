"""The org's daily API budget, as Salesforce reports it on every response.

Every REST response but the versions list carries ``Sforce-Limit-Info: api-usage=N/M``
(optionally followed by ``; per-app-api-usage=n/m(appName=...)``; wire shapes section 7). The
client records the latest value per org in Redis, so every process sees the same numbers, and
background delivery asks :meth:`ApiBudget.may_spend` before it spends calls: it answers no once
spending would eat into the reserve kept for the org's own users (default 10% of the daily
limit). The reserve frees itself as the rolling 24 h window moves; nothing here needs resetting.

It also counts the gateway's *own* calls, by purpose, in a rolling 24 h window (5-minute
buckets in one Redis hash per org): every response the client records is one call, labelled
with the :func:`api_purpose` in force (delivery, feedback, reconciliation, describe, probe,
interactive). :mod:`ats_gateway.services.pacing` holds the gateway to its share of the org's
daily limit with these counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import redis

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")

#: What the gateway spends org calls on (``api_purpose``); "interactive" is the default: a
#: request someone waits for (issuing a feedback link, a form read, an on-demand load).
PURPOSES = ("delivery", "feedback", "reconciliation", "describe", "probe", "interactive")
INTERACTIVE = "interactive"
WINDOW_SECONDS = 86400
BUCKET_SECONDS = 300  # spend is kept in 5-minute buckets; the rolling window moves by those

_purpose: contextvars.ContextVar[str] = contextvars.ContextVar("api_purpose", default=INTERACTIVE)


def current_purpose() -> str:
    return _purpose.get()


@contextlib.contextmanager
def api_purpose(name: str) -> Iterator[None]:
    """Label the org calls made inside the block (in this thread/task) with ``name``."""
    if name not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    reset = _purpose.set(name)
    try:
        yield
    finally:
        _purpose.reset(reset)


class CallTally:
    """The org calls sent inside one :func:`count_calls` block (this thread/task only)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


_tallies: contextvars.ContextVar[tuple[CallTally, ...]] = contextvars.ContextVar(
    "api_call_tallies", default=()
)


@contextlib.contextmanager
def count_calls() -> Iterator[CallTally]:
    """Count the org calls this context sends inside the block, at the client, one per request.

    The pacer learns a batch's cost from this, not from the difference of a shared counter read
    before and after: that difference also holds other processes' calls, and reads as the org's
    whole lifetime count when the "before" was read while no token (so no org) was known."""
    tally = CallTally()
    reset = _tallies.set((*_tallies.get(), tally))
    try:
        yield tally
    finally:
        _tallies.reset(reset)


def note_call() -> None:
    """One request is being sent to the org: count it in every open :func:`count_calls`."""
    for tally in _tallies.get():
        tally.calls += 1


def set_purpose(name: str | None) -> None:
    """Set the purpose for what follows in this context (Celery's task_prerun); None: default."""
    _purpose.set(name if name in PURPOSES else INTERACTIVE)


# Keep the newest observation: a slow response must not overwrite a fresher one. Count the call
# (KEYS[2] field "<bucket>|<purpose>" and the running "total") whether or not it said the usage.
_RECORD = """
if ARGV[1] ~= '' then
  local updated = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '0')
  if tonumber(ARGV[3]) >= updated then
    redis.call('HSET', KEYS[1], 'used', ARGV[1], 'limit', ARGV[2], 'updated_at', ARGV[3])
    redis.call('HDEL', KEYS[1], 'exhausted_at')
  end
end
if ARGV[4] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
  redis.call('HINCRBY', KEYS[2], 'total', 1)
  redis.call('HINCRBY', KEYS[2], 'all|' .. ARGV[6], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return 1
"""


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """``(used, limit)`` from a ``Sforce-Limit-Info`` header, or None."""
    if not header:
        return None
    m = _API_USAGE.search(header)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class BudgetSnapshot:
    """What /readyz and /metrics show. ``None`` fields: nothing recorded yet."""

    org: str
    used: int | None
    limit: int | None
    remaining: int | None
    reserve: int | None
    updated_at: float | None
    exhausted: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApiBudget:
    """Per-org API usage in Redis and the "may spend" governor."""

    def __init__(
        self,
        redis_client: redis.Redis,
        org: str,
        *,
        reserve_fraction: float = 0.10,
        key_prefix: str = "ats-gateway:sf:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= reserve_fraction < 1:
            raise ValueError("reserve_fraction is a fraction in [0, 1)")
        self.redis = redis_client
        self.org = org
        self.reserve_fraction = reserve_fraction
        self.key_prefix = key_prefix
        self.key = f"{key_prefix}budget:{org}"
        self.spend_key = f"{key_prefix}spend:{org}"
        self.clock = clock

    def __repr__(self) -> str:
        return f"ApiBudget(org={self.org!r}, reserve_fraction={self.reserve_fraction})"

    def record(self, header: str | None, *, count: bool = True) -> tuple[int, int] | None:
        """Record one org call's ``Sforce-Limit-Info`` header value; returns what it said.

        ``count``: the response was a call of ours (labelled with :func:`current_purpose`)."""
        parsed = parse_limit_info(header)
        if parsed is None and not count:
            return None
        now = self.clock()
        used, limit = parsed if parsed is not None else ("", "")
        purpose = current_purpose()
        field = f"{int(now // BUCKET_SECONDS)}|{purpose}" if count else ""
        self.redis.eval(
            _RECORD,
            2,
            self.key,
            self.spend_key,
            used,
            limit,
            repr(now),
            field,
            WINDOW_SECONDS * 2,
            purpose,
        )
        return parsed

    def record_limits(self, body: Any) -> tuple[int, int] | None:
        """Record the ``DailyApiRequests`` of a ``/limits`` answer (``Max``, ``Remaining``)."""
        daily = body.get("DailyApiRequests") if isinstance(body, dict) else None
        try:
            limit, remaining = int(daily["Max"]), int(daily["Remaining"])
        except (TypeError, KeyError, ValueError):
            return None
        used = max(limit - remaining, 0)
        self.redis.eval(
            _RECORD, 2, self.key, self.spend_key, used, limit, repr(self.clock()), "", 0, ""
        )
        return used, limit

    # ------------------------------------------------------------------ our own spend

    def spent(self, window: float = WINDOW_SECONDS) -> dict[str, int]:
        """Calls of ours in the last ``window`` seconds by purpose. Buckets older than the 24 h
        window are dropped on the way."""
        now_bucket = int(self.clock() // BUCKET_SECONDS)
        first = now_bucket - int(window // BUCKET_SECONDS) + 1
        raw = self.redis.hgetall(self.spend_key)
        spent: dict[str, int] = {}
        stale = []
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else key
            if name == "total" or name.startswith("all|"):
                continue
            bucket, _, purpose = name.partition("|")
            if int(bucket) < now_bucket - WINDOW_SECONDS // BUCKET_SECONDS:
                stale.append(name)
            elif int(bucket) >= first:
                spent[purpose] = spent.get(purpose, 0) + int(value)
        if stale:
            self.redis.hdel(self.spend_key, *stale)
        return spent

    def calls_ever(self, purpose: str | None = None) -> int:
        """Calls of ours (with ``purpose``, or all) since the counter began (for deltas)."""
        field = "total" if purpose is None else f"all|{purpose}"
        return int(self.redis.hget(self.spend_key, field) or 0)

    def spend_buckets(self) -> list[tuple[float, int]]:
        """``(bucket start, calls)`` of the last 24 h, oldest first (when the window frees)."""
        now_bucket = int(self.clock() // BUCKET_SECONDS)
        first = now_bucket - WINDOW_SECONDS // BUCKET_SECONDS + 1
        buckets: dict[int, int] = {}
        for key, value in self.redis.hgetall(self.spend_key).items():
            name = key.decode() if isinstance(key, bytes) else key
            if name == "total" or name.startswith("all|"):
                continue
            bucket = int(name.partition("|")[0])
            if bucket >= first:
                buckets[bucket] = buckets.get(bucket, 0) + int(value)
        return [(b * BUCKET_SECONDS, n) for b, n in sorted(buckets.items())]

    def record_exhausted(self) -> None:
        """The org answered REQUEST_LIMIT_EXCEEDED: nothing is left, whatever we last saw."""
        now = repr(self.clock())
        limit = self.redis.hget(self.key, "limit")
        pipe = self.redis.pipeline()
        pipe.hset(self.key, mapping={"exhausted_at": now, "updated_at": now})
        if limit is not None:
            pipe.hset(self.key, "used", limit)
        pipe.execute()

    def reserve(self, limit: int) -> int:
        return int(limit * self.reserve_fraction + 0.999999)

    def snapshot(self) -> BudgetSnapshot:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.key).items()}
        used = int(raw["used"]) if "used" in raw else None
        limit = int(raw["limit"]) if "limit" in raw else None
        remaining = None if used is None or limit is None else max(limit - used, 0)
        reserve = None if limit is None else self.reserve(limit)
        exhausted = bool(remaining is not None and remaining <= 0) or (
            "exhausted_at" in raw and remaining is None
        )
        return BudgetSnapshot(
            org=self.org,
            used=used,
            limit=limit,
            remaining=remaining,
            reserve=reserve,
            updated_at=float(raw["updated_at"]) if "updated_at" in raw else None,
            exhausted=exhausted,
        )

    def may_spend(self, calls: int = 1) -> bool:
        """Whether ``calls`` more API calls leave the reserve untouched.

        Unknown usage (nothing recorded yet) answers yes: the first call will tell.
        """
        snap = self.snapshot()
        if snap.exhausted:
            return False
        if snap.remaining is None or snap.reserve is None:
            return True
        return snap.remaining - calls >= snap.reserve
