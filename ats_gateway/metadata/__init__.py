"""Describe cache, describe -> marshmallow schema factory, contracts, JSON Schema/OpenAPI,
permission preflight. No Flask here.

Other code uses the process's :class:`Metadata` (``services().metadata``, built by
:func:`ats_gateway.composition.build_services` with :func:`build_metadata`); a process without
an app (CLI, tests) builds one with :func:`build_metadata` alone.
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
    "check_at_start",
    "describe_status",
    "permissions_status",
]

log = logging.getLogger(__name__)


def build_metadata(
    settings: Settings,
    redis_client: Any,
    fetchers: Mapping[str, DescribeFetcher | None] | None = None,
) -> Metadata:
    """A `Metadata` over the settings' schemas folder, reading describes with `fetchers` (one
    per connection, None: snapshots only). The composition root passes the fetchers of its
    connections; without them (a CLI command, a test) they are built from the settings."""
    if fetchers is None:
        from ats_gateway.metadata import sources

        fetchers = sources.fetchers_from_settings(settings, redis_client)
    cache = DescribeCache(
        redis_client,
        settings.schemas_dir,
        fetchers,
        local_ttl=getattr(settings, "describe_local_ttl_seconds", 1.0),
        clock_skew=getattr(settings, "describe_clock_skew_seconds", 120.0),
    )
    return Metadata(
        load_contracts(settings.schemas_dir),
        cache,
        connections=load_connections(settings.schemas_dir),
        permission_sets=load_permission_sets(settings.schemas_dir),
        public_url=settings.public_url,
    )


def check_at_start(metadata: Metadata) -> None:
    """Start-up step: contracts checked against the describes (a field the org lacks stops
    the start, naming both), the permission preflight logged."""
    for warning in metadata.check():
        log.warning("contract: %s", warning)
    for finding in metadata.preflight():
        if finding.state == MISSING:
            log.error("permission preflight: %s", finding.sentence)


def describe_status(metadata: Metadata) -> tuple[str, dict[str, Any]]:
    """Readiness: where each describe the gateway uses comes from, and how old it is."""
    return metadata.cache.status(metadata.pairs())


def permissions_status(metadata: Metadata) -> tuple[str, dict[str, Any]]:
    """Readiness: grants each connection lacks ("degraded": those endpoints answer 503)."""
    findings = metadata.preflight()
    missing = [f.sentence for f in findings if f.state == MISSING]
    unverified = sum(f.state != MISSING and f.state != "ok" for f in findings)
    details: dict[str, Any] = {"checked": len(findings), "unverified": unverified}
    if missing:
        details["missing"] = missing
    return ("degraded" if missing else "ok"), details
