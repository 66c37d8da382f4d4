"""The jobs flow: a versioned snapshot of every public job, searched and paged in process.

    service = app.extensions["jobs"]            # a JobsService (built by `init_app`)
    service.list_jobs(request.args)             -> Rendered (etag, snapshot_at, body())
    service.get_job("a0M...")                   -> Rendered, or JobNotFound
    service.facets(request.args)                -> Rendered
    service.refresh(blocking=True)              -> RefreshResult (beat task, refresh hook)
    service.readiness()                         -> ("ok"|"degraded"|"fail", details)

Errors: see :mod:`ats_gateway.services.jobs.errors`. No Flask here: `init_app` only reads
`app.config` and writes `app.extensions`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ats_gateway.services.jobs.contract import JobsContract, from_metadata
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
from ats_gateway.services.jobs.store import SnapshotStore

__all__ = [
    "CursorCodec",
    "CursorGone",
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
    "init_app",
]

JOB, JOB_FILTERS = "job", "job_filters"


class _MetadataView:
    """The job contract as the metadata layer currently has it (follows describe refreshes)."""

    def __init__(self, metadata: Callable[[], Any]) -> None:
        self._metadata = metadata
        self._built: tuple[tuple[str, ...], JobsContract] | None = None
        self._lock = threading.Lock()

    def contract(self) -> JobsContract:
        md = self._metadata()
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
        return dict(self._metadata().describe(JOB).raw)


def build_service(
    settings: Any,
    redis_client: Any,
    metadata: Callable[[], Any],
    clients: Callable[[str], Any] | None = None,
) -> JobsService:
    """A :class:`JobsService` for these settings.

    ``metadata`` returns the metadata layer's :class:`~ats_gateway.metadata.Metadata` and
    ``clients`` the ``SalesforceClient`` of a connection (the process-wide registry at
    `app.extensions["connections"]`); both are looked up on use, so start-up order is free.
    Without ``clients`` the service keeps a client of its own.
    """
    view = _MetadataView(metadata)
    own: dict[str, Any] = {}
    own_lock = threading.Lock()

    def client_for(name: str) -> Any:
        if clients is not None:
            return clients(name)
        from ats_gateway.metadata.sources import client_for as build_client

        with own_lock:
            if name not in own:
                own[name] = build_client(settings, name, redis_client)
            return own[name]

    def source() -> Any:
        name = view.contract().connection
        if not settings.connections[name].configured:
            raise RefreshFailed(f"connection {name!r} is not configured")
        return client_for(name)

    staleness = float(settings.jobs_staleness_seconds)
    return JobsService(
        SnapshotStore(redis_client, keep_seconds=int(max(600, 10 * staleness))),
        contract=view.contract,
        source=source,
        describe=view.describe,
        staleness_seconds=staleness,
        cursor_secret=settings.secret_key,
        query_loader=lambda args: metadata().load_query(JOB_FILTERS, args),
    )


def init_app(app: Any) -> JobsService:
    """Start-up step: the jobs service at `app.extensions["jobs"]`, readiness "jobs_snapshot"."""
    settings = app.config["SETTINGS"]
    own: dict[str, Any] = {}

    def metadata() -> Any:
        found = app.extensions.get("metadata")
        if found is None:  # the metadata layer is not wired into create_app: build our own
            if "md" not in own:
                from ats_gateway.metadata import build_metadata

                own["md"] = build_metadata(settings, app.extensions["redis"])
            found = own["md"]
        return found

    registry = app.extensions.get("connections")  # ats_gateway.connections (one client each)
    clients = registry.client if registry is not None else None
    service = build_service(settings, app.extensions["redis"], metadata, clients)
    app.extensions["jobs"] = service
    readiness = app.extensions.get("readiness")
    if readiness is not None:
        readiness.add("jobs_snapshot", service.readiness)
    metrics = app.extensions.get("metrics")
    if metrics is not None:
        _register_metrics(service, metrics.registry)
    return service


def _register_metrics(service: JobsService, registry: Any) -> None:
    """Gauges read at scrape time from Redis (what every process serves)."""
    from prometheus_client import Gauge

    def age() -> float:
        pointer = service.store.pointer()
        return -1.0 if pointer is None else pointer.age(service.clock())

    def count() -> float:
        return float(service.store.status().get("count") or 0)

    Gauge(
        "ats_gateway_jobs_snapshot_age_seconds",
        "Age of the jobs snapshot being served (-1: none yet).",
        registry=registry,
    ).set_function(age)
    Gauge(
        "ats_gateway_jobs_snapshot_jobs",
        "Public jobs in the current snapshot.",
        registry=registry,
    ).set_function(count)
