"""Keeping the jobs catalogue current from changes, without reloading it.

Each batch becomes one :class:`~ats_gateway.services.jobs.delta.Delta` (whole public records
changed, ids that left) published with :meth:`JobsService.publish_delta`: appended to the log
in Redis and applied in place by every process; nothing rewrites the catalogue.

    changes = SnapshotChanges(service, redis_client)
    changes.apply([JobChange(...), ...])     one delta (a new version) per batch (ETag changes)
    changes.poll(watermark)                  delta polling: one queryAll since the watermark
    changes.reconcile(reason)                the full reload, marking what left as gone

Fields a change carries are applied in place (API names mapped to public ones through the job
contract); a change that needs fields it does not carry (a job that may have become public, a
gap event, a diff-encoded text) re-reads only those ids: one query per batch, whatever its
size. Whether a record is public is decided locally with the contract's fixed filter, the
same conditions the snapshot query sends.

A job that leaves the public set is remembered as *gone* for 30 days (a Redis key per id with
an expiry), so ``GET /v1/jobs/{id}`` answers 410 instead of 404.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ats_gateway.salesforce import soql
from ats_gateway.services.jobs.contract import FixedCondition, JobsContract
from ats_gateway.services.jobs.delta import Delta
from ats_gateway.services.jobs.errors import RefreshFailed
from ats_gateway.services.jobs.source import snapshot_query, to_public

log = logging.getLogger(__name__)

GONE_PREFIX = "ats-gateway:jobs:gone:"
GONE_SECONDS = 30 * 86400
MAX_REREAD = 500  # ids in one re-read query (the IN list stays well under the URL limit)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class JobChange:
    """One job change, as the event bus tells it (API names)."""

    change_type: str  # CREATE UPDATE DELETE UNDELETE GAP_CREATE ... GAP_OVERFLOW
    record_ids: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)  # fields the change carries
    needs_reread: bool = False  # it changed fields whose value it does not carry
    commit_timestamp: int = 0  # epoch ms


@dataclass
class ApplyReport:
    upserted: int = 0
    removed: int = 0
    reread_ids: int = 0
    query_calls: int = 0
    version: str | None = None
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GoneJobs:
    """Ids of jobs that were public and stopped being so (by 15-character id)."""

    def __init__(self, redis_client: redis.Redis, *, ttl_seconds: int = GONE_SECONDS) -> None:
        self.redis = redis_client
        self.ttl = ttl_seconds

    def add(self, ids: Iterable[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for ident in ids:
            pipe.set(GONE_PREFIX + ident[:15], b"1", ex=self.ttl)
        pipe.execute()

    def discard(self, ids: Iterable[str]) -> None:
        keys = [GONE_PREFIX + i[:15] for i in ids]
        if keys:
            self.redis.delete(*keys)

    def record(self, gone: Iterable[str], present: Iterable[str]) -> None:
        """After a full reload: what left is gone, what is listed is not (reopened)."""
        self.add(gone)
        self.discard(present)

    def __contains__(self, ident: str) -> bool:
        return len(ident) in (15, 18) and bool(self.redis.exists(GONE_PREFIX + ident[:15]))


# ----------------------------------------------------------------------- values and filter


def _as_date(value: Any) -> dt.date | None:
    """A Date as REST sends it ("2026-01-31") or as the event bus does (an epoch number: days
    since 1970 or milliseconds)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        days = value if abs(value) < 10_000_000 else value // _DAY_MS
        return dt.date(1970, 1, 1) + dt.timedelta(days=int(days))
    return dt.date.fromisoformat(str(value)[:10])


def rest_value(kind: str, value: Any) -> Any:
    """An event value as the REST API (and so the snapshot) has it."""
    if value is None:
        return None
    if kind == "date":
        day = _as_date(value)
        return day.isoformat() if day else None
    if kind == "datetime" and isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    if isinstance(value, dict):  # an Avro enum symbol, leniently
        return next(iter(value.values()), None)
    return value


def _holds(cond: FixedCondition, value: Any, today: dt.date) -> bool:
    """Whether one fixed-filter condition holds for ``value`` (SOQL semantics, locally)."""
    if value is None or value == "":
        return cond.or_null or (cond.op == "!=" and cond.value is not None)
    if cond.date_literal:
        if cond.date_literal.upper() != "TODAY":
            raise ValueError(f"unsupported date literal {cond.date_literal}")
        left, right = _as_date(value), today
    elif isinstance(cond.value, bool):
        left, right = bool(value), cond.value
    elif isinstance(cond.value, (int, float)):
        left, right = float(value), float(cond.value)
    elif isinstance(cond.value, str) and isinstance(value, str):
        left, right = value.casefold(), cond.value.casefold()  # SOQL compares text ignoring case
    else:
        left, right = value, cond.value
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return ops[cond.op](left, right)


