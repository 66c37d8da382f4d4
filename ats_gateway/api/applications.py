"""`/v1/applications`: submit (JSON or multipart with a resume), batch submit, status.

Views parse the request, authorize it (API key scopes), call the applications service and
render; every refusal is problem+json (the service's errors through `api.PROBLEMS`), and
nothing is accepted (202) before it is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, g, request, url_for
from redis.exceptions import RedisError

from ats_gateway.api.receipts import receipt_url
from ats_gateway.errors import (
    BadRequest,
    NotFound,
    UnsupportedMediaType,
)
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import enforce_browser_submission, require_scope
from ats_gateway.services.applications import (
    ApplicationService,
    ResumeUpload,
)
from ats_gateway.services.applications.intake import inline_resume
from ats_gateway.tasks.applications import schedule_delivery

bp = Blueprint("applications", __name__)
log = logging.getLogger(__name__)


STATUS_VALUES = ["queued", "delivering", "delivered", "failed", "duplicate"]
ACCEPTED = {
    "type": "object",
    "required": ["id", "status", "status_url"],
    "properties": {
        "id": {"type": "string", "description": "The application's reference at the gateway."},
        "status": {"type": "string", "enum": STATUS_VALUES},
        "status_url": {"type": "string", "description": "Poll it: GET /v1/applications/{id}."},
        "receipt_url": {
            "type": "string",
            "description": "Publishable keys only: the candidate's own status page (expires).",
        },
    },
}
STATUS = {
    "type": "object",
    "required": ["id", "status", "submitted_at", "updated_at", "attempts"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": STATUS_VALUES},
        "submitted_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "attempts": {"type": "integer", "description": "Failed delivery attempts so far."},
        "salesforce_id": {"type": "string", "description": "delivered / duplicate"},
        "contact_id": {"type": "string", "description": "delivered / duplicate"},
        "resume_id": {"type": "string", "description": "delivered with a resume"},
        "resume_error": {"type": "string", "description": "the org refused only the file"},
        "reason": {"type": "string", "description": "failed / duplicate: why"},
        "code": {"type": "string", "description": "failed: the org's error code"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "failed"},
        "last_error": {"type": "object", "description": "queued after a retryable failure"},
        "next_attempt_at": {"type": "string", "format": "date-time"},
    },
}
BATCH_RESULT = {
    "type": "object",
    "required": ["accepted", "rejected", "items"],
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "integer"},
        "items": {
            "type": "array",
            "description": "One per submitted item, in order: status 202 with id and "
            "status_url, or the item's own 409/413/422 with detail and errors.",
            "items": {
                "type": "object",
                "required": ["index", "status"],
                "properties": {
                    "index": {"type": "integer"},
                    "status": {"type": "integer", "enum": [202, 409, 413, 422]},
                    "id": {"type": "string"},
                    "status_url": {"type": "string"},
                    "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}
IDEMPOTENCY_DOC = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Replays the first answer for 24 h; a different body with the same key is 422.",
    "schema": {"type": "string", "maxLength": 255},
}
OPERATIONS = [
    Operation(
        "POST",
        "/v1/applications",
        "Apply to a job",
        tag="applications",
        description="JSON, or multipart/form-data with a `resume` file (PDF, DOC, DOCX, RTF or "
        "TXT by content). Validated at once; 202 once stored durably, delivered to the org "
        "by a worker. The same email applying to the same job again is 409.",
        request="application",
        multipart=True,
        responses={
            202: Documented(
                "Accepted and queued; poll `status_url`",
                schema=ACCEPTED,
                headers={"Location": "the status URL", "Idempotent-Replayed": "true on replay"},
            )
        },
        errors=(400, 401, 403, 409, 413, 415, 422, 429, 503),
        security=True,
        extra={"parameters": [IDEMPOTENCY_DOC]},
    ),
    Operation(
        "POST",
        "/v1/applications/batch",
        "Submit up to 1,000 applications",
        tag="applications",
        description="Each item is validated and queued on its own (a bad item never sinks the "
        "others); items may carry `resume: {filename, content_base64}`.",
        responses={207: Documented("One outcome per item", schema=BATCH_RESULT)},
        errors=(400, 401, 403, 413, 415, 422, 429, 503),
        security=True,
        extra={
            "parameters": [IDEMPOTENCY_DOC],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["applications"],
                            "properties": {
                                "applications": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 1000,
                                    "items": {"$ref": "#/components/schemas/ApplicationInput"},
                                }
                            },
                        }
                    }
                },
            },
        },
    ),
    Operation(
        "GET",
        "/v1/applications/{application_id}",
        "What became of an application",
        tag="applications",
        path_params={"application_id": "the `id` of the 202 answer"},
        responses={200: Documented("The status (kept 30 days)", schema=STATUS)},
        errors=(401, 403, 404, 429),
        security=True,
    ),
]


@bp.record_once
def _document(state) -> None:
    services(state.app).metadata.add_operations(OPERATIONS)


JSON = "application/json"
MULTIPART = "multipart/form-data"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_BOOLEAN_TEXT = {"true": True, "false": False, "on": True, "off": False, "1": True, "0": False}


def service() -> ApplicationService:
    return services().applications


def _scope() -> str:
    key = getattr(g, "api_key", None)
    return f"key:{key.id}" if key is not None else "public"


def _default_source() -> str:
    """A secret key's default source (source attribution, services/applications/sources)."""
    key = getattr(g, "api_key", None)
    return getattr(key, "source", "") if key is not None else ""


