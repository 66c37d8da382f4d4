"""Rate limits: fixed windows counted in the gateway's Redis, per key and per client IP.

Each declared view (`require_scope` / `public`) spends from one of two budgets, "read" or
"submit" (application submits), and each budget is counted twice:

* per key: `rate_limit_key_read` / `rate_limit_key_submit`, or the key's own `rate_limit`;
* per client IP: `rate_limit_ip_read` / `rate_limit_ip_submit`, for publishable-key and
  keyless requests (browsers). Secret keys (job boards posting from a few servers) are
  limited per key only. Failed authentications count against the IP.

A publishable key is on every career page, so its budget is never one pool that any visitor
could drain for the whole site: it is counted per key *and client IP* (each visitor of the
site has the key's budget to themselves), besides the per-IP budget. Submit budgets are spent
only by submissions that reached validation (2xx, 409, 422): a request refused earlier (no
form token, honeypot, bad key, malformed body) spends nothing, so junk cannot lock a real
candidate out. Budgets are kept apart per scope (applications and interviewer feedback do
not share one submit budget).

A view may count for more than one request (`require_scope(..., cost=callable)`, e.g. the
number of applications in a batch); a request costing more than what is left is refused
whole, and a refused request still spends (fixed windows count every attempt).

Counters are shared by every gateway process through Redis (fixed windows, the `limits`
library's rate-limit items, key names and window semantics). The counter script increments
each window (as limits' own `incr_expire.lua` does: INCRBY, EXPIRE when the window starts) and
in the same call reads each window's TTL (for the headers) and the API-key generation (which
confirms a key served from the process's key cache, see `keys.py`). A submission tests its
windows before the view (one pipelined read) and spends after a validated response (one script
call).

Reads reserve ahead ([18]): a process that sees plenty left in a window (at least
`LEASE_DIVISOR` per count) increments it by up to `LEASE_MAX` at once and hands those counts
to its next requests in that window, one each, without a round trip. Counting stays
conservative: Redis holds every count handed out or still held, so no window ever admits more
than its limit; what a process holds is used by its own next requests until the window ends,
and near the limit (under `LEASE_DIVISOR` per count left) every request counts in Redis
itself. The cost is that a client spread over several processes can be refused a few
requests early (at most what the other processes hold, a handful when the limit is near).
The key generation is then confirmed from the process's tracked copy (`redis_tracking`), so a
revoked key is still refused at its next request.

Why not flask-limiter's request hooks (used here before [18]): per request they resolve and
filter every declared limit through several layers of callables and context proxies, and read
each window back with two more Redis calls for the headers; on `GET /v1/jobs` that was most of
the gap to `/healthz`. The budgets, identities, scopes, costs and headers are the same.

Responses carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds, IETF draft),
`RateLimit-Policy`, the `X-RateLimit-*` equivalents (reset as an epoch), and on 429 a
`Retry-After`; the numbers are those of the most constrained limit.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many

from ats_gateway.errors import (
    ServiceUnavailable,
    TooManyRequests,
    redis_failure,
)
from ats_gateway.extensions import services
from ats_gateway.security.access import OBSERVED_GENERATION, SUBMIT, current_spec
from ats_gateway.security.keys import GENERATION

EXTENSION = "ats_limiter"
KEY_PREFIX = "LIMITS:"  # limits' own Redis prefix, so counters read as they always did
NAMESPACE = "ats"

# limits' `incr_expire.lua` for each counter (KEYS[2..]; ARGV: expiry and cost per counter),
# then each window's PTTL and the key generation (KEYS[1]), in one round trip.
_HIT = """
local out = {}
for i = 2, #KEYS do
    local amount = tonumber(ARGV[2 * i - 2])
    local current = redis.call("incrby", KEYS[i], amount)
    if tonumber(current) == amount then
        redis.call("expire", KEYS[i], ARGV[2 * i - 3])
    end
    out[#out + 1] = current
    out[#out + 1] = redis.call("pttl", KEYS[i])
end
out[#out + 1] = redis.call("get", KEYS[1])
return out
"""


@dataclass
class Window:
    """One limit applied to this request: its item, its counter key, and what Redis said."""

    item: RateLimitItem
    key: str
    count: int = 0
    ttl_ms: int = -1

    @property
    def remaining(self) -> int:
        return max(0, self.item.amount - self.count)

    @property
    def breached(self) -> bool:
        return self.count > self.item.amount

    def reset_at(self, now: float) -> float:
        return now + (self.ttl_ms / 1000 if self.ttl_ms > 0 else self.item.get_expiry())


@dataclass
class Lease:
    """Counts of one window this process reserved in Redis and has not handed out yet."""

    next: int  # the count the next request takes
    last: int  # the last count reserved
    ends: float  # time.monotonic() when the window ends (its counter expires in Redis)


class RedisCounters:
    """The fixed-window counters in Redis (one script call per request that spends, except
    reads served from counts reserved ahead: see the module's docstring)."""

    #: at most this many counts reserved at once per window and process
    LEASE_MAX = 64
    #: reserve n counts only while at least n * LEASE_DIVISOR are left in the window
    LEASE_DIVISOR = 256
    #: windows remembered per process (publishable keys count per visitor IP)
    MAX_LEASES = 10_000

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._hit = client.register_script(_HIT)
        self._leases: dict[str, Lease] = {}
        self._leases_lock = threading.Lock()

    def hit(self, windows: list[Window], cost: int, *, ahead: bool = False) -> int | None:
        """Spend `cost` on every window; fills in counts and TTLs; returns the key generation
        read with the counters, or None when every count came from what this process holds.
        `ahead` (reads of cost 1): counts are taken from what this process reserved, and the
        windows it holds none of reserve more (each window on its own: a request under two
        limits never throws away what it holds of one because the other ran out)."""
        now = time.monotonic()
        reserving = ahead and cost == 1
        need = windows
        if reserving:
            with self._leases_lock:
                need = [w for w in windows if not self._take_reserved(w, now)]
                amounts = [self._reserve_size(w, now) for w in need]
            if not need:
                return None
        else:
            amounts = [cost] * len(need)
        args: list[int] = []
        for w, amount in zip(need, amounts, strict=True):
            args += [w.item.get_expiry(), amount]
        reply = self._hit(keys=[GENERATION, *(w.key for w in need)], args=args)
        with self._leases_lock:
            for index, (w, amount) in enumerate(zip(need, amounts, strict=True)):
                last, ttl_ms = int(reply[2 * index]), int(reply[2 * index + 1])
                # this request takes the first `cost` of the counts just reserved
                w.count, w.ttl_ms = last - amount + cost, ttl_ms
                if reserving:
                    # what is left over (maybe nothing: then the lease only says how much
                    # the window had left, for the size of the next reservation)
                    self._leases[w.key] = Lease(w.count + 1, last, now + max(ttl_ms, 0) / 1000)
            self._bound(now)
        return int(reply[-1] or 0) if len(reply) > 2 * len(need) else 0

    def _take_reserved(self, w: Window, now: float) -> bool:
        """One count of `w` from what this process holds (caller holds the lock), if any."""
        lease = self._leases.get(w.key)
        if lease is None or lease.next > lease.last or now >= lease.ends:
            return False
        w.count, w.ttl_ms = lease.next, int((lease.ends - now) * 1000)
        lease.next += 1
        return True

    def _reserve_size(self, w: Window, now: float) -> int:
        """How many counts to reserve: 1, or more when the window has plenty left (known from
        this process's last reservation in the same window)."""
        lease = self._leases.get(w.key)
        if lease is None or now >= lease.ends:
            return 1  # the first count of a window here: nothing known of what is left
        left = w.item.amount - lease.last
        return max(1, min(self.LEASE_MAX, left // self.LEASE_DIVISOR))

    def _bound(self, now: float) -> None:
        if len(self._leases) > self.MAX_LEASES:
            self._leases = {k: v for k, v in self._leases.items() if v.ends > now}
            if len(self._leases) > self.MAX_LEASES:
                self._leases.clear()

    def read(self, windows: list[Window]) -> int:
        """Fill in counts and TTLs without spending (one pipelined round trip); returns the
        key generation."""
        pipe = self.redis.pipeline(transaction=False)
        for w in windows:
            pipe.get(w.key)
            pipe.pttl(w.key)
        pipe.get(GENERATION)
        replies = pipe.execute()
        for index, w in enumerate(windows):
            w.count, w.ttl_ms = int(replies[2 * index] or 0), int(replies[2 * index + 1] or -1)
        return int(replies[-1] or 0)


@functools.lru_cache(maxsize=1024)
def _items(text: str) -> tuple[RateLimitItem, ...]:
    """Parsed once per distinct limit string (`100/minute;1000/hour`)."""
    return tuple(parse_many(text)) if text else ()


def client_ip() -> str:
    """The client address, trusting `trusted_proxy_hops` entries of X-Forwarded-For."""
    hops = current_app.config["SETTINGS"].trusted_proxy_hops
    if hops > 0:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"


def _windows(spec) -> list[Window]:
    """The limits this request spends from: per key (its own `rate_limit` or the budget's),
    and per client IP for publishable keys and keyless requests."""
    settings = current_app.config["SETTINGS"]
    submit = spec.budget == SUBMIT
    scope = f"{spec.budget}:{spec.scope or request.blueprint or 'public'}"
    key = getattr(g, "api_key", None)
    found: list[tuple[RateLimitItem, str]] = []
    if key is not None:
        text = key.rate_limit or (
            settings.rate_limit_key_submit if submit else settings.rate_limit_key_read
        )
        # A publishable key's budget is per visitor (key and IP), never one pool for the site.
        identity = f"key:{key.id}:ip:{client_ip()}" if key.publishable else f"key:{key.id}"
        found += [(item, identity) for item in _items(text)]
    if key is None or key.publishable:
        text = settings.rate_limit_ip_submit if submit else settings.rate_limit_ip_read
        found += [(item, f"ip:{client_ip()}") for item in _items(text)]
    return [
        Window(item, KEY_PREFIX + item.key_for(NAMESPACE, identity, scope))
        for item, identity in found
    ]


def _validated(response: Response) -> bool:
    """Submissions spend their budget once they reached validation, whatever it said."""
    return response.status_code < 400 or response.status_code in (409, 422)


def _cost(spec) -> int:
    if spec.cost is None:
        return 1
    try:
        return max(1, int(spec.cost()))
    except (TypeError, ValueError, KeyError, AttributeError):
        return 1  # a malformed body: the view will say what is wrong with it


def _limit_request() -> None:
    """Before the view: reads spend now (every attempt counts, failed authentications against
    the IP); submissions are refused when their cost does not fit, and spend after the
    response if it reached validation."""
    g._ats_rate_windows = g._ats_rate_refused = g._ats_rate_cost = None
    spec = current_spec()
    if spec is None or not spec.rate_limited or request.method == "OPTIONS":
        return
    windows = _windows(spec)
    if not windows:
        return
    counters: RedisCounters = current_app.extensions[EXTENSION]
    cost = _cost(spec)
    g._ats_rate_windows = windows
    try:
        if spec.budget == SUBMIT:
            setattr(g, OBSERVED_GENERATION, counters.read(windows))
            g._ats_rate_cost = cost
            refused = [w for w in windows if w.count + cost > w.item.amount]
        else:
            setattr(g, OBSERVED_GENERATION, counters.hit(windows, cost, ahead=True))
            refused = [w for w in windows if w.breached]
    except redis.RedisError as exc:
        g._ats_rate_windows = None
        raise ServiceUnavailable(
            f"The rate-limit store (Redis) {redis_failure(exc)}; nothing of this request "
            "was stored. Send it again later."
        ) from exc
    if refused:
        g._ats_rate_refused = refused[0]
        raise TooManyRequests(f"Rate limit exceeded ({refused[0].item}); see Retry-After.")


def init_limiter(app: Flask) -> RedisCounters:
    """Counters in the app's Redis (shared connection pool), and the hooks that spend them."""
    counters = RedisCounters(services(app).redis)
    app.extensions[EXTENSION] = counters
    app.before_request(_limit_request)
    app.after_request(_after_request)
    return counters


def _after_request(response: Response) -> Response:
    windows: list[Window] | None = g.get("_ats_rate_windows")
    if not windows:
        return response
    refused: Window | None = g.get("_ats_rate_refused")
    cost = g.get("_ats_rate_cost")
    if cost is not None and refused is None and _validated(response):
        try:
            current_app.extensions[EXTENSION].hit(windows, cost)
        except redis.RedisError:
            # The submission was accepted and stored; its spend could not be counted.
            current_app.logger.warning("rate limit: could not count a submission's cost")
    # the refused limit, else the one with the least left (then the latest reset)
    now = time.time()
    chosen = refused or min(windows, key=lambda w: (w.remaining, -w.reset_at(now)))
    remaining = 0 if refused is not None else chosen.remaining
    reset_at = chosen.reset_at(now)
    reset_in = max(1, math.ceil(reset_at - now))
    policy = ", ".join(f"{w.item.amount};w={w.item.get_expiry()}" for w in windows)
    values = [
        ("RateLimit-Limit", str(chosen.item.amount)),
        ("RateLimit-Remaining", str(remaining)),
        ("RateLimit-Reset", str(reset_in)),
        ("RateLimit-Policy", policy),
        ("X-RateLimit-Limit", str(chosen.item.amount)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(math.ceil(reset_at))),
    ]
    if response.status_code == 429:
        values.append(("Retry-After", str(reset_in)))
    headers = response.headers
    if response.status_code < 300:  # the usual case: nothing set these; add, don't scan ([18])
        headers.extend(values)
    else:  # an error answer may carry a Retry-After of its own (a 503): this one wins
        for name, value in values:
            headers[name] = value
    return response