def _lower(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in values.items() if k != "attributes"}


def is_public(contract: JobsContract, values: Mapping[str, Any], today: dt.date) -> bool | None:
    """True/False when ``values`` (API names) decide the fixed filter; None when a condition's
    field is missing from them."""
    lowered = _lower(values)
    for cond in contract.fixed_filter:
        key = cond.field.lower()
        if key not in lowered:
            return None
        if not _holds(cond, lowered[key], today):
            return False
    return True


def fails_filter(contract: JobsContract, values: Mapping[str, Any], today: dt.date) -> bool:
    """Whether any fixed-filter field among ``values`` rules the record out."""
    lowered = _lower(values)
    return any(
        cond.field.lower() in lowered and not _holds(cond, lowered[cond.field.lower()], today)
        for cond in contract.fixed_filter
    )


def public_values(contract: JobsContract, values: Mapping[str, Any]) -> dict[str, Any]:
    """The public fields among ``values`` (API names -> public names; REST value shapes)."""
    lowered = _lower(values)
    out: dict[str, Any] = {}
    for f in contract.fields:
        key = f.api_name.lower()
        if key in lowered:
            value = rest_value(f.kind, lowered[key])
            if f.kind == "number" and value is not None:
                value = float(value)
                value = int(value) if value.is_integer() else value
            out[f.name] = value
    return out


# ----------------------------------------------------------------------- applying


