"""Request limits checked before a view runs; every refusal is problem+json.

* header block larger than `max_header_bytes`  -> 431 (a front proxy may refuse earlier)
* body larger than `max_body_bytes`             -> 413, also for chunked bodies (which
  Werkzeug would otherwise silently truncate at the limit)
* POST/PUT/PATCH body of a type the view does not accept -> 415 with an `Accept` header
* JSON nested deeper than `max_json_depth`      -> 400 (checked before parsing, so a hostile
  body cannot exhaust the parser's recursion), and malformed JSON -> 400
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading

from flask import Request
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest
from werkzeug.exceptions import RequestEntityTooLarge

from ats_gateway.errors import (
    PROBLEM_TYPES,
    BadRequest,
    GatewayError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ats_gateway.security.access import BODY_METHODS, AccessSpec


class HeaderFieldsTooLarge(GatewayError):
    status = 431
    slug = "request-header-fields-too-large"


PROBLEM_TYPES.setdefault(
    HeaderFieldsTooLarge.slug,
    ("Request Header Fields Too Large", "The request's headers are too large; send fewer."),
)

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_INNERMOST = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")
_BRACKET = re.compile(rb"[\[\]{}]")


class UnbalancedJson(ValueError):
    """The body's brackets do not pair up: it cannot be JSON."""


def json_too_deep(body: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than `limit` (top level is 1).

    Strings are blanked first (they may contain brackets); then each pass of a C-speed regex
    removes the innermost containers, so the work is bounded by `limit` passes over the body.
    Valid JSON always reduces to no brackets; input whose reduction stalls with brackets left
    is unbalanced, and raises `UnbalancedJson` (the parser would recurse on `[[[[...` until
    Python's recursion limit, a 500, before noticing).
    """
    text = _STRING.sub(b'""', body)
    for _ in range(limit):
        if not _BRACKET.search(text):
            return False
        reduced = _INNERMOST.sub(b"0", text)
        if reduced == text:
            raise UnbalancedJson
        text = reduced
    return bool(_BRACKET.search(text))


def check_headers(request: Request, max_bytes: int) -> None:
    size = sum(len(name) + len(value) + 4 for name, value in request.headers.items())
    if size > max_bytes:
        raise HeaderFieldsTooLarge(
            f"The request headers take {size} bytes; at most {max_bytes} are accepted."
        )


def _has_body(request: Request) -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def check_content_type(request: Request, spec: AccessSpec) -> None:
    if request.method not in BODY_METHODS:
        return
    if not request.mimetype and not _has_body(request):
        return  # an empty body needs no type
    if request.mimetype not in spec.accepts:
        raise UnsupportedMediaType(
            f"Content-Type {request.mimetype or '(none)'!r} is not accepted here; "
            f"send one of: {', '.join(spec.accepts)}.",
            headers={"Accept": ", ".join(spec.accepts)},
            accepted=list(spec.accepts),
        )


class RequestTimeout(GatewayError):
    status = 408
    slug = "request-timeout"


PROBLEM_TYPES.setdefault(
    RequestTimeout.slug,
    ("Request Timeout", "The request body did not arrive in time; send it at once."),
)


def _body_broken(exc: Exception) -> bool:
    """A server-side parse error of the body stream (gunicorn's InvalidChunkSize, a socket
    closed mid-body, ...), as opposed to a bug of ours."""
    module = type(exc).__module__ or ""
    return isinstance(exc, (OSError, ValueError, EOFError)) or module.startswith(
        ("gunicorn.", "werkzeug.")
    )


def buffer_body(request: Request, max_bytes: int | None, timeout: float) -> None:
    """Read the whole body now, under one deadline, and hand the rest of the request a stream
    of exactly what was read.

    * a body still arriving after `timeout` seconds -> 408: the server's socket is shut for
      reading, so a client trickling a declared body a byte at a time cannot hold a worker
      thread (a per-read timeout would not stop it: every byte resets it);
    * a chunked body over the limit -> 413 (Werkzeug would silently truncate it at
      `MAX_CONTENT_LENGTH`), a declared one over the limit -> 413 before reading;
    * a malformed chunked encoding -> 400 (gunicorn raises while the app reads).
    """
    environ = request.environ
    if request.method not in BODY_METHODS or environ.get("ats_gateway.body_buffered"):
        return
    declared = request.content_length
    chunked = bool(environ.get("wsgi.input_terminated"))
    if declared is None and not chunked:
        return
    if max_bytes is not None and (declared or 0) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    limit = (max_bytes + 1) if max_bytes is not None else -1
    want = declared if declared is not None else limit
    sock = environ.get("gunicorn.socket")
    expired = threading.Event()

    def _expire() -> None:
        expired.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)

    timer = threading.Timer(timeout, _expire) if sock is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        data = environ["wsgi.input"].read(want)
    except Exception as exc:
        if expired.is_set():
            raise RequestTimeout(f"The body did not arrive within {timeout:g} s.") from exc
        if _body_broken(exc):
            raise BadRequest("The request body is malformed.", reason="invalid_body") from exc
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if expired.is_set() or (declared is not None and len(data) < declared):
        raise RequestTimeout(f"The body did not arrive within {timeout:g} s.")
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    environ["wsgi.input"] = io.BytesIO(data)
    environ["ats_gateway.body_buffered"] = True


def read_body(request: Request, max_bytes: int | None) -> bytes:
    """The body, with a too-large one (declared or chunked) as the gateway's 413."""
    if max_bytes is not None and (request.content_length or 0) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.") from exc


def check_json(request: Request, max_depth: int, max_bytes: int | None, *, parse: bool) -> None:
    """Depth check for any JSON body; with `parse`, also parse it once (cached for the view)."""
    if request.method not in BODY_METHODS or not request.is_json:
        return
    body = read_body(request, max_bytes)
    if not body.strip():
        return
    try:
        too_deep = json_too_deep(body, max_depth)
    except UnbalancedJson:
        raise BadRequest(
            "The body is not valid JSON: its brackets do not pair up.", reason="invalid_json"
        ) from None
    if too_deep:
        raise BadRequest(
            f"The JSON body nests deeper than {max_depth} levels.", reason="json_too_deep"
        )
    if parse:
        try:
            request.get_json(force=False, silent=False, cache=True)
        except (WerkzeugBadRequest, RecursionError) as exc:
            raise BadRequest("The body is not valid JSON.", reason="invalid_json") from exc
