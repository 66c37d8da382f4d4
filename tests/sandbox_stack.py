"""Helpers for tests that run the gateway against the sandbox org (importable from any test:
pyproject's pytest `pythonpath` puts tests/ on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis

from ats_gateway.config import ConnectionConfig
from ats_gateway.salesforce import ConnectionSettings, Grants, SalesforceClient
from sandbox_org.seed import DEMO_USERS

T = TypeVar("T")


def demo_connection(url: str, key: str, *, name: str | None = None) -> ConnectionConfig:
    """The gateway connection of the sandbox's demo user `key` (job_portal, admin, ...)."""
    user = DEMO_USERS[key]
    return ConnectionConfig(
        name=name or key,
        login_url=url,
        client_id=user["client_id"],
        client_secret=user["client_secret"],
        username=user["username"],
        password=user["password"],
        security_token=user["security_token"],
    )


def admin_client(url: str, redis_client: redis.Redis) -> SalesforceClient:
    """A client as the sandbox's admin with no local allow-list: the tests' view of the org."""
    user = DEMO_USERS["admin"]
    return SalesforceClient(
        ConnectionSettings(
            name="admin",
            login_url=url,
            client_id=user["client_id"],
            client_secret=user["client_secret"],
            username=user["username"],
            password=user["password"],
            security_token=user["security_token"],
            grants=Grants.everything(),
        ),
        redis_client,
    )


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll until `predicate()` is truthy and return it; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


__all__ = ["admin_client", "demo_connection", "wait_for"]
