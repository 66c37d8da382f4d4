"""Per-view access declarations and the request hooks that enforce them.

A view declares what it needs with one decorator (`require_scope`, `public`, `accepts`); the
declaration is an `AccessSpec` stored on the view function. The hooks installed by
`ats_gateway.security.init_app` read it:

1. `before_request` (registered before the rate limiter's): request limits (header size, body
   size, content type, JSON depth and syntax), then authentication. An authentication failure
   is *deferred* (kept in `g`), so that the per-IP budget still counts failed attempts.
2. the rate limiter (`ratelimit.py`): per key and per client IP, separate read/submit budgets.
3. `before_request` (registered after the limiter's): raises the deferred 401/403 and checks
   the scope.

The decorator's wrapper re-checks at call time, so a view is never served unauthenticated
even in an app where the hooks were not installed (it then simply has no rate limits).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import current_app, g, request

from ats_gateway.errors import Forbidden, ServiceUnavailable, Unauthorized
from ats_gateway.extensions import services
from ats_gateway.security.keys import SCOPES, ApiKey, KeyStore

READ = "read"
SUBMIT = "submit"
BUDGETS = (READ, SUBMIT)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_ACCEPTS = ("application/json",)
_ATTR = "_ats_access"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ats-gateway"'}
#: set by the rate limiter's counter script: the key generation read in the same round trip
OBSERVED_GENERATION = "_ats_observed_key_generation"


@dataclass
class AccessSpec:
    """What one view requires. `scope=None` means no key is needed (a public endpoint)."""

    scope: str | None = None
    budget: str = READ
    accepts: tuple[str, ...] = DEFAULT_ACCEPTS
    rate_limited: bool = True
    #: requests this one counts as against the budgets (e.g. the items of a batch); it may
    #: read `request.get_json()`, already parsed and checked when it is called
    cost: Callable[[], int] | None = None
    #: only secret keys (servers) may call it: no publishable key, whatever its scopes
    server_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def spec_of(view: Callable | None) -> AccessSpec | None:
    return getattr(view, _ATTR, None) if view is not None else None


_SPEC_KEY = "ats_gateway.access_spec"  # in the WSGI environ: one lookup per request


def current_spec() -> AccessSpec | None:
    """The access declaration of the view this request is routed to (None: undeclared)."""
    environ = request.environ
    try:
        return environ[_SPEC_KEY]
    except KeyError:
        endpoint = request.endpoint
        spec = None if endpoint is None else spec_of(current_app.view_functions.get(endpoint))
        environ[_SPEC_KEY] = spec
        return spec


def _declare(view: Callable, **changes: Any) -> Callable:
    spec = spec_of(view)
    if spec is None:
        spec = AccessSpec()
        setattr(view, _ATTR, spec)
    for name, value in changes.items():
        setattr(spec, name, value)
    return view


def require_scope(
    scope: str,
    *,
    budget: str | None = None,
    accepts: Iterable[str] | None = None,
    cost: Callable[[], int] | None = None,
    server_only: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorator: the request needs an active key holding `scope` (or `admin`).

    `server_only`: a publishable key is refused (403) even with the scope; for endpoints
    whose browser protections (form token, honeypot, per-visitor budgets) cannot apply,
    such as a batch of a thousand applications.

    `budget` picks the rate-limit budget (default: "submit" for `applications:write`, else
    "read"); `accepts` the request Content-Types for POST/PUT/PATCH (default JSON only);
    `cost` how many requests this one counts as (default 1; e.g. the size of a batch).
    The key is then `g.api_key` (an `ApiKey`).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    budget = budget or (SUBMIT if scope == "applications:write" else READ)
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}")

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not getattr(g, "_ats_access_enforced", False):
                authenticate()
                enforce()
            return view(*args, **kwargs)

        # A spec of the wrapper's own (keeping what decorators below declared), so one function
        # wrapped twice for two routes keeps two declarations.
        inner = spec_of(view)
        spec = dataclasses.replace(inner) if inner is not None else AccessSpec()
        spec.scope, spec.budget = scope, budget
        spec.server_only = server_only
        if cost is not None:
            spec.cost = cost
        if accepts is not None:
            spec.accepts = tuple(accepts)
        setattr(wrapper, _ATTR, spec)
        return wrapper

    return decorator


def public(*, budget: str = READ, accepts: Iterable[str] | None = None):
    """Decorator for views that need no key but should get the per-IP budget and body checks
    (e.g. the interviewer feedback pages, which authenticate with a signed link instead)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}")

    def decorator(view: Callable) -> Callable:
        changes: dict[str, Any] = {"scope": None, "budget": budget}
        if accepts is not None:
            changes["accepts"] = tuple(accepts)
        return _declare(view, **changes)

    return decorator


