"""What the org does with applications the gateway delivered, from its change events.

When a recruiter (or a Flow) changes a ``bpats__Job_Board_Application__c`` that the gateway
created, its change event reaches the subscriber; this records the org's status on the
gateway's status record (``org_status``, ``org_status_at``: shown by
``GET /v1/applications/{id}``) and appends an entry to a Redis stream, the hook that status
webhooks ([17]) consume::

    XREAD STREAMS ats:events:application_status <last id>
    -> {application_id, salesforce_id, org_status, changed_at (epoch ms), change_type}

The stream is capped (``MAXLEN ~ 100000``). Changes the gateway made itself are filtered out
by the caller (the event's ``commitUser`` is the integration user).

Without the applications' change events (Change Data Capture off for the object, no
permission to its channel), :meth:`ApplicationStatusEvents.poll` reads the same changes by
delta polling: one ``queryAll`` of the applications whose ``SystemModstamp`` passed the
watermark, recorded only where the org status differs from the one last recorded.
An application is found by its org id through the index the delivery writes
(:meth:`~ats_gateway.services.delivery.Outbox.org_id_key`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ats_gateway.salesforce import soql
from ats_gateway.services.delivery import Outbox

log = logging.getLogger(__name__)

STREAM_KEY = "ats:events:application_status"
STATUS_FIELD = "bpats__Status__c"
STREAM_MAXLEN = 100_000
APPLICATION = "bpats__Job_Board_Application__c"


@dataclass
class PolledChange:
    """A row read by delta polling, shaped like a change event for :meth:`apply`."""

    change_type: str
    record_ids: tuple[str, ...]
    commit_timestamp: int  # epoch ms
    values: dict[str, Any] = field(default_factory=dict)

    def carried(self) -> dict[str, Any]:
        return self.values


class ApplicationStatusEvents:
    def __init__(
        self,
        redis_client: redis.Redis,
        outbox: Outbox,
        *,
        status_field: str = STATUS_FIELD,
        stream_key: str = STREAM_KEY,
        client: Callable[[], Any] | None = None,
    ) -> None:
        self.redis = redis_client
        self.outbox = outbox
        self.status_field = status_field
        self.stream_key = stream_key
        self.client = client
        self.recorded = 0
        self.ignored = 0

    def poll(self, watermark: dt.datetime, *, own_user: str = "") -> tuple[int, dt.datetime]:
        """Delta polling: the applications changed in the org since ``watermark`` (deleted
        rows included), recorded where their status differs from the last one recorded;
        changes by ``own_user`` (the gateway's integration user) are skipped. Returns how
        many were recorded and the next watermark."""
        if self.client is None:
            raise RuntimeError("no org client to poll with")
        fields = ["Id", self.status_field, "SystemModstamp", "LastModifiedById", "IsDeleted"]
        query = (
            soql.select(*fields)
            .from_(APPLICATION)
            .where(soql.field("SystemModstamp").gt(watermark))
        )
        newest, changes, skipped = watermark, [], 0
        for row in self.client().query_all(query):
            stamp = soql.parse_datetime(row.get("SystemModstamp"))
            if stamp is not None and stamp > newest:
                newest = stamp
            if own_user and str(row.get("LastModifiedById") or "")[:15] == own_user[:15]:
                skipped += 1
                continue
            changes.append(
                PolledChange(
                    "DELETE" if row.get("IsDeleted") else "UPDATE",
                    (str(row["Id"]),),
                    int((stamp or newest).timestamp() * 1000),
                    {self.status_field: row.get(self.status_field)},
                )
            )
        return self.apply(changes, ignored=skipped, only_changed=True), newest

    def apply(self, events: Sequence[Any], *, ignored: int = 0, only_changed: bool = False) -> int:
        """Record the org status carried by each event (duck-typed
        :class:`~ats_gateway.events.decoder.ChangeEvent`); returns how many were recorded.
        ``only_changed``: skip a status equal to the one last recorded (a polled row says the
        record changed, not that its status did)."""
        self.ignored += ignored
        recorded = 0
        for event in events:
            if event.change_type not in ("UPDATE", "DELETE", "UNDELETE"):
                continue
            carried = event.carried()
            if event.change_type == "UPDATE" and self.status_field not in carried:
                continue
            status = "deleted" if event.change_type == "DELETE" else carried.get(self.status_field)
            for org_id in event.record_ids:
                item_id = self.redis.get(self.outbox.org_id_key(org_id))
                if item_id is None:
                    continue  # not one the gateway delivered (or its status record expired)
                item_id = item_id.decode()
                key = self.outbox.item_key(item_id)
                if not self.redis.exists(key):
                    continue  # expired meanwhile: HSET would resurrect a partial record
                if only_changed:
                    last = self.redis.hget(key, "org_status")
                    if (last.decode() if last else None) == str(status or "") or (
                        last is None and event.change_type == "UPDATE" and not status
                    ):
                        continue
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(
                    key,
                    mapping={
                        "org_status": str(status or ""),
                        "org_status_at": str(event.commit_timestamp / 1000),
                    },
                )
                pipe.xadd(
                    self.stream_key,
                    {
                        "application_id": item_id,
                        "salesforce_id": org_id,
                        "org_status": str(status or ""),
                        "changed_at": str(event.commit_timestamp),
                        "change_type": event.change_type,
                    },
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
                pipe.execute()
                recorded += 1
        self.recorded += recorded
        return recorded
