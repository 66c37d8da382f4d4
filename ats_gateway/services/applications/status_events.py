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
An application is found by its org id through the index the delivery writes
(:meth:`~ats_gateway.services.delivery.Outbox.org_id_key`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis

from ats_gateway.services.delivery import Outbox

log = logging.getLogger(__name__)

STREAM_KEY = "ats:events:application_status"
STATUS_FIELD = "bpats__Status__c"
STREAM_MAXLEN = 100_000


class ApplicationStatusEvents:
    def __init__(
        self,
        redis_client: redis.Redis,
        outbox: Outbox,
        *,
        status_field: str = STATUS_FIELD,
        stream_key: str = STREAM_KEY,
    ) -> None:
        self.redis = redis_client
        self.outbox = outbox
        self.status_field = status_field
        self.stream_key = stream_key
        self.recorded = 0
        self.ignored = 0

    def apply(self, events: Sequence[Any], *, ignored: int = 0) -> int:
        """Record the org status carried by each event (duck-typed
        :class:`~ats_gateway.events.decoder.ChangeEvent`); returns how many were recorded."""
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
