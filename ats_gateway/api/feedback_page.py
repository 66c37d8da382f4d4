"""The interviewer's feedback page: server-rendered, works without JavaScript.

    GET    /feedback/{token}              the form, or the confirmation once submitted
    POST   /feedback/{token}              the form post -> 303 to the confirmation, or the form
                                          again with field errors (422); `action=draft` saves

A refused link or an unavailable org is a friendly page here, never problem+json. The page
uses the same feedback service as the JSON API (:mod:`ats_gateway.api.feedback`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from ats_gateway.api.feedback import form_of, require_connection, service, verified
from ats_gateway.extensions import services
from ats_gateway.metadata import PermissionMissing
from ats_gateway.security import public
from ats_gateway.security.links import LinkRefused
from ats_gateway.services.feedback import (
    AlreadySubmitted,
    FeedbackError,
    FeedbackService,
    FeedbackUnavailable,
    Grant,
    InterviewGone,
    InvalidFeedback,
)
from ats_gateway.tasks.feedback import schedule_delivery

log = logging.getLogger(__name__)

bp = Blueprint("feedback_page", __name__)

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

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
        require_connection()
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
        action=url_for("feedback_page.page_submit", token=request.view_args["token"]),
        saved_at=_when(saved_at) if saved_at else None,
        expires=_when(form["link"]["expires_at"]) if form["link"].get("expires_at") else None,
    )
    return html, status_code, _page_headers()


@bp.get("/feedback/<token>")
@public()
def page(token: str):
    """The interviewer's page: the form, or the confirmation once submitted."""
    try:
        grant = verified(token)
        _page_preflight()
        record = service().submission(grant)
        if record is not None:
            return _confirmation(grant, record)
        form = form_of(grant)
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
        grant = verified(token)
        _page_preflight()
        svc = service()
        record = svc.submission(grant)
        if record is not None:
            return _confirmation(grant, record)
        form = form_of(grant)
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
    return redirect(url_for("feedback_page.page", token=token), code=303)


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
