"""Issuing interviewer feedback links: the request checked by a marshmallow schema, the interview
and the interviewer's Contact read from the org (one call, which also warms the form's cache),
the link signed by the link store.

    issuer = services().link_issuer
    issuer.issue("a0I...", {"interviewer_email": "pat@client.example", "expires_in": "7d"},
                 issued_by="key:ab12")          -> {link_id, url, api_url, token, ...}
    issuer.revoke("a0I...", link_id)            (LinkNotFound when the pair does not match)
    issuer.revoke_for("a0I...", "pat@client.example") -> how many links were revoked

Refusals are :class:`~ats_gateway.services.feedback.FeedbackError` subclasses, which the HTTP
edge maps to problem types in one table (``ats_gateway.api.PROBLEMS``): ``InvalidLinkRequest``
422, ``LinkNotFound`` 404, ``FeedbackUnavailable`` 503 (no signing secret, no feedback
connection, org unreachable).

The link store (``security.links.FeedbackLinks``) is passed in: services sit below security.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from marshmallow import RAISE, Schema, ValidationError, fields

from ats_gateway.salesforce import SalesforceError
from ats_gateway.services.feedback.context import ContextReader, InterviewNotFound
from ats_gateway.services.feedback.service import (
    FeedbackError,
    FeedbackUnavailable,
    InvalidFeedback,
)

log = logging.getLogger(__name__)

_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_JOB_TITLE = 255


def parse_duration(text: str | int | float) -> int:
    """Seconds from ``"7d"``, ``"12h"``, ``"30m"``, ``"2w"``, ``"3600"`` / ``3600``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = int(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m, 2w)")
        seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def normalize_email(email: str) -> str:
    value = (email or "").strip().lower()
    if len(value) > 80 or not _EMAIL.match(value):
        raise ValueError(f"not an email address: {email!r}")
    return value


def check_record_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not _RECORD_ID.match(value):
        raise ValueError(f"not a Salesforce {what}: {value!r}")
    return value


class InvalidLinkRequest(InvalidFeedback):
    """The link request failed validation; `errors` is `[{field, code, message}]`."""


class LinkNotFound(FeedbackError):
    """No such interview in the org, or no such link for that interview."""


class LinkStore(Protocol):
    """What issuing needs of ``security.links.FeedbackLinks``."""

    configured: bool

    def issue(self, interview_id: str, email: str, **kwargs: Any) -> Any: ...

    def interview_of(self, link_id: str) -> str | None: ...

    def revoke(self, link_id: str) -> bool: ...

    def revoke_for(self, interview_id: str, email: str) -> int: ...


# ------------------------------------------------------------------ the input schema


class _Email(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if value in (None, ""):
            raise ValidationError("interviewer_email is required", "required")
        try:
            return normalize_email(str(value))
        except ValueError:
            raise ValidationError("not an email", "invalid_email") from None


class _Duration(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int | None:
        if value in (None, ""):
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc), "invalid") from None


class _Title(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | None:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or len(value) > MAX_JOB_TITLE:
            raise ValidationError(f"at most {MAX_JOB_TITLE} characters", "too_long")
        return value


class IssueLinkInput(Schema):
    """The body of ``POST /v1/interviews/{id}/feedback-links`` (and the CLI's options)."""

    class Meta:
        unknown = RAISE

    interviewer_email = _Email(
        required=True, error_messages={"required": "interviewer_email is required"}
    )
    expires_in = _Duration(load_default=None, allow_none=True)
    job_title = _Title(load_default=None, allow_none=True)


_FIELD_CODES = {
    "interviewer_email": "invalid_email",
    "expires_in": "invalid",
    "job_title": "too_long",
}


def _errors(messages: Mapping[str, Any], allowed: list[str]) -> list[dict[str, str]]:
    out = []
    for name in [*allowed, *sorted(set(messages) - set(allowed))]:
        if name not in messages:
            continue
        if name not in allowed:
            message = f"{name} is not a field; allowed: {', '.join(allowed)}"
            out.append({"field": name, "code": "unknown_field", "message": message})
            continue
        for text in messages[name]:
            code = "required" if text.endswith("is required") else _FIELD_CODES[name]
            out.append({"field": name, "code": code, "message": text})
    return out


# ------------------------------------------------------------------ the service


class LinkIssuer:
    """Issue and revoke interviewer links (validation, org check, signing)."""

    def __init__(self, links: LinkStore, contexts: ContextReader, settings: Any) -> None:
        self.links = links
        self.contexts = contexts
        self.default_ttl = int(settings.feedback_link_ttl_seconds)
        self.max_ttl = int(settings.feedback_link_max_ttl_seconds)
        self.public_url = str(settings.public_url).rstrip("/")
        self.schema = IssueLinkInput()

    def parse(self, body: Any) -> dict[str, Any]:
        """The request checked: ``{interviewer_email, ttl, job_title}`` or InvalidLinkRequest."""
        if not isinstance(body, Mapping):
            raise InvalidLinkRequest(
                [{"field": "(body)", "code": "invalid_type", "message": "must be a JSON object"}]
            )
        try:
            data = self.schema.load(body)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, Mapping) else {}
            raise InvalidLinkRequest(_errors(messages, list(self.schema.fields))) from None
        ttl = data["expires_in"] or self.default_ttl
        if ttl > self.max_ttl:
            message = f"a link may live at most {self.max_ttl // 86400} days"
            raise InvalidLinkRequest(
                [{"field": "expires_in", "code": "too_long", "message": message}]
            )
        return {"email": data["interviewer_email"], "ttl": ttl, "job_title": data["job_title"]}

    def issue(self, interview_id: str, body: Any, *, issued_by: str = "") -> dict[str, Any]:
        """Check the interview (one API call, which also warms the form's cache), resolve the
        interviewer's Contact, sign the link."""
        try:
            check_record_id(interview_id, "interview id")
        except ValueError as exc:
            raise LinkNotFound(str(exc)) from None
        request = self.parse(body)
        if not self.links.configured:
            raise FeedbackUnavailable("Feedback links need ATS_GATEWAY_SECRET_KEY to be set.")
        email = request["email"]
        try:
            context, contact_id = self.contexts.load(interview_id, interviewer_email=email)
        except InterviewNotFound:
            raise LinkNotFound(f"No interview {interview_id!r} in the org.") from None
        except SalesforceError as exc:
            log.warning("feedback link for %s: %s", interview_id, exc)
            raise FeedbackUnavailable("The org cannot be reached; try again shortly.") from None
        issued = self.links.issue(
            context.interview_id,
            email,
            ttl=request["ttl"],
            issued_by=issued_by,
            contact_id=contact_id,
            job_title=request["job_title"],
        )
        return {
            "link_id": issued.link_id,
            "url": f"{self.public_url}/feedback/{issued.token}",
            "api_url": f"{self.public_url}/v1/feedback/{issued.token}",
            "token": issued.token,
            "interview_id": context.interview_id,
            "interviewer_email": email,
            "interviewer_contact_id": contact_id,
            "expires_at": _iso(issued.expires_at),
        }

    def revoke(self, interview_id: str, link_id: str) -> None:
        """Revoke one link of this interview (its page then says the link was withdrawn)."""
        if self.links.interview_of(link_id) != interview_id:
            raise LinkNotFound(f"No link {link_id!r} for interview {interview_id!r}.")
        self.links.revoke(link_id)

    def revoke_for(self, interview_id: str, email: str) -> int:
        """Revoke every link of an interviewer for an interview; how many there were."""
        return self.links.revoke_for(interview_id, email)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
