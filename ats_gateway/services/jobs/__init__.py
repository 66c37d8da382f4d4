"""The jobs flow: every public job, kept in each process by versioned deltas, searched and
paged in process (a full snapshot loads a starting process; see :mod:`.store`).

    service = services().jobs                   # a JobsService (built by `build_service`)
    service.list_jobs(request.args)             -> Rendered (etag, snapshot_at, body())
    service.get_job("a0M...")                   -> Rendered, or JobNotFound
    service.facets(request.args)                -> Rendered
    service.refresh(blocking=True)              -> RefreshResult (beat task, refresh hook)
    service.readiness()                         -> ("ok"|"degraded"|"fail", details)

Errors: see :mod:`ats_gateway.services.jobs.errors`. Built once per process by the
composition root (:func:`ats_gateway.composition.build_services`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ats_gateway.services.jobs.contract import JobsContract, from_metadata
from ats_gateway.services.jobs.delta import Delta
from ats_gateway.services.jobs.engine import CursorCodec, JobIndex, JobQuery, SortSpec
from ats_gateway.services.jobs.errors import (
    CursorGone,
    JobGone,
    JobNotFound,
    JobsError,
    QueryInvalid,
    RefreshFailed,
    SnapshotUnavailable,
)
from ats_gateway.services.jobs.service import JobsService, RefreshResult, Rendered
from ats_gateway.services.jobs.store import KEY_PREFIX, SnapshotStore

#: The key every request reads (the catalogue's version): see ``store.py``.
CURRENT_KEY = KEY_PREFIX + "current"

__all__ = [
    "CURRENT_KEY",
    "CursorCodec",
    "CursorGone",
    "Delta",
    "JobGone",
    "JobIndex",
    "JobNotFound",
    "JobQuery",
    "JobsContract",
    "JobsError",
    "JobsService",
    "QueryInvalid",
    "RefreshFailed",
    "RefreshResult",
    "Rendered",
    "SnapshotStore",
    "SnapshotUnavailable",
    "SortSpec",
    "build_service",
]

JOB, JOB_FILTERS = "job", "job_filters"


class _MetadataView:
    """The job contract as the metadata layer currently has it (follows describe refreshes)."""

    def __init__(self, metadata: Any) -> None:
        self._metadata = metadata
        self._built: tuple[tuple[str, ...], JobsContract] | None = None
        self._lock = threading.Lock()

    def contract(self) -> JobsContract:
        md = self._metadata
        version = tuple(md.version(JOB_FILTERS))
        built = self._built
        if built is None or built[0] != version:
            with self._lock:
                contract = from_metadata(
                    md.contract(JOB),
                    md.contract(JOB_FILTERS),
                    md.describe(JOB),
                    version=".".join(version),
                )
                self._built = built = (version, contract)
        return built[1]

    def describe(self) -> Any:
        return dict(self._metadata.describe(JOB).raw)


def build_service(
    settings: Any,
    redis_client: Any,
    metadata: Any,
    clients: Callable[[str], Any],
    *,
    hot: Any = None,
) -> JobsService:
    """A :class:`JobsService` for these settings.

    ``hot`` keeps the catalogue's ``current`` pointer (:data:`CURRENT_KEY`) in the process
    (``redis_tracking.TrackedKeys``); every read is a GET without it.

    ``metadata`` is the process's :class:`~ats_gateway.metadata.Metadata`; ``clients`` returns
    the ``SalesforceClient`` of a connection (``Connections.client``), asked for on each
    refresh, so an unconfigured connection only fails the refresh (readiness says why).
    """
    view = _MetadataView(metadata)

    def source() -> Any:
        name = view.contract().connection
        if not settings.connections[name].configured:
            raise RefreshFailed(f"connection {name!r} is not configured")
        return clients(name)

    staleness = float(settings.jobs_staleness_seconds)
    return JobsService(
        SnapshotStore(
            redis_client,
            keep_seconds=int(max(600, 10 * staleness)),
            compact_every=settings.jobs_compact_every,
            hot=hot,
        ),
        contract=view.contract,
        source=source,
        describe=view.describe,
        staleness_seconds=staleness,
        cursor_secret=settings.secret_key,
        query_loader=lambda args: metadata.load_query(JOB_FILTERS, args),
    )
