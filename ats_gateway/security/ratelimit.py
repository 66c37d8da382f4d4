"""Rate limits: flask-limiter on the gateway's Redis, per key and per client IP.

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

Counters are shared by every gateway process through Redis (fixed windows). Responses carry
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds, IETF draft),
`RateLimit-Policy`, the `X-RateLimit-*` equivalents (reset as an epoch), and on 429 a
`Retry-After`; the numbers are those of the most constrained limit.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limit, Limiter, RateLimitExceeded, RequestLimit
from limits.storage import RedisStorage

from ats_gateway.errors import (
    PROBLEM_BASE,
    ServiceUnavailable,
    TooManyRequests,
    problem,
    redis_failure,
)
from ats_gateway.extensions import services
from ats_gateway.security.access import current_spec

EXTENSION = "ats_limiter"

log = logging.getLogger(__name__)


def client_ip() -> str:
    """The client address, trusting `trusted_proxy_hops` entries of X-Forwarded-For."""
    hops = current_app.config["SETTINGS"].trusted_proxy_hops
    if hops > 0:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"


def _budget() -> str:
    spec = current_spec()
    return spec.budget if spec is not None else ""


def _applies() -> bool:
    spec = current_spec()
    return spec is not None and spec.rate_limited and request.method != "OPTIONS"


def _key_limit(budget: str):
    def provider() -> str:
        key = getattr(g, "api_key", None)
        if not _applies() or key is None or _budget() != budget:
            return ""
        if key.rate_limit:
            return key.rate_limit
        settings = current_app.config["SETTINGS"]
        return (
            settings.rate_limit_key_submit if budget == "submit" else settings.rate_limit_key_read
        )

    return provider


def _ip_limit(budget: str):
    def provider() -> str:
        key = getattr(g, "api_key", None)
        if not _applies() or (key is not None and not key.publishable) or _budget() != budget:
            return ""
        settings = current_app.config["SETTINGS"]
        return settings.rate_limit_ip_submit if budget == "submit" else settings.rate_limit_ip_read

    return provider


def _key_identity() -> str:
    key = getattr(g, "api_key", None)
    if key is None:
        return ""
    # A publishable key's budget is per visitor (key and IP), never one pool for the site.
    return f"key:{key.id}:ip:{client_ip()}" if key.publishable else f"key:{key.id}"


def _ip_identity() -> str:
    return f"ip:{client_ip()}"


def _scope(_endpoint: str) -> str:
    spec = current_spec()
    if spec is None:
        return "none"
    return f"{spec.budget}:{spec.scope or request.blueprint or 'public'}"


def _validated(response: Response) -> bool:
    """Submissions spend their budget once they reached validation, whatever it said."""
    return response.status_code < 400 or response.status_code in (409, 422)


def _cost() -> int:
    spec = current_spec()
    if spec is None or spec.cost is None:
        return 1
    try:
        return max(1, int(spec.cost()))
    except (TypeError, ValueError, KeyError, AttributeError):
        return 1  # a malformed body: the view will say what is wrong with it


class _Limiter(Limiter):
    """Fails closed, as a 503 problem, when Redis cannot count (flask-limiter would 500)."""

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        try:
            super()._check_request_limit(callable_name, in_middleware)
        except redis.RedisError as exc:
            raise ServiceUnavailable(
                f"The rate-limit store (Redis) {redis_failure(exc)}; nothing of this request "
                "was stored. Send it again later."
            ) from exc

    # flask-limiter calls this (name-mangled) after the view, to spend a submit budget.
    def _Limiter__check_conditional_deductions(self, response: Response) -> None:
        """[20] After the view, the request has happened (an application stored, a 202 on its
        way): a Redis that fails now must not turn that answer into a 500. The budget is not
        spent (logged), the answer stands."""
        try:
            Limiter._Limiter__check_conditional_deductions(self, response)  # type: ignore[attr-defined]
        except redis.RedisError as exc:
            log.warning("rate limit not spent after the request: Redis %s", redis_failure(exc))


def init_limiter(app: Flask) -> Limiter:
    """A limiter bound to this app, counting in the app's Redis (shared connection pool)."""
    settings = app.config["SETTINGS"]
    limiter = _Limiter(
        key_func=_ip_identity,
        default_limits=[
            Limit(
                _key_limit("read"),
                key_function=_key_identity,
                scope=_scope,
                cost=_cost,
                shared=True,
            ),
            Limit(
                _ip_limit("read"), key_function=_ip_identity, scope=_scope, cost=_cost, shared=True
            ),
            Limit(
                _key_limit("submit"),
                key_function=_key_identity,
                scope=_scope,
                cost=_cost,
                shared=True,
                deduct_when=_validated,
            ),
            Limit(
                _ip_limit("submit"),
                key_function=_ip_identity,
                scope=_scope,
                cost=_cost,
                shared=True,
                deduct_when=_validated,
            ),
        ],
        storage_uri=settings.redis_url,
        storage_options={"connection_pool": services(app).redis.connection_pool},
        strategy="fixed-window",
        key_prefix="ats",
        headers_enabled=False,  # written below, from the most constrained limit
        swallow_errors=False,
    )
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.after_request(_rate_limit_headers)
    return limiter


