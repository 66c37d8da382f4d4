"""One `SalesforceClient` per connection per process, built on first use from settings.

Everything that talks to the org (describe refresh, jobs snapshot, application and feedback
delivery, `doctor`) gets its client here (``services().connections``), so each process has one
pooled session and one view of the token cache per integration user. Clients know the describe
snapshots so that their local allow-list can follow relationship paths and subqueries in SOQL.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from ats_gateway.config import Settings
from ats_gateway.metadata.describe import SnapshotDescribes
from ats_gateway.salesforce import ConnectionSettings, SalesforceClient


def connection_settings(settings: Settings, name: str) -> ConnectionSettings:
    """The client settings of connection `name` (credentials, timeouts, budget reserve)."""
    return ConnectionSettings.from_config(
        settings.connections[name],
        connect_timeout=settings.sf_connect_timeout,
        read_timeout=settings.sf_read_timeout,
        budget_reserve=settings.api_reserve_fraction,
    )


class Connections:
    def __init__(self, settings: Settings, redis_client: redis.Redis) -> None:
        self.settings = settings
        self.redis = redis_client
        self.describes = SnapshotDescribes(settings.schemas_dir)
        self._clients: dict[str, SalesforceClient] = {}
        self._lock = threading.Lock()

    def configured(self, name: str) -> bool:
        conn = self.settings.connections.get(name)
        return bool(conn and conn.configured)

    def client(self, name: str) -> SalesforceClient:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = SalesforceClient(
                    connection_settings(self.settings, name), self.redis, describes=self.describes
                )
                self._clients[name] = client
            return client

    def status(self) -> tuple[str, dict[str, Any]]:
        """Readiness: each configured connection's auth state and the org's API usage."""
        details: dict[str, Any] = {}
        state = "ok"
        for name in self.settings.connections:
            if not self.configured(name):
                details[name] = {"configured": False}
                state = "degraded" if state == "ok" else state
                continue
            info = self.client(name).status()
            details[name] = info
            if info.get("auth_error"):
                state = "fail"
        return state, details
