"""A delta: what one change to the public catalogue is, the unit every process applies in place.

Every path that changes the catalogue (change events, delta polling, expiry pruning, the
reconciliation's diff) ends in :meth:`JobsService.publish_delta
<ats_gateway.services.jobs.service.JobsService.publish_delta>` with one of these, so that is
the one place where "these ids opened / changed / closed" is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Delta:
    """Whole public records added or changed, and ids that left, against the version before.

    ``opened`` / ``changed`` / ``closed`` (ids) are filled by ``publish_delta`` from the index
    it applies to: a job that was not public and is now, one that stays public with other
    values, one that was public and is not any more.
    """

    upserts: tuple[Mapping[str, Any], ...] = ()
    removals: tuple[str, ...] = ()
    opened: tuple[str, ...] = field(default=(), compare=False)
    changed: tuple[str, ...] = field(default=(), compare=False)
    closed: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removals)


def diff(current: Any, records: list[dict[str, Any]], id_field: str) -> Delta:
    """The delta that turns index ``current`` into exactly ``records`` (the reconciliation)."""
    present: set[str] = set()
    upserts = []
    with current.lock:
        for record in records:
            ident = str(record[id_field])
            present.add(ident[:15])
            if current.get(ident) != record:
                upserts.append(record)
        removals = tuple(ident for ident in current.ids if ident[:15] not in present)
    return Delta(tuple(upserts), removals)