class SnapshotChanges:
    """Applies changes to the current snapshot of a :class:`JobsService` (under its lock)."""

    def __init__(
        self,
        service: Any,  # a JobsService
        redis_client: redis.Redis,
        *,
        gone: GoneJobs | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.store = service.store
        self.redis = redis_client
        self.gone = gone or GoneJobs(redis_client)
        self.clock = clock

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()

    def _client(self) -> Any:
        return self.service.source()

    def _describe(self) -> Any:
        return self.service.describe() if self.service.describe else None

    def reread(self, contract: JobsContract, ids: Sequence[str]) -> tuple[list[dict], int]:
        """The public ones among ``ids`` (public names), in one query; and the calls it took."""
        client = self._client()
        before = getattr(client, "api_calls", 0)
        query = snapshot_query(contract, self._describe())
        query = query.where(soql.field("Id").in_(list(ids)))
        rows = [to_public(r, contract) for r in client.query(query)]
        return rows, getattr(client, "api_calls", 0) - before

    def apply(self, changes: Sequence[JobChange]) -> ApplyReport:
        """Apply one batch of changes; one new snapshot version if anything changed.

        Raises :class:`RefreshFailed` when the re-read query fails (the caller keeps the batch
        unacknowledged, i.e. does not store its replay id, and retries).
        """
        report = ApplyReport()
        if not changes:
            return report
        lock = self.store.lock(self.service.lock_timeout)
        lock.acquire(blocking=True, blocking_timeout=self.service.lock_timeout)
        try:
            index = self.service.current_index()  # this process's copy, caught up
            if index is None:
                raise RefreshFailed("no snapshot to apply changes to")
            contract = self.service.contract()
            id_field = contract.id_field
            #: 15-char id -> the record as this batch leaves it (None: not public)
            pending: dict[str, dict[str, Any] | None] = {}
            today = self._today()
            reread: dict[str, str] = {}
            left: set[str] = set()  # ids that were public and are not any more
            came: set[str] = set()

            def current(ident: str) -> dict[str, Any] | None:
                key = ident[:15]
                return pending[key] if key in pending else index.get(key)

            def remove(ident: str) -> None:
                if current(ident) is not None:
                    pending[ident[:15]] = None
                    left.add(ident)
                    came.discard(ident)  # came and left in one batch: it is gone
                    report.removed += 1

            def upsert(record: dict[str, Any]) -> None:
                ident = str(record[id_field])
                if current(ident) == record:
                    return  # a change applied twice (replay, polling overlap): no new version
                pending[ident[:15]] = record
                came.add(ident)
                left.discard(ident)
                report.upserted += 1

            for change in changes:
                kind = change.change_type
                for rid in change.record_ids:
                    if "*" in rid:
                        continue  # wildcard ids (field conversions): the reconciliation's job
                    if kind in ("DELETE", "GAP_DELETE"):
                        remove(rid)
                        reread.pop(rid[:15], None)
                    elif kind in ("CREATE", "UNDELETE") and not change.needs_reread:
                        public = is_public(contract, change.values, today)
                        if public is None:
                            reread[rid[:15]] = rid
                        elif public:
                            upsert({**public_values(contract, change.values), id_field: rid})
                        else:
                            remove(rid)
                    elif kind == "UPDATE":
                        found = current(rid)
                        if fails_filter(contract, change.values, today):
                            remove(rid)
                            reread.pop(rid[:15], None)
                        elif found is None:
                            # Not public before: public now only if a filter field changed,
                            # and then the event does not carry the rest of the record.
                            lowered = _lower(change.values)
                            if change.needs_reread or any(
                                c.field.lower() in lowered for c in contract.fixed_filter
                            ):
                                reread[rid[:15]] = rid
                            else:
                                report.skipped += 1
                        else:
                            upsert({**found, **public_values(contract, change.values)})
                            if change.needs_reread:
                                reread[rid[:15]] = rid
                    else:  # GAP_CREATE / GAP_UPDATE / GAP_UNDELETE, or CREATE lacking fields
                        reread[rid[:15]] = rid
            if reread:
                ids = list(reread.values())
                if len(ids) > MAX_REREAD:
                    raise RefreshFailed(f"{len(ids)} ids to re-read: reconcile instead")
                rows, calls = self.reread(contract, ids)
                report.reread_ids, report.query_calls = len(ids), calls
                found_ids = {str(r[id_field])[:15] for r in rows}
                for row in rows:
                    upsert(row)
                for key, rid in reread.items():
                    if key not in found_ids:
                        remove(rid)
            if not (report.upserted or report.removed):
                return report
            # What the batch did, against the version it started from: one delta.
            delta = Delta(
                upserts=tuple(r for r in pending.values() if r is not None),
                removals=tuple(
                    str(index.get(key)[id_field])  # type: ignore[index]
                    for key, r in pending.items()
                    if r is None and index.get(key) is not None
                ),
            )
            new = self.service.publish_delta(
                delta, snapshot_at=self.clock(), duration_ms=0, api_calls=report.query_calls
            )
            report.version = new.version
            self.gone.add(left - came)
            self.gone.discard(came)
            return report
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    def poll(self, watermark: dt.datetime) -> tuple[ApplyReport, dt.datetime]:
        """Delta polling: one ``queryAll`` of the jobs changed since ``watermark`` (deleted rows
        included), applied like events; returns the report and the next watermark."""
        contract = self.service.contract()
        client = self._client()
        before = getattr(client, "api_calls", 0)
        fields = [*contract.api_fields()]
        fields += [c.field for c in contract.fixed_filter if c.field not in fields]
        fields += [f for f in ("SystemModstamp", "IsDeleted") if f not in fields]
        describes = {contract.sobject: self._describe()} if self._describe() else None
        query = (
            soql.select(*fields)
            .from_(contract.sobject, describes=describes)
            .where(soql.field("SystemModstamp").gt(watermark))
        )
        rows = list(client.query_all(query))
        calls = getattr(client, "api_calls", 0) - before
        changes = []
        newest = watermark
        for row in rows:
            stamp = soql.parse_datetime(row.get("SystemModstamp"))
            if stamp is not None and stamp > newest:
                newest = stamp
            values = {k: v for k, v in row.items() if k not in ("attributes",)}
            kind = "DELETE" if row.get("IsDeleted") else "CREATE"
            changes.append(JobChange(kind, (str(row["Id"]),), values))
        report = self.apply(changes) if changes else ApplyReport()
        report.query_calls += calls
        return report, newest

    def prune_expired(self) -> ApplyReport:
        """Drop jobs whose date condition stopped holding with the passing of time (an end
        date that is now past): no event tells of it, and no org call is needed to see it."""
        contract = self.service.contract()
        dated = [c for c in contract.fixed_filter if c.date_literal]
        by_api = {f.api_name.lower(): f.name for f in contract.fields}
        if not dated or any(c.field.lower() not in by_api for c in dated):
            return ApplyReport()
        index = self.service.current_index()
        if index is None:
            return ApplyReport()
        today = self._today()
        expired = [
            str(r[contract.id_field])
            for r in index.records()
            if any(not _holds(c, r.get(by_api[c.field.lower()]), today) for c in dated)
        ]
        if not expired:
            return ApplyReport()
        return self.apply([JobChange("DELETE", tuple(expired))])

    def reconcile(self) -> Any:
        """The full reload (safety net); jobs that left the public set meanwhile become gone
        (the service reports them to :meth:`GoneJobs.record` on every full reload)."""
        return self.service.refresh(blocking=True)


__all__ = [
    "ApplyReport",
    "GoneJobs",
    "JobChange",
    "SnapshotChanges",
    "is_public",
    "public_values",
    "rest_value",
]
