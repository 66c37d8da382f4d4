"""CORS for browser clients (career sites using a publishable key), with flask-cors' core.

Policy (per request, so the allowed origins can follow the keys in Redis):

* **Actual requests** get `Access-Control-Allow-Origin` only when they authenticated with a
  publishable key bound to the request's `Origin`. Secret keys never get CORS headers (they
  must not be in a browser), so neither do requests with a bad or missing key.
* **Preflights** (`OPTIONS` + `Access-Control-Request-Method`) carry no `Authorization`, so
  they are allowed for the union of origins bound to *active publishable keys holding the
  scope the requested method's view needs*. That index is cached per process and rebuilt
  when the key store's generation counter changes (one Redis GET per preflight), so a new
  or revoked key takes effect at once; browsers then cache the answer for
  `Settings.cors_max_age` seconds (`Access-Control-Max-Age`).
* Keyless (`public`) and undeclared endpoints get no CORS headers: they are same-origin.
"""

from __future__ import annotations

import threading

from flask import Flask, Response, current_app, g, request
from flask_cors.core import get_cors_options, set_cors_headers
from werkzeug.exceptions import HTTPException

from ats_gateway.extensions import services
from ats_gateway.security.access import current_spec, spec_of
from ats_gateway.security.keys import KeyStore, normalize_origin

ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
    "X-Request-Id",
    "X-Form-Token",
)
EXPOSE_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-Id",
    "ETag",
    "Location",
)


class OriginIndex:
    """Origins of active publishable keys, by scope; rebuilt when the key generation moves."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._by_scope: dict[str, frozenset[str]] = {}

    def origins_for(self, scope: str) -> frozenset[str]:
        generation = self.store.generation()
        if generation != self._generation:
            with self._lock:
                by_scope: dict[str, set[str]] = {}
                for key in self.store.list(include_revoked=False):
                    if not key.publishable:
                        continue
                    for held in key.scopes:
                        by_scope.setdefault(held, set()).update(key.origins)
                self._by_scope = {s: frozenset(o) for s, o in by_scope.items()}
                self._generation = generation
        return self._by_scope.get(scope, frozenset()) | self._by_scope.get("admin", frozenset())


def _options(origin: str, methods: list[str]):
    settings = current_app.config["SETTINGS"]
    return get_cors_options(
        current_app,
        {
            "origins": [origin],
            "methods": methods,
            "allow_headers": list(ALLOW_HEADERS),
            "expose_headers": list(EXPOSE_HEADERS),
            "max_age": settings.cors_max_age,
            "supports_credentials": False,
            "send_wildcard": False,
            "always_send": False,
            "vary_header": True,
        },
    )


def _preflight_scope(method: str) -> str | None:
    """The scope the view behind (this URL, `method`) needs, or None if it needs none."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, _ = adapter.match(method=method)
    except HTTPException:
        return None
    spec = spec_of(current_app.view_functions.get(endpoint))
    return spec.scope if spec is not None else None


def _cors_after_request(response: Response) -> Response:
    origin = request.headers.get("Origin")
    requested = request.headers.get("Access-Control-Request-Method", "").upper()
    if request.method == "OPTIONS" and requested:
        scope = _preflight_scope(requested)
        if scope is None:
            return response
        response.vary.add("Origin")
        if origin and normalize_origin(origin, strict=False) in services().origin_index.origins_for(
            scope
        ):
            set_cors_headers(response, _options(origin, [requested]))
        return response
    spec = current_spec()
    if spec is None or spec.scope is None:
        return response
    if "origin" not in response.headers.get("Vary", "").lower():  # (the jobs views set it)
        response.vary.add("Origin")
    key = getattr(g, "api_key", None)
    if origin and key is not None and key.publishable and key.allows_origin(origin):
        set_cors_headers(response, _options(origin, [request.method]))
    return response


def init_cors(app: Flask) -> None:
    app.after_request(_cors_after_request)
