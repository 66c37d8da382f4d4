"""Interview feedback at the edge: issuing links and the interviewer's JSON API.

    POST   /v1/interviews/{interview_id}/feedback-links             (key scope feedback:issue)
    DELETE /v1/interviews/{interview_id}/feedback-links/{link_id}   (key scope feedback:issue)
    GET    /v1/feedback/{token}           the form definition (interview, topics, picklists,
                                          JSON Schema of the submission)
    POST   /v1/feedback/{token}           a submission (JSON) -> 202, delivered by a worker
    GET    /v1/feedback/{token}/status    what became of it
    PUT    /v1/feedback/{token}/draft     save a partial submission (resumed by GET, the page)

The interviewer's HTML page (`/feedback/{token}`) is :mod:`ats_gateway.api.feedback_page`;
issuing is the link issuer service (:mod:`ats_gateway.services.feedback.issuing`), also
behind ``ats-gateway feedback-link`` (:mod:`ats_gateway.cli`).

The signed link is the interviewer's credential (:mod:`ats_gateway.security.links`): a bad
signature is 401, an expired or revoked link 410, a second submission 409, all problem+json
(service errors through the one table of ``ats_gateway.api.PROBLEMS``). Everything the org
is asked goes through the `interview_feedback` connection only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, request, url_for

from ats_gateway.errors import BadRequest, NotFound
from ats_gateway.extensions import services
from ats_gateway.metadata import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import current_key, public, require_scope
from ats_gateway.security.links import FeedbackLinks, LinkClaims
from ats_gateway.services.feedback import AlreadySubmitted, FeedbackService, Grant
from ats_gateway.services.feedback.runtime import CONNECTION
from ats_gateway.tasks.feedback import schedule_delivery

bp = Blueprint("feedback", __name__)

JSON = "application/json"
FORM_ENDPOINT = "GET /v1/feedback/{token}"

# ---------------------------------------------------------------------------------- shared


def links(app: Flask | None = None) -> FeedbackLinks:
    return services(app).links


def service(app: Flask | None = None) -> FeedbackService:
    return services(app).feedback


def require_connection() -> None:
    """The feedback connection holds its grants (PermissionMissing -> 503 naming the grant)."""
    services().metadata.require(CONNECTION, FORM_ENDPOINT)


def _public_job_title(job_id: str | None) -> str | None:
    """The job's public title from the jobs snapshot (no org call); None if not listed."""
    jobs = services().jobs
    if not job_id:
        return None
    try:
        if jobs.store.pointer() is None:
            return None
        return jobs.get_job(job_id).body()["data"].get("title")
    except Exception:  # not public, or no snapshot: the page simply shows no title
        return None


def _grant(claims: LinkClaims) -> Grant:
    return Grant(
        interview_id=claims.interview_id,
        email=claims.email,
        link_id=claims.link_id,
        contact_id=claims.contact_id,
        job_title=claims.job_title,
        expires_at=claims.expires_at,
    )


def verified(token: str) -> Grant:
    """The grant of a valid link (LinkRefused: 401/410)."""
    return _grant(links().verify(token))


def form_of(grant: Grant) -> dict[str, Any]:
    """The form definition with the job title and any saved draft (AlreadySubmitted: 409)."""
    svc = service()
    submitted = svc.submission(grant)
    if submitted is not None:
        raise AlreadySubmitted(
            "Feedback was already submitted with this link.",
            reason="already_submitted",
            submission={"id": submitted["id"], "status": submitted["status"]},
        )
    form = svc.form(grant)
    if not form["job"]["title"]:
        form["job"]["title"] = _public_job_title(svc.context(grant.interview_id).job_id)
    form["draft"] = svc.draft(grant)
    return form


# ---------------------------------------------------------------------------------- issuing


@bp.post("/v1/interviews/<interview_id>/feedback-links")
@require_scope("feedback:issue")
def create_link(interview_id: str):
    """Issue a signed, expiring link for one interviewer of one interview."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    key = current_key()
    issued_by = f"key:{key.id}" if key is not None else ""
    result = services().link_issuer.issue(interview_id, body, issued_by=issued_by)
    return result, 201, {"Cache-Control": "no-store"}


@bp.delete("/v1/interviews/<interview_id>/feedback-links/<link_id>")
@require_scope("feedback:issue")
def revoke_link(interview_id: str, link_id: str):
    """Revoke one link (its page then says the link was withdrawn)."""
    services().link_issuer.revoke(interview_id, link_id)
    return Response(status=204)


# ---------------------------------------------------------------------------------- JSON API


@bp.get("/v1/feedback/<token>")
@public()
def get_form(token: str):
    """The form definition: interview, candidate first name, job title, topics, picklists."""
    grant = verified(token)
    require_connection()
    form = form_of(grant)
    return form, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.post("/v1/feedback/<token>")
@public(budget="submit", accepts=(JSON,))
def submit(token: str):
    """Validate and queue the feedback; 202 once it is stored durably."""
    grant = verified(token)
    require_connection()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    accepted = service().submit(grant, body)
    schedule_delivery(services().settings, services().redis)
    status_url = url_for("feedback.status", token=token)
    body = {"id": accepted.id, "status": accepted.status, "status_url": status_url}
    return body, 202, {"Location": status_url, "Cache-Control": "no-store"}


@bp.put("/v1/feedback/<token>/draft")
@public(budget="submit", accepts=(JSON,))
def save_draft(token: str):
    """Keep a partial submission until the link expires (values are checked, none required)."""
    grant = verified(token)
    require_connection()
    body = request.get_json(silent=True)
    saved = service().save_draft(grant, body)
    return saved, 200, {"Cache-Control": "no-store"}


@bp.get("/v1/feedback/<token>/status")
@public()
def status(token: str):
    """What became of this link's feedback: queued, delivering, delivered or failed."""
    grant = _status_grant(token)
    record = service().submission(grant)
    if record is None:
        raise NotFound("No feedback was submitted with this link (or its delivery failed).")
    out = {"id": record["id"], "status": record["status"]}
    result = record.get("result") or {}
    if result.get("feedback_id"):
        out["feedback_id"] = result["feedback_id"]
    return out, 200, {"Cache-Control": "no-store"}


