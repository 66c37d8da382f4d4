"""Events about applications and jobs, fanned out to the endpoints that want them.

Each event becomes one item in each subscribing endpoint's own queue (an
:class:`~ats_gateway.services.delivery.Outbox` of kind ``webhooks:<endpoint id>``), so a slow
or dead receiver holds back nobody but itself, and every delivery gets the outbox's
guarantees: stored before it is sent, leases, retries with backoff, a dead-letter queue.

An event's id (the ``webhook-id`` receivers de-duplicate on) is derived from what happened
(application, type, and the change's own id), so publishing the same fact twice (a drain
that re-ran after a crash, a stream entry read again) enqueues it once per endpoint.

Where events come from:

* :class:`NotifyingDeliverer` wraps the applications deliverer: the outcomes
  ``delivered``, ``duplicate`` and ``failed`` of each batch become ``application.*`` events.
  They are published before the drain settles them, so a crash cannot lose one; the sender
  waits until the application's status record shows the same outcome (and drops the event if
  a re-run settled differently), so a receiver that reads ``GET /v1/applications/{id}`` on
  receipt sees what the event says.
* :meth:`EventPublisher.on_application_status_changed`: the org changed the application
  (fed from the change-event stream, see ``tasks/webhooks.py``).
* :meth:`EventPublisher.on_job_closed`: a job left the public set, whichever path saw it
  (fed from the job lifecycle stream, see ``tasks/job_events.py``).

Payload (Standard Webhooks shape)::

    {"type": "application.delivered", "timestamp": "2026-...Z",
     "data": {"application_id", "external_id"?, "status", "occurred_at", ...}}

Never the candidate's data: only ids, the submitter's own reference, statuses and times (and
for ``application.failed`` the field errors, which name fields, not values).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from ats_gateway.services.delivery import (
    DELIVERED,
    DUPLICATE,
    FAILED,
    Deliverer,
    Item,
    Outbox,
    Outcome,
    ProgressRecorder,
)
from ats_gateway.services.webhooks.registry import EndpointRegistry

log = logging.getLogger(__name__)

QUEUE_KIND = "webhooks:"
OUTCOME_EVENTS = {
    DELIVERED: "application.delivered",
    DUPLICATE: "application.duplicate",
    FAILED: "application.failed",
}

#: builds the queue of one endpoint (``webhooks:<endpoint id>``)
QueueFactory = Callable[[str], Outbox]


def queue_kind(endpoint_id: str) -> str:
    return QUEUE_KIND + endpoint_id


def event_id(*parts: str) -> str:
    """A stable message id: the same fact always gets the same ``webhook-id``."""
    return "msg_" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventPublisher:
    """Turns facts into queued deliveries, one per subscribing endpoint."""

    def __init__(
        self,
        registry: EndpointRegistry,
        queue: QueueFactory,
        applications: Outbox,
        *,
        on_enqueued: Callable[[Sequence[str]], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.applications = applications
        self.on_enqueued = on_enqueued
        self.clock = clock

    @property
    def redis(self) -> redis.Redis:
        return self.registry.redis

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        owner: str,
        event_type: str,
        data: dict[str, Any],
        message_id: str,
        *,
        expect_status: str | None = None,
    ) -> list[str]:
        """Queue one event for each of ``owner``'s endpoints that want it; returns their ids.

        ``expect_status``: send only once the application's status record says so (see the
        module docstring)."""
        return self.publish_many([(owner, event_type, data, message_id, expect_status)])

    def publish_many(
        self, events: Iterable[tuple[str, str, dict[str, Any], str, str | None]]
    ) -> list[str]:
        touched: list[str] = []
        subscribers: dict[tuple[str, str], list[Any]] = {}
        now = self.clock()
        for owner, event_type, data, message_id, expect_status in events:
            key = (owner, event_type)
            if key not in subscribers:
                subscribers[key] = (
                    self.registry.subscribers_any_owner(event_type)
                    if owner == "*"
                    else self.registry.subscribers(owner, event_type)
                )
            if not subscribers[key]:
                continue
            body = json.dumps(
                {"type": event_type, "timestamp": iso(now), "data": data}, separators=(",", ":")
            )
            payload: dict[str, Any] = {"type": event_type, "body": body}
            if expect_status:
                payload["application_id"] = data["application_id"]
                payload["expect_status"] = expect_status
            for endpoint in subscribers[key]:
                result = self.queue(endpoint.id).put(
                    payload, item_id=message_id, unique=[message_id], wait=False
                )
                if result.accepted and endpoint.id not in touched:
                    touched.append(endpoint.id)
        if touched and self.on_enqueued is not None:
            self.on_enqueued(touched)
        return touched

    # ------------------------------------------------------------------ sources

    def application_outcomes(self, items: Sequence[Item], outcomes: Sequence[Outcome]) -> int:
        """``application.delivered|duplicate|failed`` for a settled batch; returns how many
        events (before fan-out) had an owner with endpoints to go to."""
        final = [(i, o) for i, o in zip(items, outcomes, strict=True) if o.kind in OUTCOME_EVENTS]
        if not final:
            return 0
        owners = self._owners([i.id for i, _ in final])
        events = []
        now = self.clock()
        for item, outcome in final:
            owner, external_id = owners[item.id]
            if not owner:
                continue
            data: dict[str, Any] = {
                "application_id": item.id,
                "status": outcome.kind,
                "occurred_at": iso(now),
            }
            if external_id:
                data["external_id"] = external_id
            if outcome.kind in (DELIVERED, DUPLICATE) and outcome.body.get("salesforce_id"):
                data["salesforce_id"] = outcome.body["salesforce_id"]
            if outcome.kind == FAILED:
                data["code"] = outcome.body.get("code", "")
                data["errors"] = [
                    {k: e.get(k) for k in ("field", "code", "message") if k in e}
                    for e in outcome.body.get("errors", [])
                    if isinstance(e, dict)
                ]
            type_ = OUTCOME_EVENTS[outcome.kind]
            replays = owners.get(item.id + ":replays", ("", ""))[0] or "0"
            message_id = event_id(item.id, type_, replays)
            events.append((owner, type_, data, message_id, outcome.kind))
        if events:
            self.publish_many(events)
        return len(events)

    def on_application_status_changed(
        self, application_id: str, status: str, changed_at: float, *, change_id: str = ""
    ) -> list[str]:
        """The org moved an application on (``changed_at``: epoch seconds): tell the key that
        submitted it. The gateway's own writes must be filtered out by the caller."""
        owners = self._owners([application_id])
        owner, external_id = owners[application_id]
        if not owner:
            return []
        data: dict[str, Any] = {
            "application_id": application_id,
            "status": status,
            "occurred_at": iso(changed_at),
        }
        if external_id:
            data["external_id"] = external_id
        message_id = event_id(application_id, "status", change_id or f"{status}|{changed_at}")
        return self.publish(owner, "application.status_changed", data, message_id)

    def on_job_closed(self, job_id: str, closed_at: float, *, change_id: str = "") -> list[str]:
        """A job left the public set: every endpoint that asked for ``job.closed`` hears it
        (jobs are public, so no ownership applies). ``change_id``: the lifecycle stream
        entry's id ([22], ``tasks/job_events.py``), so a re-read entry keeps its webhook-id."""
        data = {"job_id": job_id, "status": "closed", "occurred_at": iso(closed_at)}
        message_id = event_id(job_id, "job.closed", change_id or str(closed_at))
        return self.publish("*", "job.closed", data, message_id)

    def _owners(self, application_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for application_id in application_ids:
            pipe.hmget(
                self.applications.item_key(application_id), "owner", "external_id", "replays"
            )
        found: dict[str, tuple[str, str]] = {}
        for application_id, (owner, external_id, replays) in zip(
            application_ids, pipe.execute(), strict=True
        ):
            owner_text = owner.decode() if owner else ""
            found[application_id] = (
                owner_text if owner_text.startswith("key:") else "",
                external_id.decode() if external_id else "",
            )
            found[application_id + ":replays"] = (replays.decode() if replays else "0", "")
        return found


class NotifyingDeliverer:
    """An applications :class:`Deliverer` that also publishes each batch's final outcomes.

    Publishing never holds applications back: a failure to publish is logged, and the
    batch's outcomes are returned unchanged."""

    def __init__(self, inner: Deliverer, publisher: EventPublisher) -> None:
        self.inner = inner
        self.publisher = publisher

    def call_bound(self, items: Sequence[Item]) -> int | None:
        bound = getattr(self.inner, "call_bound", None)
        return None if bound is None else bound(items)

    def deliver(self, items: Sequence[Item], progress: ProgressRecorder) -> list[Outcome]:
        outcomes = self.inner.deliver(items, progress)
        if len(outcomes) == len(items):
            try:
                self.publisher.application_outcomes(items, outcomes)
            except Exception:
                log.exception("could not publish webhook events for %d applications", len(items))
        return outcomes
