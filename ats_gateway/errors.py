"""The gateway's exception tree and its single RFC 9457 (problem+json) error handler.

    GatewayError                   500 (base; `status`, `slug`, `title`, `detail`, extensions)
    ├── BadRequest                 400 malformed request (bad JSON, too deep, bad header)
    ├── Unauthorized               401 no key, unknown or revoked key, bad signature
    ├── Forbidden                  403 missing scope, origin not allowed for the key
    ├── NotFound                   404
    ├── Conflict                   409 duplicate application, feedback already submitted
    ├── Gone                       410 expired link, cursor from a discarded snapshot
    ├── PayloadTooLarge            413
    ├── UnsupportedMediaType       415
    ├── ValidationFailed           422 with `errors: [{field, code, message}]` (public names)
    ├── TooManyRequests            429 with `Retry-After`
    └── ServiceUnavailable         503 org unreachable, permission missing, budget reserve

Any ``redis.RedisError`` (Redis full, unreachable, timed out) is a 503 too, whose detail says
which and that nothing of the request was stored.

Every other exception becomes a 500 whose body says nothing about the cause; the cause is
logged with the request id, which the response carries in `X-Request-Id` and `instance`.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

#: slug -> (title, what it means), served at /problems/<slug> for humans following `type`.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {}


def _register(slug: str, title: str, meaning: str) -> str:
    PROBLEM_TYPES[slug] = (title, meaning)
    return slug


class GatewayError(Exception):
    status = 500
    slug = _register("internal-error", "Internal Server Error", "Something failed on our side.")

    def __init__(self, detail: str = "", *, headers: dict[str, str] | None = None, **extensions):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def title(self) -> str:
        return PROBLEM_TYPES[self.slug][0]


class BadRequest(GatewayError):
    status = 400
    slug = _register("bad-request", "Bad Request", "The request could not be read.")


class Unauthorized(GatewayError):
    status = 401
    slug = _register(
        "unauthorized", "Unauthorized", "Send a valid API key as `Authorization: Bearer <key>`."
    )


class Forbidden(GatewayError):
    status = 403
    slug = _register("forbidden", "Forbidden", "The credentials do not allow this request.")


class NotFound(GatewayError):
    status = 404
    slug = _register("not-found", "Not Found", "No such resource.")


class Conflict(GatewayError):
    status = 409
    slug = _register("conflict", "Conflict", "The request duplicates an existing resource.")


class Gone(GatewayError):
    status = 410
    slug = _register("gone", "Gone", "The resource existed but no longer does.")


class PayloadTooLarge(GatewayError):
    status = 413
    slug = _register("payload-too-large", "Payload Too Large", "The request body is too large.")


class UnsupportedMediaType(GatewayError):
    status = 415
    slug = _register(
        "unsupported-media-type", "Unsupported Media Type", "Send a supported Content-Type."
    )


class ValidationFailed(GatewayError):
    status = 422
    slug = _register(
        "validation-error",
        "Validation Failed",
        "Some fields are missing or invalid; `errors` names each public field and what is allowed.",
    )

    def __init__(self, errors: list[dict[str, str]], detail: str = "", **extensions):
        detail = detail or f"{len(errors)} field(s) failed validation."
        super().__init__(detail, errors=errors, **extensions)
        self.errors = errors


class TooManyRequests(GatewayError):
    status = 429
    slug = _register(
        "rate-limited", "Too Many Requests", "Slow down; `Retry-After` says when to try again."
    )


class ServiceUnavailable(GatewayError):
    status = 503
    slug = _register(
        "service-unavailable",
        "Service Unavailable",
        "The gateway cannot serve this now (org unreachable, permission missing, or budget).",
    )


def problem(
    status: int,
    title: str,
    detail: str = "",
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """Render an RFC 9457 problem document; `instance` identifies this occurrence."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    request_id = getattr(g, "request_id", None)
    body["instance"] = f"{request.path}#request-{request_id}" if request_id else request.path
    body.update(extensions)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _handle_gateway_error(exc: GatewayError) -> Response:
    if exc.status >= 500:
        log.warning("request failed: %s %s", exc.status, exc.slug)
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        type_=PROBLEM_BASE + exc.slug,
        headers=exc.headers,
        **exc.extensions,
    )


def _handle_http_exception(exc: HTTPException) -> Response:
    headers = {}
    if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    detail = {
        404: "No such resource.",
        405: f"{request.method} is not allowed here.",
        413: "The request body is too large.",
        415: "Unsupported Content-Type.",
    }.get(exc.code or 500, "")
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return problem(exc.code or 500, exc.name, detail, headers=headers)


def redis_failure(exc: redis.RedisError) -> str:
    """What happened to Redis, in words an API client can act on."""
    text = str(exc)
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or "OOM command not allowed" in text:
        return "is full (it reached its memory limit)"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "did not answer in time"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return "is unreachable"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "is read-only (a replica, or failing over)"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "is starting (loading its data)"
    return f"failed ({type(exc).__name__})"


def _handle_redis(exc: redis.RedisError) -> Response:
    """A dependency failure, never a 500: the request did nothing durable (every write of a
    request is one Lua script, so it either happened before the answer or not at all)."""
    what = redis_failure(exc)
    log.warning("request failed: Redis %s (%s)", what, type(exc).__name__)
    return problem(
        503,
        PROBLEM_TYPES[ServiceUnavailable.slug][0],
        f"The gateway's store (Redis) {what}; nothing of this request was stored. "
        "Send it again later.",
        type_=PROBLEM_BASE + ServiceUnavailable.slug,
        headers={"Retry-After": "5"},
        reason="store_unavailable",
    )


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error in %s %s", request.method, request.path)
    return problem(
        500,
        "Internal Server Error",
        "The gateway failed to handle this request; quote the request id to the operator.",
        type_=PROBLEM_BASE + GatewayError.slug,
        request_id=getattr(g, "request_id", None),
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(GatewayError, _handle_gateway_error)
    app.register_error_handler(redis.RedisError, _handle_redis)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)

    @app.get("/problems/<slug>")
    def problem_type(slug: str):
        if slug not in PROBLEM_TYPES:
            raise NotFound(f"No problem type {slug!r}.")
        title, meaning = PROBLEM_TYPES[slug]
        return {"type": PROBLEM_BASE + slug, "title": title, "description": meaning}
