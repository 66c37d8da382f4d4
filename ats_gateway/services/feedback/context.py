"""What an interviewer's form shows: the interview, the candidate's first name, the template's
topics in order, and who already gave feedback, read in ONE API call and cached per interview.

One ``/composite`` of three queries (``SalesforceClient.query_many``) under the
``interview_feedback`` connection reads:

1. the interview (date, type, status, template) with the candidate's ``FirstName`` through the
   Contact lookup - nothing else of the candidate is selected;
2. the template details of the interview's template (a semi-join on the interview, so the
   template id need not be known first) with each topic's name and description, by order;
3. the feedback already in the org for the interview (only the interviewer emails), so a
   second feedback from the same interviewer is refused before it is queued.

At link issuing a fourth query resolves the interviewer's Contact by email. The result is kept
in Redis for ``ttl`` seconds; delivering a feedback forgets the interview's entry.

The connection's permission set cannot read jobs, so the job title is never read here: the
link carries it when the issuer gave one (see :mod:`ats_gateway.services.feedback.service`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from ats_gateway.salesforce import SalesforceClient
from ats_gateway.salesforce.soql import Condition, Query, select
from ats_gateway.salesforce.soql import field as f

log = logging.getLogger(__name__)

KEY_PREFIX = "ats-gateway:feedback:context:"


@dataclass(frozen=True)
class OrgNames:
    """The API names this flow reads and writes (DATA_MODEL.md); one place to adapt an org."""

    interview: str = "bpats__Interview__c"
    interview_start: str = "bpats__Start_Date_Time__c"
    interview_end: str = "bpats__End_Date_Time__c"
    interview_type: str = "bpats__Type__c"
    interview_status: str = "bpats__Status__c"
    interview_template: str = "bpats__Interview_Template__c"
    interview_job: str = "bpats__Job__c"
    candidate_first_name: str = "bpats__Contact__r.FirstName"
    template_name: str = "bpats__Interview_Template__r.Name"
    detail: str = "bpats__Interview_Template_Detail__c"
    detail_template: str = "bpats__Interview_Template__c"
    detail_topic: str = "bpats__Interview_Topic__c"
    detail_order: str = "bpats__Order__c"
    detail_required: str = "bpats__Required__c"
    topic_name: str = "bpats__Interview_Topic__r.Name"
    topic_description: str = "bpats__Interview_Topic__r.bpats__Description__c"
    feedback: str = "bpats__Interview_Feedback__c"
    feedback_interview: str = "bpats__Interview__c"
    feedback_interviewer: str = "bpats__Interviewer__c"
    feedback_email: str = "bpats__Interviewer_Email__c"
    feedback_submitted: str = "bpats__Submitted_Date__c"
    topic_feedback: str = "bpats__Interview_Topic_Feedback__c"
    topic_feedback_parent: str = "bpats__Interview_Feedback__c"
    contact: str = "Contact"
    contact_email: str = "Email"


NAMES = OrgNames()
#: Objects whose describes the client needs to check relationship paths and the semi-join.
DESCRIBED = (
    NAMES.interview,
    NAMES.detail,
    "bpats__Interview_Topic__c",
    "bpats__Interview_Template__c",
    NAMES.feedback,
    NAMES.topic_feedback,
    NAMES.contact,
)


class InterviewNotFound(LookupError):
    """No interview with that id is visible to the feedback connection."""


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    description: str | None
    required: bool
    order: float | None


@dataclass(frozen=True)
class InterviewContext:
    interview_id: str
    starts_at: str | None
    ends_at: str | None
    type: str | None
    status: str | None
    candidate_first_name: str | None
    job_id: str | None
    template_name: str | None
    topics: tuple[Topic, ...]
    feedback_from: frozenset[str] = field(default_factory=frozenset)  # interviewer emails
    fetched_at: float = 0.0

    def topic(self, topic_id: str) -> Topic | None:
        for topic in self.topics:
            if topic.id == topic_id or (topic.id[:15] == topic_id[:15] and len(topic_id) == 15):
                return topic
        return None

    def to_json(self) -> str:
        data = asdict(self)
        data["feedback_from"] = sorted(self.feedback_from)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> InterviewContext:
        data = json.loads(text)
        data["topics"] = tuple(Topic(**t) for t in data["topics"])
        data["feedback_from"] = frozenset(data.get("feedback_from") or ())
        return cls(**data)


class _InSelect(Condition):
    """``field IN (SELECT ...)``: a semi-join on a built (and checked) query."""

    def __init__(self, name: str, query: Query) -> None:
        self.name = name
        self.query = query

    def render(self) -> str:
        return f"{self.name} IN ({self.query.render()})"

    def fields(self) -> list[str]:
        return [self.name]


def context_queries(
    interview_id: str, *, interviewer_email: str | None = None, names: OrgNames = NAMES
) -> list[Query]:
    """The queries of one context read (ids and emails only ever as SOQL literals)."""
    n = names
    interview = (
        select(
            "Id",
            n.interview_start,
            n.interview_end,
            n.interview_type,
            n.interview_status,
            n.interview_template,
            n.interview_job,
            n.candidate_first_name,
            n.template_name,
        )
        .from_(n.interview)
        .where(f("Id").eq(interview_id))
        .limit(1)
    )
    template_of = select(n.interview_template).from_(n.interview).where(f("Id").eq(interview_id))
    details = (
        select(
            "Id",
            n.detail_topic,
            n.detail_order,
            n.detail_required,
            n.topic_name,
            n.topic_description,
        )
        .from_(n.detail)
        .where(_InSelect(n.detail_template, template_of))
        .order_by(n.detail_order, nulls="last")
        .order_by("Id")
        .limit(200)
    )
    existing = (
        select("Id", n.feedback_email)
        .from_(n.feedback)
        .where(f(n.feedback_interview).eq(interview_id))
        .limit(2000)
    )
    queries = [interview, details, existing]
    if interviewer_email is not None:
        queries.append(
            select("Id")
            .from_(n.contact)
            .where(f(n.contact_email).eq(interviewer_email))
            .order_by("CreatedDate")
            .limit(1)
        )
    return queries


def _path(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ContextReader:
    """Reads (and caches) :class:`InterviewContext` through the feedback connection."""

    def __init__(
        self,
        client: Callable[[], SalesforceClient],
        redis_client: redis.Redis,
        *,
        ttl: int = 60,
        names: OrgNames = NAMES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.redis = redis_client
        self.ttl = max(0, int(ttl))
        self.names = names
        self.clock = clock

    @staticmethod
    def key(interview_id: str) -> str:
        return KEY_PREFIX + interview_id

    def get(self, interview_id: str) -> InterviewContext:
        """The cached context, or one API call to read it. Raises InterviewNotFound."""
        cached = self.redis.get(self.key(interview_id))
        if cached is not None:
            try:
                return InterviewContext.from_json(cached)
            except (ValueError, TypeError, KeyError):
                log.warning("discarding an unreadable feedback context for %s", interview_id)
        context, _ = self.load(interview_id)
        return context

    def load(
        self, interview_id: str, *, interviewer_email: str | None = None
    ) -> tuple[InterviewContext, str | None]:
        """Read the context from the org (one API call) and cache it; with an email, also the
        interviewer's Contact id (None when no Contact has that email)."""
        queries = context_queries(interview_id, interviewer_email=interviewer_email)
        results = self._client().query_many(queries)
        context = self._build(interview_id, results)
        if self.ttl:
            self.redis.set(self.key(interview_id), context.to_json(), ex=self.ttl)
        contact_id = None
        if interviewer_email is not None and results[3]:
            contact_id = results[3][0].get("Id")
        return context, contact_id

    def forget(self, interview_id: str) -> None:
        self.redis.delete(self.key(interview_id))

    def _build(
        self, interview_id: str, results: Sequence[list[dict[str, Any]]]
    ) -> InterviewContext:
        n = self.names
        if not results[0]:
            raise InterviewNotFound(interview_id)
        row = results[0][0]
        topics = []
        seen: set[str] = set()
        for detail in results[1]:
            topic_id = detail.get(n.detail_topic)
            if not topic_id or topic_id in seen:
                continue
            seen.add(topic_id)
            topics.append(
                Topic(
                    id=topic_id,
                    name=_path(detail, n.topic_name) or topic_id,
                    description=_path(detail, n.topic_description),
                    required=bool(detail.get(n.detail_required)),
                    order=detail.get(n.detail_order),
                )
            )
        emails = frozenset(
            str(r.get(n.feedback_email)).strip().lower()
            for r in results[2]
            if r.get(n.feedback_email)
        )
        return InterviewContext(
            interview_id=row.get("Id") or interview_id,
            starts_at=row.get(n.interview_start),
            ends_at=row.get(n.interview_end),
            type=row.get(n.interview_type),
            status=row.get(n.interview_status),
            candidate_first_name=_path(row, n.candidate_first_name),
            job_id=row.get(n.interview_job),
            template_name=_path(row, n.template_name),
            topics=tuple(topics),
            feedback_from=emails,
            fetched_at=self.clock(),
        )
