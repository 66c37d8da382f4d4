"""Interview feedback: the form definition, validated intake into the durable outbox, status.

    service.form(grant)                 -> the form definition (interview, candidate first name,
                                           job title, topics in order, picklists, JSON Schema)
    service.submit(grant, payload)      -> Accepted (202); raises InvalidFeedback (422),
                                           AlreadySubmitted (409), InterviewGone (410),
                                           FeedbackUnavailable (503)
    service.submission(grant)           -> the status record of this interviewer's feedback
    service.save_draft(grant, payload)  -> keep a partial submission until the link expires
    service.draft(grant)                -> the saved draft, or None (gone once submitted)

A ``Grant`` is what a verified interviewer link allows (the HTTP edge builds it from the
link's claims; this module knows nothing of tokens). Validation is the metadata layer's
describe-built schema (``interview_feedback`` with nested ``topic_feedback``: restricted
picklists, required recommendation, comment lengths), then the template: known topics, no
topic twice, a rating for every required topic. Errors on a topic name it.

"One feedback per interviewer per interview" is enforced twice: the org's existing feedback
(read with the interview context) and the outbox's unique key ``<interview>:<email>``, which
a delivered feedback keeps for the status lifetime (a failed one frees it, so the interviewer
may submit again once the cause is fixed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from ats_gateway.metadata import InvalidInput, Metadata
from ats_gateway.metadata.errors import error_list
from ats_gateway.salesforce import SalesforceError
from ats_gateway.services.delivery import DELIVERED, DUPLICATE, FAILED, Outbox
from ats_gateway.services.feedback.context import (
    NAMES,
    ContextReader,
    InterviewContext,
    InterviewNotFound,
    OrgNames,
)

log = logging.getLogger(__name__)

RESOURCE = "interview_feedback"
TOPIC_RESOURCE = "topic_feedback"
KIND = "feedback"

DRAFT_PREFIX = "ats-gateway:feedback:draft:"
DRAFT_MAX_BYTES = 256 * 1024
DRAFT_DEFAULT_TTL = 7 * 86400

_TOPIC_PATH = re.compile(r"^topics\[(\d+)\](?:\.(\w+))?$")


class FeedbackError(Exception):
    """Base of this module's refusals; `detail` is safe to show to the interviewer."""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidFeedback(FeedbackError):
    def __init__(self, errors: list[dict[str, Any]], detail: str = "") -> None:
        super().__init__(detail or f"{len(errors)} field(s) failed validation.")
        self.errors = errors


class AlreadySubmitted(FeedbackError):
    pass


class InterviewGone(FeedbackError):
    pass


class FeedbackUnavailable(FeedbackError):
    pass


@dataclass(frozen=True)
class Grant:
    """Feedback on one interview by one interviewer (from a verified link)."""

    interview_id: str
    email: str
    link_id: str = ""
    contact_id: str | None = None
    job_title: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class Accepted:
    id: str
    status: str


def unique_name(interview_id: str, email: str) -> str:
    return f"{interview_id[:15]}:{email.strip().lower()}"


