"""The org's daily API budget, as Salesforce reports it on every response.

Every REST response but the versions list carries ``Sforce-Limit-Info: api-usage=N/M``
(optionally followed by ``; per-app-api-usage=n/m(appName=...)``; wire shapes section 7). The
client records the latest value per org in Redis, so every process sees the same numbers, and
background delivery asks :meth:`ApiBudget.may_spend` before it spends calls: it answers no once
spending would eat into the reserve kept for the org's own users (default 10% of the daily
limit). The reserve frees itself as the rolling 24 h window moves; nothing here needs resetting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")

# Keep the newest observation: a slow response must not overwrite a fresher one.
_RECORD = """
local updated = tonumber(redis.call('HGET', KEYS[1], 'updated_at') or '0')
if tonumber(ARGV[3]) >= updated then
  redis.call('HSET', KEYS[1], 'used', ARGV[1], 'limit', ARGV[2], 'updated_at', ARGV[3])
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
        self.key = f"{key_prefix}budget:{org}"
        self.clock = clock

    def __repr__(self) -> str:
        return f"ApiBudget(org={self.org!r}, reserve_fraction={self.reserve_fraction})"

    def record(self, header: str | None) -> tuple[int, int] | None:
        """Record a ``Sforce-Limit-Info`` header value; returns what it said."""
        parsed = parse_limit_info(header)
        if parsed is not None:
            used, limit = parsed
            self.redis.eval(_RECORD, 1, self.key, used, limit, repr(self.clock()))
        return parsed

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
