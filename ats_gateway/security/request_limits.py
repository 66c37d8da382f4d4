"""Request limits checked before a view runs; every refusal is problem+json.

* header block larger than `max_header_bytes`  -> 431 (a front proxy may refuse earlier)
* body larger than `max_body_bytes`             -> 413, also for chunked bodies (which
  Werkzeug would otherwise silently truncate at the limit)
* POST/PUT/PATCH body of a type the view does not accept -> 415 with an `Accept` header
* JSON nested deeper than `max_json_depth`      -> 400 (checked before parsing, so a hostile
  body cannot exhaust the parser's recursion), and malformed JSON -> 400
"""

from __future__ import annotations

import io
import re

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


def json_too_deep(body: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than `limit` (top level is 1).

    Strings are blanked first (they may contain brackets); then each pass of a C-speed regex
    removes the innermost containers, so the work is bounded by `limit` passes over the body.
    Unbalanced input returns False: the JSON parser will report it precisely.
    """
    text = _STRING.sub(b'""', body)
    for _ in range(limit):
        if not _BRACKET.search(text):
            return False
        reduced = _INNERMOST.sub(b"0", text)
        if reduced == text:
            return False
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


def check_streamed_body(request: Request, max_bytes: int | None) -> None:
    """413 for a chunked body over the limit.

    Werkzeug caps such a stream at `MAX_CONTENT_LENGTH` by silently truncating it, so a
    too-large upload would reach the view cut short. Buffer up to the limit (plus one byte)
    from the server's stream instead, refuse if there is more, and hand the rest of the
    request a stream of exactly what was read.
    """
    environ = request.environ
    if (
        max_bytes is None
        or request.method not in BODY_METHODS
        or request.content_length is not None
        or not environ.get("wsgi.input_terminated")
        or environ.get("ats_gateway.body_buffered")
    ):
        return
    data = environ["wsgi.input"].read(max_bytes + 1)
    if len(data) > max_bytes:
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
    if json_too_deep(body, max_depth):
        raise BadRequest(
            f"The JSON body nests deeper than {max_depth} levels.", reason="json_too_deep"
        )
    if parse:
        try:
            request.get_json(force=False, silent=False, cache=True)
        except WerkzeugBadRequest as exc:
            raise BadRequest("The body is not valid JSON.", reason="invalid_json") from exc
