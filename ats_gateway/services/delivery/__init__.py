"""A durable outbox in Redis: accept work now, deliver it to the org later, exactly once.

Every write the gateway accepts with a 202 (an application, interview feedback) becomes an
*item* of an :class:`Outbox` of its ``kind``. An item moves through::

    queued ──claim──▶ delivering ──▶ delivered | duplicate          (payload removed, status kept)
       ▲                  │
       └──retry/defer─────┤  (retryable failure: back to queued with backoff + jitter, no limit)
                          └──▶ failed ──▶ dead-letter queue ──replay──▶ queued
                                                          └──drop──▶ failed (payload removed)

Redis keys (``{p}`` = ``ats-gateway:outbox:<kind>:``)::

    {p}item:<id>    hash: status, created_at, updated_at, attempts, next_attempt_at, payload (JSON),
                    att:<name> (binary attachments), progress (JSON), result (JSON), error (JSON),
                    lease (token of the claim that holds it)
    {p}ready        zset id -> when it is due (queued items)
    {p}inflight     zset id -> when its lease ends (delivering items; reclaimed after that)
    {p}dlq          zset id -> when it failed
    {p}drain        the single-flight drain lock (one drainer per kind at a time)

Every state change is one Lua script, so a crash between two commands cannot lose an item. A
worker that dies mid-batch leaves its items in ``inflight``; once their lease ends the next
claim moves them back to ``queued`` and they are delivered again. Leases (and the drain lock)
are short and follow the worker: a heartbeat thread of the worker renews them every third of a
lease while it lives (``_Heartbeat``), so a dead worker's batch moves within one lease, and a
slow but live one keeps it. That is why a
:class:`Deliverer` must be idempotent against the org (applications re-run their dedupe query
before any create), and why every settle is *fenced* by the lease token: a worker that lost its
lease cannot overwrite the outcome of the worker that took over.

:func:`drain` runs one drainer: take the lock, claim micro-batches, hand them to a
:class:`Deliverer`, settle each item with its :class:`Outcome`, and say when to come back.
Nothing here knows about applications; feedback delivery reuses it with its own deliverer.
"""

from ats_gateway.services.delivery.drain import DrainReport, Pacer, drain
from ats_gateway.services.delivery.model import (
    DELIVERED,
    DELIVERING,
    DUPLICATE,
    FAILED,
    KEY_PREFIX,
    QUEUED,
    STATUSES,
    Attachments,
    Deliverer,
    Item,
    NotDurable,
    Outcome,
    ProgressRecorder,
    PutResult,
    backoff_delay,
)
from ats_gateway.services.delivery.outbox import Outbox

__all__ = [
    "DELIVERED",
    "DELIVERING",
    "DUPLICATE",
    "FAILED",
    "KEY_PREFIX",
    "QUEUED",
    "STATUSES",
    "Attachments",
    "Deliverer",
    "DrainReport",
    "Item",
    "NotDurable",
    "Outbox",
    "Outcome",
    "Pacer",
    "ProgressRecorder",
    "PutResult",
    "backoff_delay",
    "drain",
]
