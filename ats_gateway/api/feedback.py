"""Interview feedback at the edge: issuing links, the interviewer's JSON API and page.

    POST   /v1/interviews/{interview_id}/feedback-links             (key scope feedback:issue)
    DELETE /v1/interviews/{interview_id}/feedback-links/{link_id}   (key scope feedback:issue)
    GET    /v1/feedback/{token}           the form definition (interview, topics, picklists,
                                          JSON Schema of the submission)
    POST   /v1/feedback/{token}           a submission (JSON) -> 202, delivered by a worker
    GET    /v1/feedback/{token}/status    what became of it
    PUT    /v1/feedback/{token}/draft     save a partial submission (resumed by GET, the page)
    GET    /feedback/{token}              the page (server-rendered; works without JavaScript)
    POST   /feedback/{token}              the page's form post -> 303 to the confirmation, or
                                          the form again with field errors (422)

The signed link is the interviewer's credential (:mod:`ats_gateway.security.links`): a bad
signature is 401, an expired or revoked link 410, a second submission 409, all problem+json
on the API and a friendly page on `/feedback/...`. Everything the org is asked goes through
the `interview_feedback` connection only.

``ats-gateway feedback-link INTERVIEW_ID --interviewer EMAIL [--expires 7d] [--job-title T]``
issues a link from the command line; ``--revoke`` revokes that interviewer's links.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from ats_gateway.errors import (
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from ats_gateway.extensions import services
from ats_gateway.metadata import Operation, PermissionMissing
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.salesforce import SalesforceError
from ats_gateway.security import current_key, public, require_scope
from ats_gateway.security.links import (
    FeedbackLinks,
    LinkClaims,
    LinkRefused,
    check_record_id,
    normalize_email,
    parse_duration,
)
from ats_gateway.services.feedback import (
    AlreadySubmitted,
    FeedbackError,
    FeedbackService,
    FeedbackUnavailable,
    Grant,
    InterviewGone,
    InterviewNotFound,
    InvalidFeedback,
)
from ats_gateway.services.feedback.runtime import CONNECTION
from ats_gateway.tasks.feedback import schedule_delivery

log = logging.getLogger(__name__)

bp = Blueprint("feedback", __name__)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORM_ENDPOINT = "GET /v1/feedback/{token}"

# ---------------------------------------------------------------------------------- wiring


def links(app: Flask | None = None) -> FeedbackLinks:
    return services(app).links


def service(app: Flask | None = None) -> FeedbackService:
    return services(app).feedback


def _require_connection() -> None:
    services().metadata.require(CONNECTION, FORM_ENDPOINT)  # PermissionMissing -> 503


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


def _raise(exc: FeedbackError) -> None:
    if isinstance(exc, InvalidFeedback):
        raise ValidationFailed(exc.errors, exc.detail) from None
    if isinstance(exc, AlreadySubmitted):
        raise Conflict(exc.detail, **exc.extensions) from None
    if isinstance(exc, InterviewGone):
        raise Gone(exc.detail, **exc.extensions) from None
    raise ServiceUnavailable(exc.detail, **exc.extensions) from None


# ---------------------------------------------------------------------------------- issuing


def issue_link(
    app: Flask,
    interview_id: str,
    email: str,
    *,
    expires: str | int | None = None,
    job_title: str | None = None,
    issued_by: str = "",
) -> dict[str, Any]:
    """Check the interview (one API call, which also warms the form's cache), resolve the
    interviewer's Contact, sign the link. Raises gateway errors (404, 422, 503)."""
    settings = app.config["SETTINGS"]
    errors = []
    try:
        check_record_id(interview_id, "interview id")
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    try:
        email = normalize_email(email)
    except ValueError:
        errors.append(
            {"field": "interviewer_email", "code": "invalid_email", "message": "not an email"}
        )
    ttl = settings.feedback_link_ttl_seconds
    if expires not in (None, ""):
        try:
            ttl = parse_duration(expires)  # type: ignore[arg-type]
        except ValueError as exc:
            errors.append({"field": "expires_in", "code": "invalid", "message": str(exc)})
    if ttl > settings.feedback_link_max_ttl_seconds:
        errors.append(
            {
                "field": "expires_in",
                "code": "too_long",
                "message": f"a link may live at most "
                f"{settings.feedback_link_max_ttl_seconds // 86400} days",
            }
        )
    if job_title is not None and (not isinstance(job_title, str) or len(job_title) > 255):
        errors.append(
            {"field": "job_title", "code": "too_long", "message": "at most 255 characters"}
        )
    if errors:
        raise ValidationFailed(errors)
    store = links(app)
    if not store.configured:
        raise ServiceUnavailable("Feedback links need ATS_GATEWAY_SECRET_KEY to be set.")
    svc = service(app)
    try:
        context, contact_id = svc.contexts.load(interview_id, interviewer_email=email)
    except InterviewNotFound:
        raise NotFound(f"No interview {interview_id!r} in the org.") from None
    except FeedbackUnavailable as exc:
        raise ServiceUnavailable(exc.detail, **exc.extensions) from None
    except SalesforceError as exc:
        log.warning("feedback link for %s: %s", interview_id, exc)
        raise ServiceUnavailable("The org cannot be reached; try again shortly.") from None
    issued = store.issue(
        context.interview_id,
        email,
        ttl=ttl,
        issued_by=issued_by,
        contact_id=contact_id,
        job_title=job_title or None,
    )
    base = settings.public_url.rstrip("/")
    return {
        "link_id": issued.link_id,
        "url": f"{base}/feedback/{issued.token}",
        "api_url": f"{base}/v1/feedback/{issued.token}",
        "token": issued.token,
        "interview_id": context.interview_id,
        "interviewer_email": email,
        "interviewer_contact_id": contact_id,
        "expires_at": _iso(issued.expires_at),
    }


@bp.post("/v1/interviews/<interview_id>/feedback-links")
@require_scope("feedback:issue")
def create_link(interview_id: str):
    """Issue a signed, expiring link for one interviewer of one interview."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    unknown = set(body) - {"interviewer_email", "expires_in", "job_title"}
    if unknown:
        raise ValidationFailed(
            [
                {
                    "field": name,
                    "code": "unknown_field",
                    "message": f"{name} is not a field; allowed: interviewer_email, "
                    "expires_in, job_title",
                }
                for name in sorted(unknown)
            ]
        )
    if not body.get("interviewer_email"):
        raise ValidationFailed(
            [
                {
                    "field": "interviewer_email",
                    "code": "required",
                    "message": "interviewer_email is required",
                }
            ]
        )
    key = current_key()
    result = issue_link(
        current_app,
        interview_id,
        str(body["interviewer_email"]),
        expires=body.get("expires_in"),
        job_title=body.get("job_title"),
        issued_by=f"key:{key.id}" if key is not None else "",
    )
    return result, 201, {"Cache-Control": "no-store"}


@bp.delete("/v1/interviews/<interview_id>/feedback-links/<link_id>")
@require_scope("feedback:issue")
def revoke_link(interview_id: str, link_id: str):
    """Revoke one link (its page then says the link was withdrawn)."""
    store = links()
    raw = store.redis.hget(store.record_key(link_id), "interview_id")
    if raw is None or raw.decode() != interview_id:
        raise NotFound(f"No link {link_id!r} for interview {interview_id!r}.")
    store.revoke(link_id)
    return Response(status=204)


# ---------------------------------------------------------------------------------- JSON API


def _verified(token: str) -> Grant:
    return _grant(links().verify(token))


def _form(grant: Grant) -> dict[str, Any]:
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


@bp.get("/v1/feedback/<token>")
@public()
def get_form(token: str):
    """The form definition: interview, candidate first name, job title, topics, picklists."""
    grant = _verified(token)
    _require_connection()
    try:
        form = _form(grant)
    except FeedbackError as exc:
        _raise(exc)
    return form, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.post("/v1/feedback/<token>")
@public(budget="submit", accepts=(JSON,))
def submit(token: str):
    """Validate and queue the feedback; 202 once it is stored durably."""
    grant = _verified(token)
    _require_connection()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    try:
        accepted = service().submit(grant, body)
    except FeedbackError as exc:
        _raise(exc)
    schedule_delivery(services().settings, services().redis)
    status_url = url_for("feedback.status", token=token)
    body = {"id": accepted.id, "status": accepted.status, "status_url": status_url}
    return body, 202, {"Location": status_url, "Cache-Control": "no-store"}


@bp.put("/v1/feedback/<token>/draft")
@public(budget="submit", accepts=(JSON,))
def save_draft(token: str):
    """Keep a partial submission until the link expires (values are checked, none required)."""
    grant = _verified(token)
    _require_connection()
    body = request.get_json(silent=True)
    try:
        saved = service().save_draft(grant, body)
    except FeedbackError as exc:
        _raise(exc)
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


# ---------------------------------------------------------------------------------- the page

REFUSAL_PAGES = {
    "tampered": (
        "This link does not work",
        "The feedback link is incomplete or was changed. Open it again from the original "
        "message, or ask the recruiter to send a new one.",
    ),
    "expired": (
        "This link has expired",
        "Feedback links are valid for a limited time. Ask the recruiter for a new link.",
    ),
    "revoked": (
        "This link was withdrawn",
        "The recruiter withdrew this feedback link. Ask them for a new one if you still "
        "need to give feedback.",
    ),
    "interview_gone": (
        "This interview is no longer available",
        "The interview was removed from the recruiting system. Please contact the recruiter.",
    ),
    "unavailable": (
        "Please try again in a few minutes",
        "We cannot reach the recruiting system right now. Your link still works; come back "
        "a little later.",
    ),
}


def _refusal(reason: str, status_code: int) -> tuple[str, int, dict[str, str]]:
    title, text = REFUSAL_PAGES.get(reason, REFUSAL_PAGES["tampered"])
    html = render_template("feedback/problem.html", title=title, text=text, reason=reason)
    return html, status_code, _page_headers()


def _page_headers() -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'",
    }


def _page_preflight() -> None:
    try:
        _require_connection()
    except PermissionMissing as exc:
        log.error("feedback page: %s", exc)
        raise FeedbackUnavailable("The feedback connection lacks a permission.") from None


def _page_failure(exc: Exception):
    if isinstance(exc, LinkRefused):
        return _refusal(exc.reason, exc.status)  # type: ignore[attr-defined]
    if isinstance(exc, InterviewGone):
        return _refusal("interview_gone", 410)
    return _refusal("unavailable", 503)


def _confirmation(grant: Grant, record: Mapping[str, Any]):
    html = render_template(
        "feedback/done.html",
        delivered=FeedbackService.spent(record),
        status=record.get("status"),
        reference=record.get("id"),
    )
    return html, 200, _page_headers()


def _render_form(
    grant: Grant,
    form: dict[str, Any],
    *,
    values: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
    saved_at: str | None = None,
):
    field_errors: dict[str, str] = {}
    for error in errors or []:
        name = _form_field(error)
        field_errors.setdefault(name, error["message"])
    html = render_template(
        "feedback/form.html",
        form=form,
        when=_when(form["interview"].get("starts_at")),
        values=values or {},
        errors=field_errors,
        error_list=[(name, msg) for name, msg in field_errors.items()],
        action=url_for("feedback.page_submit", token=request.view_args["token"]),
        saved_at=_when(saved_at) if saved_at else None,
        expires=_when(form["link"]["expires_at"]) if form["link"].get("expires_at") else None,
    )
    return html, status_code, _page_headers()


@bp.get("/feedback/<token>")
@public()
def page(token: str):
    """The interviewer's page: the form, or the confirmation once submitted."""
    try:
        grant = _verified(token)
        _page_preflight()
        record = service().submission(grant)
        if record is not None:
            return _confirmation(grant, record)
        form = _form(grant)
    except AlreadySubmitted:
        return _confirmation(grant, {"status": "delivered"})
    except (LinkRefused, FeedbackError) as exc:
        return _page_failure(exc)
    draft = form.get("draft")
    if draft:
        values = _values_from_payload(draft.get("draft") or {})
        return _render_form(grant, form, values=values, saved_at=draft.get("saved_at"))
    return _render_form(grant, form)


@bp.post("/feedback/<token>")
@public(budget="submit", accepts=(FORM, MULTIPART))
def page_submit(token: str):
    """The form post: 303 to the confirmation, or the form again with its errors."""
    try:
        grant = _verified(token)
        _page_preflight()
        svc = service()
        record = svc.submission(grant)
        if record is not None:
            return _confirmation(grant, record)
        form = _form(grant)
    except AlreadySubmitted:
        return _confirmation(grant, {"status": "delivered"})
    except (LinkRefused, FeedbackError) as exc:
        return _page_failure(exc)
    values = {k: v for k, v in request.form.items() if k != "action"}
    payload = _payload_from_form(values, form)
    if request.form.get("action") == "draft":
        try:
            saved = svc.save_draft(grant, payload)
        except InvalidFeedback as exc:
            return _render_form(grant, form, values=values, errors=exc.errors, status_code=422)
        except FeedbackError as exc:
            return _page_failure(exc)
        return _render_form(grant, form, values=values, saved_at=saved["saved_at"])
    try:
        svc.submit(grant, payload)
    except InvalidFeedback as exc:
        return _render_form(grant, form, values=values, errors=exc.errors, status_code=422)
    except AlreadySubmitted:
        return _confirmation(grant, svc.submission(grant) or {"status": "delivered"})
    except FeedbackError as exc:
        return _page_failure(exc)
    schedule_delivery(services().settings, services().redis)
    return redirect(url_for("feedback.page", token=token), code=303)


def _payload_from_form(values: Mapping[str, str], form: Mapping[str, Any]) -> dict[str, Any]:
    """Form fields (`overall_rating`, `recommendation`, `comments`, `topic.<id>.rating`,
    `topic.<id>.comments`) -> the JSON submission; empty fields are left out."""
    payload: dict[str, Any] = {}
    for name in ("overall_rating", "recommendation", "comments"):
        value = (values.get(name) or "").strip()
        if value:
            payload[name] = value
    topics = []
    for topic in form["topics"]:
        rating = (values.get(f"topic.{topic['id']}.rating") or "").strip()
        comments = (values.get(f"topic.{topic['id']}.comments") or "").strip()
        if rating or comments or topic["required"]:
            item: dict[str, Any] = {"topic_id": topic["id"]}
            if rating:
                item["rating"] = rating
            if comments:
                item["comments"] = comments
            topics.append(item)
    if topics:
        payload["topics"] = topics
    return payload


def _values_from_payload(payload: Mapping[str, Any]) -> dict[str, str]:
    """A (draft) submission -> the page's field values."""
    values = {
        name: str(payload[name])
        for name in ("overall_rating", "recommendation", "comments")
        if isinstance(payload.get(name), str)
    }
    for item in payload.get("topics") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("topic_id"), str):
            continue
        for leaf in ("rating", "comments"):
            if isinstance(item.get(leaf), str):
                values[f"topic.{item['topic_id']}.{leaf}"] = item[leaf]
    return values


