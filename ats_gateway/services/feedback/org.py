"""Delivering queued feedback to the org: one sObject Tree call per feedback.

The tree is ``bpats__Interview_Feedback__c`` with its ``bpats__Interview_Topic_Feedback__c``
children under the child relationship named by the describe; Salesforce creates it in one
transaction (all or nothing), so a feedback never lands without its topic ratings.

Exactly once: before the first call for an item, the deliverer records ``sent`` in the item's
progress. An item claimed again with ``sent`` (its worker died, or the answer was lost) is
first looked up in the org by interview and interviewer email (one query); if the feedback is
there it is settled ``duplicate`` with its id instead of being created twice. The happy path
costs exactly one API call.

Outcomes follow :mod:`ats_gateway.services.delivery`: retryable errors (org unavailable, row
lock, session) retry with backoff; a refusal (validation rule, restricted picklist, missing
permission) fails the item onto the dead-letter queue with the org's reason; when the API
budget's reserve is reached the batch is deferred (not an attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ats_gateway.salesforce import (
    PermissionDenied,
    SalesforceClient,
    SalesforceError,
)
from ats_gateway.salesforce.soql import field as f
from ats_gateway.salesforce.soql import select
from ats_gateway.services.delivery import Item, Outcome, ProgressRecorder
from ats_gateway.services.feedback.context import NAMES, OrgNames

log = logging.getLogger(__name__)

BUDGET_DEFER_SECONDS = 60.0


def child_relationship(describe: Mapping[str, Any], child: str, field_name: str) -> str:
    """The relationship name under which `child` records (by `field_name`) nest in a tree."""
    for rel in describe.get("childRelationships") or ():
        if rel.get("childSObject") == child and rel.get("field") == field_name:
            name = rel.get("relationshipName")
            if name:
                return str(name)
    raise LookupError(f"no child relationship {child}.{field_name} in the describe")


class FeedbackDeliverer:
    """A :class:`~ats_gateway.services.delivery.Deliverer` for the ``feedback`` outbox."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        relationship: str | Callable[[], str],
        names: OrgNames = NAMES,
        on_delivered: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self._relationship = relationship
        self.names = names
        self.on_delivered = on_delivered

    @property
    def relationship(self) -> str:
        """The child relationship of the tree (a callable is asked each time: it follows the
        live describe, so the deliverer can be built before any describe is read)."""
        value = self._relationship
        return value() if callable(value) else value

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes = []
        for item in items:
            if not self.client.may_spend(2):
                outcomes.append(Outcome.defer(BUDGET_DEFER_SECONDS, code="API_BUDGET_RESERVE"))
                continue
            outcome = self._deliver_one(item, progress)
            if outcome.kind in ("delivered", "duplicate") and self.on_delivered:
                try:
                    self.on_delivered(str(item.payload.get("interview_id") or ""))
                except Exception:  # a stale cache entry expires by itself
                    log.warning("could not forget the feedback context", exc_info=True)
            outcomes.append(outcome)
        return outcomes

    def tree_record(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        n = self.names
        record: dict[str, Any] = {
            "attributes": {"type": n.feedback, "referenceId": "feedback"},
            **payload["feedback"],
        }
        children = [
            {"attributes": {"type": n.topic_feedback, "referenceId": f"topic{i}"}, **topic}
            for i, topic in enumerate(payload.get("topics") or ())
        ]
        if children:
            record[self.relationship] = {"records": children}
        return record

    def _existing(self, payload: Mapping[str, Any]) -> str | None:
        n = self.names
        query = (
            select("Id")
            .from_(n.feedback)
            .where(
                f(n.feedback_interview).eq(payload["interview_id"]),
                f(n.feedback_email).eq(payload["email"]),
            )
            .limit(1)
        )
        rows = self.client.query_many([query])[0]
        return rows[0]["Id"] if rows else None

    def _deliver_one(self, item: Item, progress: ProgressRecorder) -> Outcome:
        payload = item.payload
        try:
            if item.progress.get("sent"):
                found = self._existing(payload)
                if found:
                    return Outcome.duplicate(feedback_id=found, reason="already in the org")
            if not progress(item, sent=True):
                return Outcome.retry(code="LEASE_LOST", message="the claim's lease ended")
            outcome = self.client.tree(self.names.feedback, [self.tree_record(payload)])[0]
        except SalesforceError as exc:
            return self._failure(exc)
        if outcome.success:
            topic_ids = [
                outcome.related[k] for k in sorted(outcome.related) if k in outcome.related
            ]
            return Outcome.delivered(
                feedback_id=outcome.id,
                topic_feedback_ids=topic_ids,
                interview_id=payload.get("interview_id"),
            )
        assert outcome.error is not None
        return self._failure(outcome.error)

    @staticmethod
    def _failure(exc: SalesforceError) -> Outcome:
        details = {
            "code": exc.error_code or type(exc).__name__,
            "message": exc.message if hasattr(exc, "message") else str(exc),
        }
        fields = getattr(exc, "fields", None)
        if fields:
            details["fields"] = list(fields)
        if exc.retryable and not isinstance(exc, PermissionDenied):
            return Outcome.retry(**details)
        return Outcome.failed(reason=details["message"], **details)