def _window_stats(limiter: Limiter, limits: list[RequestLimit]) -> list[tuple[float, int]]:
    """(reset time, remaining) of each limit: one pipelined round trip on Redis (fixed
    windows: a counter and its TTL), where flask-limiter would make two per limit."""
    storage = limiter.storage
    if not isinstance(storage, RedisStorage):
        return [(lim.window.reset_time, lim.window.remaining) for lim in limits]
    pipe = storage.get_connection().pipeline(transaction=False)
    for lim in limits:
        name = storage.prefixed_key(lim.key)
        pipe.get(name)
        pipe.pttl(name)
    replies = pipe.execute()
    now = time.time()
    stats = []
    for index, lim in enumerate(limits):
        count, ttl_ms = replies[2 * index], replies[2 * index + 1]
        reset = now + (ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else lim.limit.get_expiry())
        stats.append((reset, max(0, lim.limit.amount - int(count or 0))))
    return stats


def _rate_limit_headers(response: Response) -> Response:
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    if limiter is None or not limiter.current_limits:
        return response
    limits = limiter.current_limits
    try:
        stats = _window_stats(limiter, limits)
    except redis.RedisError:
        return response  # the request already failed or succeeded; headers are a courtesy
    # Submit budgets are deducted after this hook (flask-limiter's own after_request runs
    # later): count the pending deduction in, so the headers say what is really left.
    if _validated(response):
        pending = {
            lim.limit.key_for(*args) for lim, args in limiter.context.conditional_deductions.items()
        }
        cost = _cost()
        stats = [
            (reset, max(0, left - cost) if lim.key in pending else left)
            for (reset, left), lim in zip(stats, limits, strict=True)
        ]
    breached = [i for i, lim in enumerate(limits) if lim.breached]
    # the breached limit, else the one with the least left (then the latest reset)
    index = (
        breached[0]
        if breached
        else min(range(len(limits)), key=lambda i: (stats[i][1], -stats[i][0]))
    )
    chosen = limits[index]
    reset_at, remaining = stats[index]
    if chosen.breached:
        remaining = 0
    reset_in = max(1, math.ceil(reset_at - time.time()))
    policy = ", ".join(f"{lim.limit.amount};w={lim.limit.get_expiry()}" for lim in limits)
    headers = response.headers
    headers["RateLimit-Limit"] = str(chosen.limit.amount)
    headers["RateLimit-Remaining"] = str(remaining)
    headers["RateLimit-Reset"] = str(reset_in)
    headers["RateLimit-Policy"] = policy
    headers["X-RateLimit-Limit"] = str(chosen.limit.amount)
    headers["X-RateLimit-Remaining"] = str(remaining)
    headers["X-RateLimit-Reset"] = str(math.ceil(reset_at))
    if response.status_code == 429:
        headers["Retry-After"] = str(reset_in)
    return response


def _rate_limited(exc: RateLimitExceeded) -> Response:
    error = TooManyRequests(
        f"Rate limit exceeded ({exc.limit.limit}); see Retry-After.",
    )
    # Retry-After itself is set by _rate_limit_headers, which knows the window's reset.
    return problem(error.status, error.title, error.detail, type_=PROBLEM_BASE + error.slug)