def _status_grant(token: str) -> Grant:
    """Status stays readable after the link expired (but never with a bad signature)."""
    data = links().unsigned(token)
    return Grant(interview_id=str(data["i"]), email=str(data["e"]), link_id=str(data["l"]))


# ---------------------------------------------------------------------------------- OpenAPI

_TOKEN = {"token": "The signed link token (the last part of the interviewer's URL)."}
_LINK = {
    "type": "object",
    "properties": {
        "link_id": {"type": "string"},
        "url": {"type": "string", "description": "The page to send to the interviewer."},
        "api_url": {"type": "string"},
        "token": {"type": "string"},
        "interview_id": {"type": "string"},
        "interviewer_email": {"type": "string"},
        "interviewer_contact_id": {"type": ["string", "null"]},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}
_ISSUE = {
    "type": "object",
    "required": ["interviewer_email"],
    "additionalProperties": False,
    "properties": {
        "interviewer_email": {"type": "string", "format": "email"},
        "expires_in": {
            "type": ["string", "integer"],
            "description": "Lifetime: seconds, or 30m / 12h / 7d / 2w (default 7d).",
        },
        "job_title": {
            "type": "string",
            "maxLength": 255,
            "description": "Shown to the interviewer (the feedback connection cannot read jobs).",
        },
    },
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string"},
        "status_url": {"type": "string"},
    },
}

OPERATIONS = [
    Operation(
        "POST",
        "/v1/interviews/{interview_id}/feedback-links",
        "Issue an interviewer feedback link",
        tag="feedback",
        path_params={"interview_id": "The interview (bpats__Interview__c id)."},
        responses={201: Documented("The link", schema=_LINK)},
        errors=(400, 401, 403, 404, 415, 422, 429, 503),
        security=True,
        extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ISSUE}},
            }
        },
    ),
    Operation(
        "DELETE",
        "/v1/interviews/{interview_id}/feedback-links/{link_id}",
        "Revoke an interviewer feedback link",
        tag="feedback",
        path_params={"interview_id": "The interview.", "link_id": "The link's id."},
        responses={204: Documented("Revoked")},
        errors=(401, 403, 404, 429),
        security=True,
    ),
    Operation(
        "GET",
        "/v1/feedback/{token}",
        "The interviewer's form definition",
        tag="feedback",
        description="Interview date and type, the candidate's first name, the job title, the "
        "template's topics in order, the org's rating and recommendation picklists, and the "
        "JSON Schema of a submission.",
        path_params=_TOKEN,
        responses={200: Documented("The form", schema={"type": "object"})},
        errors=(401, 404, 409, 410, 429, 503),
    ),
    Operation(
        "POST",
        "/v1/feedback/{token}",
        "Submit interview feedback",
        tag="feedback",
        description="Validated against the describe-built schema; delivered by a worker as one "
        "sObject Tree (feedback with its topic feedbacks). One per interviewer and interview.",
        request="interview_feedback",
        path_params=_TOKEN,
        responses={202: Documented("Accepted; poll `status_url`", schema=_ACCEPTED)},
        errors=(400, 401, 409, 410, 415, 422, 429, 503),
    ),
    Operation(
        "PUT",
        "/v1/feedback/{token}/draft",
        "Save a draft of the feedback",
        tag="feedback",
        description="Checked like a submission, but nothing is required; kept until the link "
        "expires or the feedback is submitted, and returned as `draft` by the form.",
        path_params=_TOKEN,
        responses={200: Documented("Saved", schema={"type": "object"})},
        errors=(400, 401, 409, 410, 415, 422, 429, 503),
    ),
    Operation(
        "GET",
        "/v1/feedback/{token}/status",
        "What became of a submitted feedback",
        tag="feedback",
        path_params=_TOKEN,
        responses={200: Documented("The status", schema={"type": "object"})},
        errors=(401, 404, 429),
    ),
]


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    services(app).metadata.add_operations(OPERATIONS)