def _form_field(error: Mapping[str, Any]) -> str:
    """The page's input name for an API error (so the message shows next to its field)."""
    field = str(error.get("field", ""))
    topic_id = error.get("topic_id")
    if topic_id:
        leaf = field.rsplit(".", 1)[-1] if "." in field else "rating"
        if leaf == "topic_id":
            leaf = "rating"
        return f"topic.{topic_id}.{leaf}"
    return field


def _when(value: str | None) -> str:
    if not value:
        return ""
    text = value.replace("Z", "+0000")
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            moment = datetime.strptime(text, layout)
            break
        except ValueError:
            continue
    else:
        return value
    return moment.strftime("%A %d %B %Y, %H:%M UTC").lstrip("0")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


# ---------------------------------------------------------------------------------- CLI


def add_commands(sub: Any) -> None:
    """``ats-gateway feedback-link INTERVIEW_ID --interviewer EMAIL [--expires 7d]``."""
    cmd = sub.add_parser(
        "feedback-link",
        help="issue (or revoke) an interviewer's feedback link",
        description="Print a signed, expiring feedback URL for one interviewer of one "
        "interview; with --revoke, withdraw every link issued for that pair.",
    )
    cmd.add_argument("interview_id", metavar="INTERVIEW_ID")
    cmd.add_argument("--interviewer", required=True, metavar="EMAIL")
    cmd.add_argument("--expires", default=None, help="lifetime, e.g. 7d (default), 12h, 2w")
    cmd.add_argument("--job-title", default=None, help="job title to show the interviewer")
    cmd.add_argument("--revoke", action="store_true", help="revoke this interviewer's links")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(handler=cmd_feedback_link)


def cmd_feedback_link(args: Any, settings: Any = None) -> int:
    import json
    import sys

    from ats_gateway import create_app
    from ats_gateway.config import Settings
    from ats_gateway.errors import GatewayError

    app = create_app(settings or Settings.from_env())
    with app.app_context():
        if args.revoke:
            try:
                count = links(app).revoke_for(args.interview_id, args.interviewer)
            except ValueError as exc:
                sys.stderr.write(f"error: {exc}\n")
                return 2
            out: Any = {"revoked": count}
            text = f"revoked {count} link(s)"
            sys.stdout.write((json.dumps(out) if args.json else text) + "\n")
            return 0 if count else 1
        try:
            result = issue_link(
                app,
                args.interview_id,
                args.interviewer,
                expires=args.expires,
                job_title=args.job_title,
                issued_by="cli",
            )
        except GatewayError as exc:
            errors = exc.extensions.get("errors") or []
            reasons = "; ".join(e["message"] for e in errors) or exc.detail
            sys.stderr.write(f"error: {reasons}\n")
            return 1
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(f"{result['url']}\n(expires {result['expires_at']})\n")
    return 0