class FeedbackService:
    def __init__(
        self,
        metadata: Callable[[], Metadata],
        outbox: Outbox,
        contexts: ContextReader,
        *,
        names: OrgNames = NAMES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metadata = metadata
        self.outbox = outbox
        self.contexts = contexts
        self.names = names
        self.clock = clock

    @property
    def metadata(self) -> Metadata:
        return self._metadata()

    # ------------------------------------------------------------------ reading

    def context(self, interview_id: str) -> InterviewContext:
        """The interview context (cached; one API call on a miss)."""
        try:
            return self.contexts.get(interview_id)
        except InterviewNotFound:
            raise InterviewGone(
                "This interview no longer exists in the ATS; ask the recruiter.",
                reason="interview_gone",
            ) from None
        except SalesforceError as exc:
            log.warning("feedback context of %s: %s", interview_id, exc)
            raise FeedbackUnavailable(
                "The ATS cannot be reached right now; please try again in a few minutes.",
                reason="org_unavailable",
            ) from exc

    def picklist(self, resource: str, public_name: str) -> list[dict[str, str]]:
        """Active values of a picklist field, from the current describe."""
        md = self.metadata
        api_name = md.field_map(resource)[public_name]
        fd = md.describe(resource).field(api_name)
        values = (fd.raw.get("picklistValues") if fd is not None else None) or []
        return [
            {"value": v["value"], "label": v.get("label") or v["value"]}
            for v in values
            if v.get("active", True)
        ]

    def picklists(self) -> dict[str, list[dict[str, str]]]:
        return {
            "overall_rating": self.picklist(RESOURCE, "overall_rating"),
            "recommendation": self.picklist(RESOURCE, "recommendation"),
            "rating": self.picklist(TOPIC_RESOURCE, "rating"),
        }

    def limits(self) -> dict[str, int | None]:
        """Maximum lengths of the free-text fields (from describe, for the page's hints)."""
        md = self.metadata
        out: dict[str, int | None] = {}
        for key, resource, name in (
            ("comments", RESOURCE, "comments"),
            ("topic_comments", TOPIC_RESOURCE, "comments"),
        ):
            fd = md.describe(resource).field(md.field_map(resource)[name])
            length = int(fd.raw.get("length") or 0) if fd is not None else 0
            out[key] = length or None
        return out

    def submission_schema(self, context: InterviewContext) -> dict[str, Any]:
        """The JSON Schema of a submission, narrowed to this interview's topics."""
        schema = _deep_copy(self.metadata.json_schema(RESOURCE))
        defs = schema.get("$defs") or {}
        ids = [t.id for t in context.topics]
        for definition in defs.values():
            topic_id = (definition.get("properties") or {}).get("topic_id")
            if topic_id is not None and ids:
                topic_id["enum"] = ids
        topics = (schema.get("properties") or {}).get("topics")
        required = [t.id for t in context.topics if t.required]
        if topics is not None and required:
            topics["description"] = (
                (topics.get("description") or "")
                + " Topics that need a rating: "
                + ", ".join(required)
                + "."
            ).strip()
        return schema

    def form(self, grant: Grant) -> dict[str, Any]:
        """The form definition of `GET /v1/feedback/{token}`."""
        context = self.context(grant.interview_id)
        if self._in_org(context, grant):
            raise AlreadySubmitted(
                "Feedback from this interviewer is already in the ATS.", reason="already_submitted"
            )
        return {
            "interview": {
                "id": context.interview_id,
                "starts_at": context.starts_at,
                "ends_at": context.ends_at,
                "type": context.type,
            },
            "candidate": {"first_name": context.candidate_first_name},
            "job": {"title": grant.job_title},
            "interviewer": {"email": grant.email},
            "topics": [
                {
                    "id": t.id,
                    "name": t.name,
                    "description": t.description,
                    "required": t.required,
                    "order": t.order,
                }
                for t in context.topics
            ],
            "picklists": self.picklists(),
            "limits": self.limits(),
            "submission_schema": self.submission_schema(context),
            "link": {"expires_at": _iso(grant.expires_at) if grant.expires_at else None},
        }

    def submission(self, grant: Grant) -> dict[str, Any] | None:
        """The status record of this interviewer's queued/delivered feedback, or None."""
        holder = self.outbox.unique_holder(unique_name(grant.interview_id, grant.email))
        if holder is None:
            return None
        record = self.outbox.get(holder)
        if record is None or record["status"] == FAILED:
            return None
        return record

    @staticmethod
    def spent(record: Mapping[str, Any] | None) -> bool:
        return bool(record) and record.get("status") in (DELIVERED, DUPLICATE)

    # ------------------------------------------------------------------ drafts

    def _draft_key(self, grant: Grant) -> str:
        name = unique_name(grant.interview_id, grant.email)
        return DRAFT_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:32]

    def save_draft(self, grant: Grant, payload: Any) -> dict[str, Any]:
        """Keep a partial submission (checked like one, but nothing is required) until the
        link expires or the feedback is submitted. Raises InvalidFeedback, AlreadySubmitted."""
        if self.submission(grant) is not None:
            raise AlreadySubmitted(
                "Feedback was already submitted with this link.", reason="already_submitted"
            )
        if not isinstance(payload, Mapping):
            raise InvalidFeedback(
                [{"field": "(body)", "code": "invalid_type", "message": "send a JSON object"}]
            )
        schema = self.metadata.schema(RESOURCE)
        context = self.context(grant.interview_id)
        try:
            schema.load(payload, partial=True)
        except ValidationError as exc:
            errors = error_list(schema, exc.messages, resource=RESOURCE)
            raise InvalidFeedback(_name_topics(errors, payload.get("topics"), context)) from None
        # A draft needs no required topic yet, but holds only this interview's topics, once
        # each ([15]: drafts used to store any topic id they were sent).
        foreign = [
            e
            for e in self._template_errors(context, payload.get("topics"))
            if e["code"] in ("unknown_topic", "duplicate_topic")
        ]
        if foreign:
            raise InvalidFeedback(foreign)
        text = json.dumps(payload, separators=(",", ":"))
        if len(text) > DRAFT_MAX_BYTES:
            raise InvalidFeedback(
                [{"field": "(body)", "code": "too_long", "message": "the draft is too large"}]
            )
        now = self.clock()
        ttl = int(grant.expires_at - now) if grant.expires_at else DRAFT_DEFAULT_TTL
        saved_at = _iso(now)
        record = json.dumps({"saved_at": saved_at, "draft": payload}, separators=(",", ":"))
        self.outbox.redis.set(self._draft_key(grant), record, ex=max(60, ttl))
        return {"saved_at": saved_at}

    def draft(self, grant: Grant) -> dict[str, Any] | None:
        """``{"saved_at", "draft"}`` or None."""
        raw = self.outbox.redis.get(self._draft_key(grant))
        return None if raw is None else json.loads(raw)

    def discard_draft(self, grant: Grant) -> None:
        self.outbox.redis.delete(self._draft_key(grant))

    # ------------------------------------------------------------------ intake

    def validate(self, context: InterviewContext, payload: Any) -> dict[str, Any]:
        """The clean submission (public names) or InvalidFeedback naming fields and topics.

        Every problem is reported at once: the schema's and the template's (unknown topic,
        topic twice, required topic without a rating)."""
        md = self.metadata
        topics_in = payload.get("topics") if isinstance(payload, Mapping) else None
        clean: dict[str, Any] | None = None
        try:
            clean = md.validate(RESOURCE, payload)
            errors = []
        except InvalidInput as exc:
            errors = _name_topics(exc.errors, topics_in, context)
        flagged = {e["field"] for e in errors}
        errors += [
            e for e in self._template_errors(context, topics_in) if e["field"] not in flagged
        ]
        if errors:
            raise InvalidFeedback(errors)
        assert clean is not None
        for item in clean.get("topics") or []:
            topic = context.topic(item["topic_id"])
            if topic is not None:
                item["topic_id"] = topic.id  # the 18-character id
        return clean

    @staticmethod
    def _template_errors(context: InterviewContext, topics_in: Any) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        items = topics_in if isinstance(topics_in, list) else []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            topic_id = item.get("topic_id") if isinstance(item, Mapping) else None
            if not isinstance(topic_id, str):
                continue  # the schema reports it
            topic = context.topic(topic_id)
            path = f"topics[{index}].topic_id"
            if topic is None:
                errors.append(
                    {
                        "field": path,
                        "code": "unknown_topic",
                        "message": f"{topic_id} is not a topic of this interview",
                        "topic_id": topic_id,
                    }
                )
            elif topic.id in seen:
                errors.append(
                    {
                        "field": path,
                        "code": "duplicate_topic",
                        "message": f"topic {topic.name!r} is rated more than once",
                        "topic_id": topic.id,
                        "topic": topic.name,
                    }
                )
            else:
                seen[topic.id] = index
        for topic in context.topics:
            if not topic.required:
                continue
            index = seen.get(topic.id)
            rating = items[index].get("rating") if index is not None else None
            if not rating:
                errors.append(
                    {
                        "field": f"topics[{index}].rating" if index is not None else "topics",
                        "code": "required",
                        "message": f"a rating of topic {topic.name!r} is required",
                        "topic_id": topic.id,
                        "topic": topic.name,
                    }
                )
        return errors

    def submit(self, grant: Grant, payload: Any) -> Accepted:
        """Validate and queue durably (the 202); delivery is the worker's."""
        if not isinstance(payload, Mapping):
            raise InvalidFeedback(
                [{"field": "(body)", "code": "invalid_type", "message": "send a JSON object"}]
            )
        existing = self.submission(grant)
        if existing is not None:
            raise AlreadySubmitted(
                "Feedback was already submitted with this link.",
                reason="already_submitted",
                submission={"id": existing["id"], "status": existing["status"]},
            )
        context = self.context(grant.interview_id)
        if self._in_org(context, grant):
            raise AlreadySubmitted(
                "Feedback from this interviewer is already in the ATS.", reason="already_submitted"
            )
        clean = self.validate(context, payload)
        item = self._item(grant, clean)
        put = self.outbox.put(item, unique=[unique_name(grant.interview_id, grant.email)])
        if put.outcome == "duplicate":
            record = self.outbox.get(put.id) or {"status": "queued"}
            raise AlreadySubmitted(
                "Feedback was already submitted with this link.",
                reason="already_submitted",
                submission={"id": put.id, "status": record["status"]},
            )
        self.discard_draft(grant)  # the interviewer's notes live on in the org, not here
        return Accepted(put.id, "queued")

    def _in_org(self, context: InterviewContext, grant: Grant) -> bool:
        # Our own delivered feedback is in the org too: that is "already submitted" as well.
        return grant.email.lower() in context.feedback_from

    def _item(self, grant: Grant, clean: Mapping[str, Any]) -> dict[str, Any]:
        """The outbox payload: the records in API names, ready for one sObject Tree call."""
        md, n = self.metadata, self.names
        feedback = md.to_salesforce(RESOURCE, {k: v for k, v in clean.items() if k != "topics"})
        feedback[n.feedback_interview] = grant.interview_id
        feedback[n.feedback_email] = grant.email
        if grant.contact_id:
            feedback[n.feedback_interviewer] = grant.contact_id
        feedback[n.feedback_submitted] = _iso(self.clock(), millis=True)
        topics = [md.to_salesforce(TOPIC_RESOURCE, t) for t in clean.get("topics") or []]
        return {
            "interview_id": grant.interview_id,
            "email": grant.email,
            "link_id": grant.link_id,
            "feedback": feedback,
            "topics": topics,
        }


def _name_topics(
    errors: list[dict[str, Any]], topics_in: Any, context: InterviewContext
) -> list[dict[str, Any]]:
    """Add the topic (id and name) to each error on `topics[i]...` so the message names it."""
    out = []
    for error in errors:
        match = _TOPIC_PATH.match(str(error.get("field", "")))
        if match and isinstance(topics_in, list) and int(match.group(1)) < len(topics_in):
            item = topics_in[int(match.group(1))]
            topic_id = item.get("topic_id") if isinstance(item, Mapping) else None
            topic = context.topic(topic_id) if isinstance(topic_id, str) else None
            if topic is not None:
                error = {
                    **error,
                    "topic_id": topic.id,
                    "topic": topic.name,
                    "message": f"topic {topic.name!r}: {error['message']}",
                }
        out.append(error)
    return out


def _iso(epoch: float, *, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
