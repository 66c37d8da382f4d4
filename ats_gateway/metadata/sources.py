"""Describe sources: the Salesforce client as a :class:`DescribeFetcher`, one per connection.

Clients come from :class:`ats_gateway.connections.Connections` (one per connection per
process, shared with everything else that talks to the org; the composition root passes its
own, a CLI process builds one).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import redis

from ats_gateway.config import Settings
from ats_gateway.metadata.describe import NOT_MODIFIED, DescribeFetcher


def client_fetcher(client: Any) -> DescribeFetcher:
    """Adapt `SalesforceClient.describe(sobject, if_modified_since=datetime)` (None on 304)."""

    def fetch(sobject: str, if_modified_since: str | None = None) -> Any:
        since = parsedate_to_datetime(if_modified_since) if if_modified_since else None
        result = client.describe(sobject, if_modified_since=since)
        return NOT_MODIFIED if result is None else result

    def any_changed(if_modified_since: str) -> bool:
        """`GET /sobjects` with If-Modified-Since: False on 304 (no object changed)."""
        since = parsedate_to_datetime(if_modified_since)
        return client.describe_global(if_modified_since=since) is not None

    fetch.client = client  # type: ignore[attr-defined]
    fetch.any_changed = any_changed  # type: ignore[attr-defined]
    return fetch


def fetchers_from_connections(connections: Any) -> dict[str, DescribeFetcher | None]:
    """A fetcher per configured connection of a `Connections`; None for the others."""
    return {
        name: client_fetcher(connections.client(name)) if connections.configured(name) else None
        for name in connections.settings.connections
    }


def fetchers_from_settings(
    settings: Settings, redis_client: redis.Redis | None
) -> dict[str, DescribeFetcher | None]:
    """Fetchers for a process without an app (CLI); no Redis means no org (snapshots)."""
    if redis_client is None:
        return dict.fromkeys(settings.connections)
    from ats_gateway.connections import Connections

    return fetchers_from_connections(Connections(settings, redis_client))