def accepts(*content_types: str):
    """Decorator: the Content-Types this view accepts for POST/PUT/PATCH bodies (else 415)."""

    def decorator(view: Callable) -> Callable:
        return _declare(view, accepts=tuple(content_types))

    return decorator


def current_key() -> ApiKey | None:
    """The authenticated key of this request (also `g.api_key`), or None."""
    return getattr(g, "api_key", None)


def key_store(app=None) -> KeyStore:
    return services(app).key_store


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(*, fresh: bool = False) -> None:
    """Resolve the request's key into `g.api_key`; a failure is stored in `g.auth_error`.

    The key may come from this process's cache (`KeyStore.lookup`); `enforce()` then confirms
    the key generation it was read at before the view runs (`fresh`: skip the cache)."""
    g.api_key = None
    g.auth_error = None
    g._ats_key_generation = None
    setattr(g, OBSERVED_GENERATION, None)
    token = bearer_token()
    if token is None:
        g.auth_error = Unauthorized(
            "Send an API key as `Authorization: Bearer <key>`.", headers=dict(_CHALLENGE)
        )
        return
    store = key_store()
    try:
        if fresh:
            store.forget_cached()
        found = store.lookup(token)
    except redis.RedisError as exc:
        raise ServiceUnavailable("The key store is unreachable; try again shortly.") from exc
    if found is None:
        g.auth_error = Unauthorized(
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="ats-gateway", error="invalid_token"'},
        )
        return
    key = found.key
    if found.cached:
        g._ats_key_generation = found.generation
    origin = request.headers.get("Origin")
    if key.publishable and origin is not None and not key.allows_origin(origin):
        # Not counted against the key's budget: a foreign site cannot drain it.
        g.auth_error = Forbidden(f"This publishable key is not bound to the origin {origin!r}.")
        return
    g.api_key = key


def _confirm_cached_key() -> None:
    """A key served from the cache is confirmed against the current key generation: the one
    the rate limiter read with its counter (no extra round trip), else one GET. When it moved
    (a key was created or revoked anywhere), the key is looked up afresh, so a revoked key is
    refused at its first request after the revocation."""
    cached = getattr(g, "_ats_key_generation", None)
    if cached is None:
        return
    g._ats_key_generation = None
    observed = getattr(g, OBSERVED_GENERATION, None)
    try:
        current = observed if observed is not None else key_store().generation()
    except redis.RedisError as exc:
        raise ServiceUnavailable("The key store is unreachable; try again shortly.") from exc
    if current != cached:
        authenticate(fresh=True)


def enforce() -> None:
    """Raise the deferred authentication failure, or 403 when the key lacks the scope."""
    g._ats_access_enforced = True
    spec = current_spec()
    if spec is None or spec.scope is None:
        return
    _confirm_cached_key()
    error = getattr(g, "auth_error", None)
    if error is not None:
        raise error
    key: ApiKey | None = getattr(g, "api_key", None)
    if key is None:  # pragma: no cover - authenticate() always sets one of the two
        raise Unauthorized("Send an API key.", headers=dict(_CHALLENGE))
    if not key.allows(spec.scope):
        raise Forbidden(
            f"This key lacks the scope {spec.scope!r}.",
            required_scope=spec.scope,
        )
    if spec.server_only and key.publishable:
        raise Forbidden(
            "This endpoint is for servers: call it with a secret key (sk_), never from a "
            "browser with the publishable key.",
            required_key="secret",
        )
