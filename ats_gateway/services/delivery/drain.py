"""`drain`: one drainer per kind: lock, claim micro-batches, deliver, settle, say when next."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from ats_gateway.salesforce.budget import api_purpose, count_calls
from ats_gateway.services.delivery.model import (
    Deliverer,
    Outcome,
)
from ats_gateway.services.delivery.outbox import Outbox, _Progress

log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    """What one :func:`drain` run did, and when the next one should run (None: nothing left).

    ``pace``: the pacer's last decision (why a batch went, or why the queue waits); ``calls``:
    org calls the batches cost (counted by purpose in the API budget)."""

    ran: bool = False
    batches: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    lost_leases: int = 0
    next_run_in: float | None = None
    pace: dict[str, Any] | None = None
    calls: int = 0


class Pacer(Protocol):
    """What :func:`drain` needs of :class:`~ats_gateway.services.pacing.Pacer`."""

    def decide(self, outbox: Outbox) -> Any: ...

    def sent(self, calls: int, bound: int | None = None) -> None: ...


def drain(
    outbox: Outbox,
    deliverer: Deliverer,
    *,
    batch_size: int = 1000,
    max_batches: int = 20,
    max_seconds: float = 60.0,
    pacer: Pacer | None = None,
    purpose: str = "delivery",
) -> DrainReport:
    """Deliver due items in micro-batches while holding the single-flight drain lock.

    With a ``pacer`` each batch goes only when the pacer says so (full, the API allowance
    accrued since the last send, the latency bound; see ``services/pacing.py``); otherwise the
    queue waits and ``next_run_in`` says for how long. Org calls made by the deliverer are
    labelled ``purpose`` in the API budget.

    Returns after the queue has nothing due (or must wait), ``max_batches`` or ``max_seconds``
    (so one task never runs for ever), with ``next_run_in`` telling the caller when to schedule
    the next run. A drainer that finds the lock taken returns at once; the holder reschedules
    itself.
    """
    report = DrainReport()
    lock = outbox.drain_lock()
    if not lock.acquire():
        due = outbox.next_due()
        if due is not None:
            report.next_run_in = max(0.0, due - outbox.clock())
        return report
    report.ran = True
    started = time.monotonic()
    pace_wait: float | None = None
    try:
        while report.batches < max_batches and time.monotonic() - started < max_seconds:
            if pacer is not None:
                decision = pacer.decide(outbox)
                report.pace = decision.as_dict()
                if not decision.send:
                    pace_wait = decision.wait
                    break
            token, items = outbox.claim(batch_size)
            if not items:
                break
            report.batches += 1
            lock.reacquire()

            progress = _Progress(outbox, token, lock)
            try:
                with api_purpose(purpose), count_calls() as tally:
                    outcomes = deliverer.deliver(items, progress)
            except Exception as exc:  # a bug or an unexpected answer must not lose the batch
                log.exception("delivery of %d %s failed unexpectedly", len(items), outbox.kind)
                outcomes = [
                    Outcome.retry(code="INTERNAL_ERROR", message=type(exc).__name__) for _ in items
                ]
            if pacer is not None:
                # What this batch sent, counted at the client (see count_calls), and the most
                # its plan can cost, so an outlier never teaches the pacer a wrong price.
                calls = tally.calls
                bound = getattr(deliverer, "call_bound", None)
                report.calls += calls
                pacer.sent(calls, bound(items) if bound is not None else None)
                log.info(
                    "%s batch of %d sent (%s): %d org call(s)",
                    outbox.kind,
                    len(items),
                    (report.pace or {}).get("reason"),
                    calls,
                )
            if len(outcomes) != len(items):
                raise RuntimeError("a deliverer must return one outcome per item")
            settled = outbox.settle_many(items, token, outcomes)
            outbox.index_org_ids(items, outcomes, settled)
            for outcome, ok in zip(outcomes, settled, strict=True):
                if ok:
                    report.outcomes[outcome.kind] = report.outcomes.get(outcome.kind, 0) + 1
                else:
                    report.lost_leases += 1
            if len(items) < batch_size and pacer is None:
                # The backlog is gone; what arrived meanwhile waits for the caller's next run
                # (after the micro-batch window) instead of leaving in batches of a handful,
                # each costing as many org calls as a full one. (A pacer asks itself.)
                break
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning("the %s drain lock expired while delivering", outbox.kind)
    due = outbox.next_due()
    if due is not None:
        report.next_run_in = max(0.0, due - outbox.clock())
        if pace_wait is not None:
            report.next_run_in = max(report.next_run_in, pace_wait)
    return report
