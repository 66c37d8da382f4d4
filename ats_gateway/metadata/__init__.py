"""Describe cache, describe -> marshmallow schema factory, contracts, JSON Schema/OpenAPI,
permission preflight. No Flask here: `init_app` only touches `app.config` / `app.extensions`.

Other code uses the :class:`Metadata` at `app.extensions["metadata"]` (see
:mod:`ats_gateway.metadata.service`), or builds one with :func:`build_metadata` (workers, CLI).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ats_gateway.config import Settings
from ats_gateway.metadata.cache import DescribeCache
from ats_gateway.metadata.contracts import (
    load_connections,
    load_contracts,
    load_permission_sets,
)
from ats_gateway.metadata.describe import NOT_MODIFIED, ContractError, DescribeFetcher
from ats_gateway.metadata.errors import InvalidInput
from ats_gateway.metadata.openapi import Operation, Response
from ats_gateway.metadata.preflight import MISSING, PermissionMissing
from ats_gateway.metadata.service import ListingQuery, Metadata

__all__ = [
    "NOT_MODIFIED",
    "ContractError",
    "DescribeCache",
    "DescribeFetcher",
    "InvalidInput",
    "ListingQuery",
    "Metadata",
    "Operation",
    "PermissionMissing",
    "Response",
    "build_metadata",
    "init_app",
    "permissions_status",
]

log = logging.getLogger(__name__)


def build_metadata(
    settings: Settings,
    redis_client: Any,
    fetchers: Mapping[str, DescribeFetcher | None] | None = None,
    *,
    connections: Any = None,
) -> Metadata:
    """A `Metadata` over the settings' schemas folder. Fetchers default to the clients of
    `connections` (an `ats_gateway.connections.Connections`; built from the settings when not
    given), one per configured connection; unconfigured ones serve the snapshots."""
    if fetchers is None:
        from ats_gateway.metadata import sources

        if connections is not None:
            fetchers = sources.fetchers_from_connections(connections)
        else:
            fetchers = sources.fetchers_from_settings(settings, redis_client)
    cache = DescribeCache(
        redis_client,
        settings.schemas_dir,
        fetchers,
        local_ttl=getattr(settings, "describe_local_ttl_seconds", 1.0),
    )
    return Metadata(
        load_contracts(settings.schemas_dir),
        cache,
        connections=load_connections(settings.schemas_dir),
        permission_sets=load_permission_sets(settings.schemas_dir),
        public_url=settings.public_url,
    )


def init_app(app: Any) -> Metadata:
    """Start-up step: contracts checked against the describes (a field the org lacks stops
    the start, naming both), the permission preflight logged, readiness check "describe"."""
    settings: Settings = app.config["SETTINGS"]
    metadata = app.extensions.get("metadata")
    if metadata is None:
        metadata = build_metadata(
            settings, app.extensions.get("redis"), connections=app.extensions.get("connections")
        )
    app.extensions["metadata"] = metadata
    for warning in metadata.check():
        log.warning("contract: %s", warning)
    for finding in metadata.preflight():
        if finding.state == MISSING:
            log.error("permission preflight: %s", finding.sentence)
    readiness = app.extensions.get("readiness")
    if readiness is not None:
        readiness.add("describe", lambda: metadata.cache.status(metadata.pairs()))
        readiness.add("permissions", lambda: permissions_status(metadata))
    return metadata


def permissions_status(metadata: Metadata) -> tuple[str, dict[str, Any]]:
    """Readiness: grants each connection lacks ("degraded": those endpoints answer 503)."""
    findings = metadata.preflight()
    missing = [f.sentence for f in findings if f.state == MISSING]
    unverified = sum(f.state != MISSING and f.state != "ok" for f in findings)
    details: dict[str, Any] = {"checked": len(findings), "unverified": unverified}
    if missing:
        details["missing"] = missing
    return ("degraded" if missing else "ok"), details