def _idempotency_key() -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    if not 1 <= len(raw) <= 255 or not raw.isprintable():
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable characters.")
    return raw


def _read_submission() -> tuple[dict[str, Any], ResumeUpload | None]:
    mimetype = request.mimetype
    if mimetype == JSON:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object.")
        resume = data.pop("resume", None)
        upload = None
        if resume is not None:
            upload = _base64_resume(resume)
        return enforce_browser_submission(data), upload
    if mimetype == MULTIPART:
        form: dict[str, Any] = {k: v for k, v in request.form.items()}
        # A file part is a field too: the honeypot sent as a file is still filled in ([15]),
        # and any file part but the resume is an unknown field for validation to name.
        form.update({name: "(file)" for name in request.files if name != "resume"})
        data = enforce_browser_submission(form)
        booleans = service().schema.boolean_fields()
        for name in booleans & data.keys():
            value = str(data[name]).strip().lower()
            data[name] = _BOOLEAN_TEXT.get(value, data[name])
        upload = None
        part = request.files.get("resume")
        if part is not None and part.filename:  # browsers send an empty part for "no file"
            limit = service().resume_rule.max_bytes
            content = part.stream.read(limit + 1)
            upload = ResumeUpload(content, part.filename)
        return data, upload
    raise UnsupportedMediaType(f"Send {JSON} or {MULTIPART}.")


def _base64_resume(value: Any) -> ResumeUpload:
    upload = inline_resume({"resume": value})
    assert upload is not None
    return upload


def _accepted_body(application_id: str) -> dict[str, Any]:
    return {
        "id": application_id,
        "status": "queued",
        "status_url": url_for("applications.status", application_id=application_id),
    }


def _schedule() -> None:
    """Schedule delivery of what was just stored. Stored is what counts: if Redis or the
    broker fails now, beat's sweep delivers it, and the 202 stays true."""
    try:
        schedule_delivery(services().settings, services().redis)
    except Exception as exc:  # redis or kombu errors alike
        log.warning("delivery not scheduled (%s); beat sweeps", type(exc).__name__)


@bp.post("/v1/applications")
@require_scope("applications:write", accepts=(JSON, MULTIPART))
def submit():
    """Validate and queue one application; 202 once it is stored durably."""
    data, resume = _read_submission()
    accepted = service().submit(
        data,
        resume,
        idempotency_key=_idempotency_key(),
        scope=_scope(),
        default_source=_default_source(),
    )
    # A replay schedules too: the first attempt may have stored the application and died
    # before scheduling it (one timer per queue, so this costs one Redis call).
    _schedule()
    body = _accepted_body(accepted.id)
    key = getattr(g, "api_key", None)
    if key is not None and key.publishable:  # [17] the candidate's own status page
        body["receipt_url"] = receipt_url(accepted.id)
    headers = {"Location": body["status_url"]}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
        try:
            record = service().status(accepted.id)
        except RedisError:  # [20] stored and confirmed: the 202 stands, "queued" or not
            record = None
        if record is not None:
            body["status"] = record["status"]
    return body, 202, headers


@bp.post("/v1/applications/batch")
@require_scope("applications:write", accepts=(JSON,), server_only=True)
def submit_batch():
    """Up to 1,000 applications, each validated and queued on its own (207-style answer)."""
    body = request.get_json(silent=True)
    items = body.get("applications") if isinstance(body, dict) else body
    result = service().submit_batch(
        items,
        idempotency_key=_idempotency_key(),
        scope=_scope(),
        default_source=_default_source(),
    )
    for item in result["items"]:
        if item["status"] == 202:
            item["status_url"] = url_for("applications.status", application_id=item["id"])
    if result["accepted"]:
        _schedule()
    return result, 207


@bp.get("/v1/applications/<application_id>")
@require_scope("applications:read", accepts=(JSON,))
def status(application_id: str):
    """What became of an application: queued, delivering, delivered, failed or duplicate."""
    key = g.api_key
    owner = None if "admin" in key.scopes else _scope()
    record = service().status(application_id, owner=owner)
    if record is None:
        raise NotFound(f"No application {application_id!r} (status records last 30 days).")
    return record, 200, {"Cache-Control": "no-store"}
