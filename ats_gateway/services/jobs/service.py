"""The jobs service: snapshot refresh (single-flight), listing, one job, facets, status.

A request costs one Redis GET (the ``current`` pointer) plus in-process work on the decoded
snapshot, which each process builds once per version. Calls to the org happen only in
:meth:`JobsService.refresh`: from the beat task, from the refresh hook, or on demand when the
snapshot is missing (the request waits) or older than the staleness bound (the request is
served from the last snapshot while one process refreshes in the background).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ats_gateway.services.jobs.contract import JobsContract
from ats_gateway.services.jobs.delta import Delta, diff
from ats_gateway.services.jobs.engine import CONTROLS, CursorCodec, JobIndex, JobQuery, from_listing
from ats_gateway.services.jobs.errors import (
    JobGone,
    JobNotFound,
    QueryInvalid,
    RefreshFailed,
    SnapshotUnavailable,
)
from ats_gateway.services.jobs.lifecycle import JobLifecycle
from ats_gateway.services.jobs.source import RecordSource, load_public_jobs
from ats_gateway.services.jobs.store import Entry, LocalCache, Pointer, SnapshotStore

log = logging.getLogger(__name__)

Args = Mapping[str, Sequence[str]]


def iso(epoch: float) -> str:
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def load_query(loader: Callable[[Args], Any], args: Args, contract: JobsContract) -> JobQuery:
    """The engine's query of ``args``, validated by ``loader`` (the metadata layer's
    `job_filters` schema); its field errors become :class:`QueryInvalid`."""
    try:
        listing_query = loader(args)
    except Exception as exc:
        errors = getattr(exc, "errors", None)
        if isinstance(errors, list):  # the metadata layer's InvalidInput
            raise QueryInvalid(errors) from None
        raise
    return from_listing(listing_query, contract)


@dataclass(frozen=True)
class RefreshResult:
    outcome: str  # refreshed | fresh (skipped: recent enough) | busy (another one runs)
    version: str | None = None
    count: int | None = None
    api_calls: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Rendered:
    """A response the API can send, or answer 304 for, without knowing how it was made."""

    etag: str
    snapshot_at: float
    make: Callable[[], dict[str, Any]] = field(repr=False)
    _body: dict[str, Any] | None = field(default=None, repr=False)
    #: The HTTP edge may memoize its encoding of the body (and its headers) here.
    encoded: dict[str, Any] = field(default_factory=dict, repr=False)

    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = self.make()
        return self._body


class JobsService:
    """Everything the API and the tasks do with jobs.

    ``contract`` returns the current :class:`JobsContract` (it follows describe refreshes);
    ``source`` returns the client that runs the snapshot query (a ``SalesforceClient`` of the
    ``job_portal`` connection); ``describe`` optionally returns the raw describe of the job
    object, so the query's field names are checked before it is sent.
    """

    def __init__(
        self,
        store: SnapshotStore,
        *,
        contract: Callable[[], JobsContract],
        source: Callable[[], RecordSource],
        describe: Callable[[], Mapping[str, Any] | None] | None = None,
        staleness_seconds: float = 60.0,
        cursor_secret: str = "",
        wait_seconds: float = 15.0,
        lock_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
        response_cache_size: int = 1024,
        query_loader: Callable[[Args], Any],
    ) -> None:
        self.store = store
        self.contract = contract
        self.source = source
        self.describe = describe
        self.staleness = float(staleness_seconds)
        self.codec = CursorCodec(cursor_secret)
        self.wait_seconds = wait_seconds
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.cache = LocalCache()
        #: this process's counts (tests, bench): deltas applied in place, full loads
        #: (a start, a process too far behind), compactions written
        self.deltas_applied = 0
        self.full_loads = 0
        self.compactions = 0
        self._responses: OrderedDict[str, Rendered] = OrderedDict()
        self._responses_lock = threading.Lock()
        self._responses_version = ""
        self._response_cache_size = response_cache_size
        self._background: threading.Thread | None = None
        self.query_loader = query_loader
        self._parsed: dict[str, JobQuery] = {}
        # Set by the events layer: the subscriber keeps the snapshot current (so staleness
        # is not a reason to reload) and remembers jobs that left (410 instead of 404).
        self.kept_current: Callable[[], bool] = lambda: False
        self.gone: Callable[[str], bool] = lambda job_id: False
        #: Told, after each full reload, which ids left the public set and which are in it
        #: (so a job closed in the org answers 410 whatever path noticed it first).
        self.left: Callable[[set[str], set[str]], Any] = lambda gone, present: None
        #: [22] told of every published change (opened / public fields changed / closed)
        self.lifecycle: JobLifecycle | None = None

    def parse(self, args: Args, contract: JobsContract, *, listing: bool = True) -> JobQuery:
        """Validate query parameters with the metadata layer's `job_filters` schema
        (``query_loader``: the grammar of filters lives there only), then translate them
        for the engine (:func:`~.engine.from_listing`).

        Valid queries are remembered per contract version: career sites repeat a few
        queries endlessly, and validation is the same every time until the describe changes.
        """
        key = repr((contract.version, listing, sorted((k, list(v)) for k, v in args.items())))
        found = self._parsed.get(key)
        if found is not None:
            return found
        query = self._parse(args, contract, listing=listing)
        if len(self._parsed) > 4096:
            self._parsed.clear()
        self._parsed[key] = query
        return query

    def _parse(self, args: Args, contract: JobsContract, *, listing: bool) -> JobQuery:
        if not listing:
            extra = [name for name in args if name in CONTROLS and name != "q"]
            if extra:
                raise QueryInvalid(
                    [
                        {
                            "field": name,
                            "code": "unknown_parameter",
                            "message": "Facets take the filters and q only.",
                        }
                        for name in extra
                    ]
                )
        return load_query(self.query_loader, args, contract)

    # -- the snapshot -------------------------------------------------------------------

    def refresh(
        self,
        *,
        blocking: bool = True,
        min_age: float = 0.0,
        newer_than: float | None = None,
    ) -> RefreshResult:
        """Load every public job from the org and publish a new snapshot.

        Single-flight across every process: with ``blocking`` a caller waits for a running
        refresh and then runs its own (the hook: changes made before it was called must show);
        without, it returns ``busy``. ``min_age`` skips the refresh when the current snapshot
        is younger (the beat task, so a hook or on-demand refresh resets its clock).
        ``newer_than`` (epoch seconds) skips it when the current snapshot's query started at
        or after that moment: a burst of hooks costs one or two refreshes, not one each.
        Raises :class:`RefreshFailed` (recorded for /readyz; the last snapshot stays).
        """
        lock = self.store.lock(self.lock_timeout)
        acquired = lock.acquire(
            blocking=blocking, blocking_timeout=self.lock_timeout if blocking else None
        )
        if not acquired:
            return RefreshResult("busy")
        try:
            if min_age or newer_than is not None:
                pointer = self.store.pointer()
                if pointer is not None and (
                    pointer.age(self.clock()) < min_age
                    or (newer_than is not None and pointer.snapshot_at >= newer_than)
                ):
                    return RefreshResult("fresh", version=pointer.version)
            started = self.clock()
            try:
                contract = self.contract()
                client = self.source()
                calls_before = getattr(client, "api_calls", None)
                describe = self.describe() if self.describe else None
                records = load_public_jobs(client, contract, describe)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("jobs snapshot refresh failed: %s", reason[:300])
                self.store.record_failure(reason)
                raise RefreshFailed(reason) from exc
            calls = None
            if calls_before is not None:
                calls = getattr(client, "api_calls", 0) - calls_before
            info = {
                "duration_ms": round((self.clock() - started) * 1000),
                "api_calls": calls if calls is not None else "",
            }
            current = self.current_index()
            delta = None if current is None else diff(current, records, contract.id_field)
            present = {str(r[contract.id_field]) for r in records}
            if delta is None or len(delta.upserts) + len(delta.removals) > max(
                self.store.compact_every, current.n // 2
            ):
                # The first load, or most of the catalogue changed (a new contract, a long
                # outage): a full snapshot every process loads, not a delta as big as it.
                pointer = self.store.publish(records, snapshot_at=started, **info)
                log.info("jobs snapshot %s: %d jobs", pointer.version, len(records))
                gone = set(delta.removals) if delta is not None else set()
                self.left(gone, present)
                if self.lifecycle is not None:
                    # The whole public set: on the first load, the lifecycle's baseline ([22]).
                    self.lifecycle.observe(
                        records,
                        sorted(gone),
                        id_field=contract.id_field,
                        source="reconcile",
                        full=True,
                    )
            else:
                # Every process has the catalogue: the reconciliation is a delta (what
                # differs; empty, it still moves `snapshot_at`: the catalogue is confirmed
                # current), and when it found something the result becomes the base.
                pointer = self.publish_delta(delta, snapshot_at=started, source="reconcile", **info)
                if delta:
                    self.store.compact(pointer.version, records, snapshot_at=started)
                self.left(set(delta.removals), present)
                log.info(
                    "jobs reconciled at %s: %d jobs, %d changed, %d left",
                    pointer.version,
                    len(records),
                    len(delta.upserts),
                    len(delta.removals),
                )
            return RefreshResult("refreshed", pointer.version, len(records), calls)
        finally:
            # A lock that expired while we worked has nothing to undo.
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    def publish_delta(
        self, delta: Delta, *, snapshot_at: float, source: str = "changes", **info: Any
    ) -> Pointer:
        """Append ``delta`` to the log as the next version (the caller holds the writers'
        lock and computed it against :meth:`current_index`), apply it to this process's
        index, and compact the log every ``store.compact_every`` versions.

        The one place every change to the catalogue passes (events, polling, pruning,
        reconciliation): ``delta.opened`` / ``changed`` / ``closed`` are known here, and the
        lifecycle events ([22]: webhooks, search engines) are told here, after the publish.
        """
        index = self.current_index()
        if index is None:
            raise RefreshFailed("no catalogue to apply a delta to")
        id_field = index.contract.id_field
        with index.lock:
            upserted = [str(r[id_field]) for r in delta.upserts]
            delta = Delta(
                delta.upserts,
                delta.removals,
                opened=tuple(i for i in upserted if index.get(i) is None),
                changed=tuple(i for i in upserted if index.get(i) is not None),
                closed=tuple(i for i in delta.removals if index.get(i) is not None),
            )
            count = index.n + len(delta.opened) - len(delta.closed)
        pointer = self.store.append(
            [dict(r) for r in delta.upserts],
            list(delta.removals),
            snapshot_at=snapshot_at,
            count=count,
            **info,
        )
        with self.cache.lock:
            if self.cache.current is index and int(index.version) == int(pointer.version) - 1:
                index.apply(
                    delta.upserts,
                    delta.removals,
                    version=pointer.version,
                    snapshot_at=snapshot_at,
                )
                self.deltas_applied += 1
        if self.lifecycle is not None:
            self.lifecycle.observe(
                list(delta.upserts), list(delta.closed), id_field=id_field, source=source
            )
        if int(pointer.version) - int(self.store.base() or 0) >= self.store.compact_every:
            current = self.current_index()
            if current is not None and current.version == pointer.version:
                self.store.compact(pointer.version, current.records(), snapshot_at=snapshot_at)
                self.compactions += 1
        return pointer

    def _refresh_soon(self) -> None:
        """A stale snapshot: refresh in the background (one process at a time, throttled)."""
        running = self._background
        if running is not None and running.is_alive():
            return
        if not self.store.claim_attempt(min(5.0, max(self.staleness / 2, 0.5))):
            return

        def run() -> None:
            # A failure is recorded; the last snapshot keeps being served. Redis failing
            # meanwhile (a restart, a failover) ends this attempt; the next request that
            # finds the snapshot stale starts another.
            try:
                self.refresh(blocking=False)
            except RefreshFailed:
                pass
            except redis.RedisError as exc:
                log.warning("jobs background refresh: Redis failed (%s)", type(exc).__name__)

        self._background = threading.Thread(target=run, name="jobs-refresh", daemon=True)
        self._background.start()

    def _pointer(self) -> Pointer:
        pointer = self.store.pointer()
        if pointer is not None:
            if pointer.age(self.clock()) > self.staleness and not self.kept_current():
                self._refresh_soon()
            return pointer
        # No snapshot at all: one caller loads it, the others wait for it; when the load
        # fails, everyone waiting answers 503 at once rather than at the deadline.
        started = self.clock()
        deadline = started + self.wait_seconds
        attempt_every = min(5.0, max(self.staleness / 2, 0.5))
        while True:
            if self.store.claim_attempt(attempt_every):
                try:
                    self.refresh(blocking=False)
                except RefreshFailed as exc:
                    raise self._unavailable(exc) from None
            pointer = self.store.pointer()
            if pointer is not None:
                return pointer
            # A load that failed within the attempt interval means no new attempt starts
            # before it ends: answer 503 now instead of making every request wait it out.
            failed_at = float(self.store.status().get("last_error_at") or 0)
            if failed_at >= started - attempt_every or self.clock() >= deadline:
                raise self._unavailable(None)
            time.sleep(0.05)

    @staticmethod
    def _unavailable(error: Exception | None) -> SnapshotUnavailable:
        cause = f" ({type(error.__cause__).__name__})" if error and error.__cause__ else ""
        return SnapshotUnavailable(
            f"The job listing is not loaded yet and the org could not be reached{cause}; "
            "try again shortly."
        )

    def index(self, contract: JobsContract | None = None) -> JobIndex:
        """The current catalogue, indexed: this process's copy, caught up with the log
        (``contract``: the current one, when the caller already asked for it)."""
        pointer = self._pointer()
        index = self._synced(pointer, contract)
        if index.version != self._responses_version:
            # Answers of older versions would show old records: drop them.
            with self._responses_lock:
                self._responses.clear()
                self._responses_version = index.version
        return index

    def current_index(self) -> JobIndex | None:
        """Like :meth:`index` but never loads from the org: None when there is no catalogue."""
        pointer = self.store.pointer()
        return None if pointer is None else self._synced(pointer)

    def _synced(self, pointer: Pointer, contract: JobsContract | None = None) -> JobIndex:
        contract = contract or self.contract()
        found = self.cache.current
        if found is not None and found.version == pointer.version and found.contract is contract:
            return found
        with self.cache.lock:  # one catch-up per process, not one per thread
            found = self.cache.current
            if found is not None and found.contract is not contract:
                if found.contract != contract:
                    # Another contract (a describe refresh): re-index what we have.
                    found = JobIndex(
                        found.records(),
                        contract,
                        version=found.version,
                        snapshot_at=found.snapshot_at,
                    )
                else:
                    found.contract = contract
                self.cache.current = found
            if found is not None and int(found.version) > int(pointer.version):
                # The request read the pointer a moment before another of this process's
                # threads caught up past it (threads read it without a lock): the index is
                # newer, not wrong. Going back a version used to reload the whole catalogue
                # (seconds with every thread waiting, a second copy in memory, and the next
                # request caught up again): at 10 edits a second and 50,000 jobs, gunicorn's
                # threads hit this within a minute (bench/RESULTS.md, [18] at 10 edits/s).
                # Only a store whose versions really went back (Redis emptied) is reloaded.
                fresh = self.store.pointer(fresh=True)
                if fresh is not None and int(fresh.version) >= int(found.version):
                    pointer = fresh
            if found is not None and found.version == pointer.version:
                return found
            if found is not None and int(found.version) < int(pointer.version):
                applied = self._replay(found, pointer)
                if applied is not None:
                    self.deltas_applied += applied
                    return found
            built = self._load(pointer, contract)
            self.cache.current = None  # one live copy: the old one goes before the next
            self.cache.current = built
            self.full_loads += 1
            # Seconds of work and a second copy of the catalogue while it lasts: worth a line
            # whenever it is not this process's first load (bench/scale.py counts them).
            if found is not None:
                log.info(
                    "jobs catalogue loaded whole at version %s (this process was at %s)",
                    built.version,
                    found.version,
                )
            # The index is long-lived and large: keep the cyclic GC from walking it on every
            # full collection (refcounting still frees what deltas replace).
            gc.freeze()
            return built

    def _load(self, pointer: Pointer, contract: JobsContract) -> JobIndex:
        """The newest full snapshot, with the log replayed from its version to ``pointer``."""
        for _ in range(3):  # a new base written meanwhile: start over from it
            base = self.store.base() or pointer.version  # (a store written before the log)
            snapshot = self.store.load(base)
            if snapshot is None:
                continue
            index = JobIndex(
                snapshot.records,
                contract,
                version=snapshot.version,
                snapshot_at=snapshot.snapshot_at,
            )
            del snapshot
            if int(index.version) >= int(pointer.version) or self._replay(index, pointer):
                return index
        raise SnapshotUnavailable("The job catalogue changed while being read; retry.")

    def _replay(self, index: JobIndex, pointer: Pointer) -> int | None:
        """Apply the log's deltas after ``index.version`` up to ``pointer`` in place; how many,
        or None (and ``index`` untouched) when they are not all there (trimmed, or a full
        snapshot among them)."""
        entries = self.store.entries(index.version, pointer.version)
        if not _contiguous(entries, index.version, pointer.version):
            return None
        for entry in entries:
            index.apply(
                entry.upserts,
                entry.removals,
                version=entry.version,
                snapshot_at=entry.snapshot_at,
            )
        return len(entries)

    # -- reading ------------------------------------------------------------------------

    def _cached(self, key: str, make: Callable[[], Rendered]) -> Rendered:
        with self._responses_lock:
            found = self._responses.get(key)
            if found is not None:
                self._responses.move_to_end(key)
                return found
        rendered = make()
        with self._responses_lock:
            self._responses[key] = rendered
            while len(self._responses) > self._response_cache_size:
                self._responses.popitem(last=False)
        return rendered

    def _etag(self, index: JobIndex, contract: JobsContract, text: str) -> str:
        digest = hashlib.sha1(f"{contract.version}|{text}".encode(), usedforsecurity=False)
        return f'W/"j{index.version}-{digest.hexdigest()[:20]}"'

    def list_jobs(self, args: Args) -> Rendered:
        """``GET /v1/jobs``: one page of public jobs with total, cursor and an ETag.

        Raises :class:`QueryInvalid` (422) and :class:`CursorGone` (410).
        """
        contract = self.contract()
        query = self.parse(args, contract)
        after = self.codec.decode(query.cursor, query)[0] if query.cursor else None
        index = self.index(contract)
        etag = self._etag(index, contract, "list" + query.canonical())

        def make() -> Rendered:
            def body() -> dict[str, Any]:
                # Under the index's lock: positions mean nothing once a delta moved them.
                with index.lock:
                    matched = index.match(query)
                    positions, next_key = index.page(query, matched, after)
                    data = [index.project(index.docs[i], query.fields) for i in positions]
                    total = index.n if matched is None else len(matched)
                    version, snapshot_at = index.version, index.snapshot_at
                cursor = None
                if next_key is not None:
                    cursor = self.codec.encode(version=version, query=query, key=next_key)
                return {
                    "data": data,
                    "page": {"next_cursor": cursor, "limit": query.limit},
                    "meta": {"total": total, "snapshot_at": iso(snapshot_at)},
                }

            return Rendered(etag, index.snapshot_at, body)

        return self._cached(etag, make)

    def get_job(self, job_id: str) -> Rendered:
        """``GET /v1/jobs/{id}`` (15- or 18-character id); :class:`JobNotFound` otherwise."""
        index = self.index()
        doc = index.get(job_id)
        if doc is None:
            if self.gone(job_id):
                raise JobGone(f"The job {job_id!r} is no longer open.")
            raise JobNotFound(f"No open job with id {job_id!r}.")
        projected = index.project(doc, None)
        etag = self._etag(index, self.contract(), "one" + doc[index.contract.id_field])
        return Rendered(etag, index.snapshot_at, lambda: {"data": projected})

    def facets(self, args: Args) -> Rendered:
        """``GET /v1/jobs/facets``: counts per value of each facet field under the filters."""
        contract = self.contract()
        query = self.parse(args, contract, listing=False)
        index = self.index(contract)
        etag = self._etag(index, contract, "facets" + query.canonical())

        def make() -> Rendered:
            def body() -> dict[str, Any]:
                with index.lock:
                    matched = index.match(query)
                    data = index.facets(query)
                    total = index.n if matched is None else len(matched)
                    snapshot_at = index.snapshot_at
                return {"data": data, "meta": {"total": total, "snapshot_at": iso(snapshot_at)}}

            return Rendered(etag, index.snapshot_at, body)

        return self._cached(etag, make)

    # -- status -------------------------------------------------------------------------

    def readiness(self) -> tuple[str, dict[str, Any]]:
        """For /readyz: the snapshot's version, age and size, and the last refresh error."""
        pointer = self.store.pointer()
        status = self.store.status()
        details: dict[str, Any] = {"staleness_bound_seconds": self.staleness}
        error = status.get("last_error") or None
        if error:
            details["last_error"] = error
            details["last_error_at"] = iso(float(status.get("last_error_at") or 0))
        if pointer is None:
            # Jobs answer 503 until a snapshot loads; the rest of the gateway still serves.
            details["snapshot"] = None
            return "degraded", details
        age = pointer.age(self.clock())
        details.update(
            version=pointer.version,
            snapshot_at=iso(pointer.snapshot_at),
            age_seconds=round(age, 1),
            jobs=int(status.get("count") or 0),
        )
        # Kept current by change events, an old snapshot is simply one nothing has changed in.
        stale = age > 2 * self.staleness + 5 and not self.kept_current()
        state = "degraded" if error or stale else "ok"
        return state, details


def _contiguous(entries: Sequence[Entry], after: str, upto: str) -> bool:
    """Whether ``entries`` are exactly the deltas of the versions after ``after`` to ``upto``
    (not trimmed away, no full snapshot among them)."""
    expected = list(range(int(after) + 1, int(upto) + 1))
    return [int(e.version) for e in entries] == expected and all(e.kind == "delta" for e in entries)
