"""Jobs: `GET /v1/jobs`, `GET /v1/jobs/facets`, `GET /v1/jobs/{id}`, and the refresh hook
`POST /v1/hooks/jobs-changed` an org Flow or Outbound Message calls when jobs change.

Listings are answered from the in-process snapshot (see :mod:`ats_gateway.services.jobs`) with
`ETag` / `Last-Modified` / `Cache-Control`; `If-None-Match` gets 304 without rendering.

The hook is authenticated with HMAC-SHA256 over `<timestamp>.<raw body>` keyed by
`Settings.jobs_hook_secret`, sent as `X-ATS-Timestamp: <unix seconds>` and
`X-ATS-Signature: sha256=<hex>`; a timestamp more than 5 minutes off is refused (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from email.utils import formatdate
from typing import Any

from flask import Blueprint, Response, current_app, request

from ats_gateway.errors import (
    ServiceUnavailable,
    Unauthorized,
)
from ats_gateway.extensions import services
from ats_gateway.metadata import Operation
from ats_gateway.metadata import Response as Documented
from ats_gateway.security import public, require_scope
from ats_gateway.services.jobs import (
    JobGone,
    JobsService,
    Rendered,
)
from ats_gateway.tasks.jobs import REFRESH_TASK

bp = Blueprint("jobs", __name__)

HOOK_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "X-ATS-Signature"
TIMESTAMP_HEADER = "X-ATS-Timestamp"


def _service() -> JobsService:
    return services().jobs


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): `W/` prefixes ignored, `*` matches anything."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _send(rendered: Rendered) -> Response:
    if _etag_matches(request.headers.get("If-None-Match", ""), rendered.etag):
        response = Response(status=304)
    else:
        data = rendered.encoded.get("json")
        if data is None:
            data = rendered.encoded["json"] = current_app.json.dumps(rendered.body()).encode()
        response = Response(data, mimetype="application/json")
    # the same for every request answered from this rendering: built once ([18])
    headers = rendered.encoded.get("headers")
    if headers is None:
        max_age = current_app.config["SETTINGS"].jobs_cache_max_age
        headers = rendered.encoded["headers"] = [
            ("ETag", rendered.etag),
            ("Last-Modified", formatdate(rendered.snapshot_at, usegmt=True)),
            ("Cache-Control", f"public, max-age={max_age}"),
            ("Vary", "Authorization, Origin"),
        ]
    # a new response holds none of these: add, not set (set scans every header)
    response.headers.extend(headers)
    return response


@bp.get("/v1/jobs")
@require_scope("jobs:read")
def list_jobs():
    """Public jobs: filters, `q`, `sort`, `limit`, `cursor`, `fields` (see job_filters)."""
    return _send(_service().list_jobs(request.args.to_dict(flat=False)))


@bp.get("/v1/jobs/facets")
@require_scope("jobs:read")
def job_facets():
    """Counts per value of each facet field under the filters, for filter menus."""
    return _send(_service().facets(request.args.to_dict(flat=False)))


@bp.get("/v1/jobs/<job_id>")
@require_scope("jobs:read")
def get_job(job_id: str):
    """One public job by its 15- or 18-character id; closed in the last 30 days -> 410 with
    `valid_through` (when it left), unknown -> 404."""
    try:
        return _send(_service().get_job(job_id))
    except JobGone:
        from ats_gateway.api.feeds import raise_if_gone  # (feeds' module builds on this one)

        raise_if_gone(job_id)  # the same 410, with the expired posting's valid_through
        raise


def _verify_hook_signature(secret: str) -> None:
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized(
            f"Send {TIMESTAMP_HEADER} (unix seconds) and {SIGNATURE_HEADER}."
        ) from None
    if abs(time.time() - sent_at) > HOOK_TOLERANCE_SECONDS:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is more than 5 minutes off; resend.")
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.get_data(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(signature.removeprefix("sha256="), expected):
        raise Unauthorized(f"{SIGNATURE_HEADER} does not match the body.")


def sign_hook(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that authenticate ``body`` for the refresh hook (tests, tools, docs)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={digest}"}


@bp.post("/v1/hooks/jobs-changed")
@public(accepts=("application/json", "text/xml", "application/xml", "text/plain"))
def jobs_changed():
    """Refresh the snapshot now (asynchronously, on a worker); 202 with the task id."""
    secret = current_app.config["SETTINGS"].jobs_hook_secret
    if not secret:
        raise ServiceUnavailable("The jobs refresh hook is not configured on this gateway.")
    _verify_hook_signature(secret)
    try:
        # Through this app's own Celery app (not the process-wide default one).
        celery = current_app.extensions["celery"]
        result = celery.send_task(REFRESH_TASK, kwargs={"force": True, "requested_at": time.time()})
    except Exception:  # broker down: say so rather than pretend
        current_app.logger.exception("could not enqueue the jobs refresh")
        raise ServiceUnavailable("The refresh could not be queued; try again.") from None
    return {"status": "accepted", "task_id": result.id}, 202


# --------------------------------------------------------------------------- OpenAPI

_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data", "page", "meta"],
    "properties": {
        "data": {"type": "array", "items": {"$resource": "job"}},
        "page": {
            "type": "object",
            "properties": {
                "next_cursor": {"type": ["string", "null"]},
                "limit": {"type": "integer"},
            },
        },
        "meta": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "snapshot_at": {"type": "string", "format": "date-time"},
            },
        },
    },
}
_FACETS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"value": {}, "count": {"type": "integer"}},
                },
            },
        },
        "meta": _PAGE_SCHEMA["properties"]["meta"],
    },
}
_CACHE_HEADERS = {
    "ETag": "Validator of this answer; send it back in If-None-Match for a 304.",
    "Last-Modified": "When the snapshot this answer comes from was taken.",
    "Cache-Control": "How long the answer may be reused.",
}

OPERATIONS = [
    Operation(
        "GET",
        "/v1/jobs",
        "List and search open jobs",
        tag="jobs",
        description="Filters (equality/IN and ranges), full-text `q` (title and description, "
        "words ANDed, case- and accent-insensitive), `sort`, keyset `cursor` paging. Answered "
        "from a snapshot refreshed within the staleness bound; `If-None-Match` -> 304.",
        query="job_filters",
        responses={200: Documented("A page of jobs", schema=_PAGE_SCHEMA, headers=_CACHE_HEADERS)},
        errors=(401, 403, 410, 422, 429, 503),
        security=True,
    ),
    Operation(
        "GET",
        "/v1/jobs/facets",
        "Counts per filter value",
        tag="jobs",
        description="For each facet field, how many jobs each value would list under the other "
        "filters given (a field's own filter is left out of its counts).",
        query="job_filters",
        responses={200: Documented("Facet counts", schema=_FACETS_SCHEMA)},
        errors=(401, 403, 422, 429, 503),
        security=True,
    ),
    Operation(
        "GET",
        "/v1/jobs/{job_id}",
        "One open job",
        tag="jobs",
        path_params={"job_id": "The job's 15- or 18-character Salesforce id."},
        responses={
            200: Documented(
                "The job",
                schema={"type": "object", "properties": {"data": {"$resource": "job"}}},
            )
        },
        errors=(401, 403, 404, 429, 503),
        security=True,
    ),
    Operation(
        "POST",
        "/v1/hooks/jobs-changed",
        "Refresh the job snapshot now",
        tag="jobs",
        description=f"For an org Flow or Outbound Message. Authenticate with `{TIMESTAMP_HEADER}`"
        f" (unix seconds) and `{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "
        "'<timestamp>.<body>' keyed by the hook secret>`.",
        responses={202: Documented("Refresh queued", schema={"type": "object"})},
        errors=(401, 415, 429, 503),
    ),
]


def init_app(app) -> None:
    app.register_blueprint(bp)
    services(app).metadata.add_operations(OPERATIONS)
