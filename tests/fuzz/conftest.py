"""The gateway as the fuzzer sees it: the app (in process, WSGI) with the sandbox org seeded
with demo jobs, a job snapshot loaded, and an API key holding every scope.

The app uses a Redis database of its own (the session's worker watches database 0 and has no
org connection), so applications the fuzzer manages to submit are queued and never delivered.
"""

from __future__ import annotations

import pytest
import schemathesis

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig
from ats_gateway.extensions import services
from ats_gateway.security import SCOPES, KeyStore
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.seed import DEMO_USERS
from sandbox_org.server import start_in_thread

FUZZ_DB = "/8"


def _connection(url: str, key: str) -> ConnectionConfig:
    user = next(u for u in DEMO_USERS if u["key"] == key)
    return ConnectionConfig(
        name=key,
        login_url=url,
        client_id=user["client_id"],
        client_secret=user["client_secret"],
        username=user["username"],
        password=user["password"],
        security_token=user["security_token"],
    )


@pytest.fixture(scope="session")
def fuzz_sandbox():
    handle = start_in_thread(create_sandbox({"seed": "demo", "seed_jobs": 30}))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def fuzz_app(base_settings, redis_url, fuzz_sandbox):
    settings = base_settings.replace(
        redis_url=redis_url.rsplit("/", 1)[0] + FUZZ_DB,
        connections={
            name: _connection(fuzz_sandbox.url, name)
            for name in ("job_portal", "interview_feedback")
        },
        # The fuzzer is one client sending hundreds of requests: no 429 in the way.
        rate_limit_ip_submit="1000000/minute",
        rate_limit_key_submit="1000000/minute",
        rate_limit_key_read="1000000/minute",
        rate_limit_ip_read="1000000/minute",
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    services(app).redis.flushdb()
    assert services(app).jobs.refresh().outcome == "refreshed"
    return app


@pytest.fixture(scope="session")
def fuzz_headers(fuzz_app) -> dict[str, str]:
    _, secret = KeyStore(services(fuzz_app).redis).create(
        kind="secret", name="fuzzer", scopes=[s for s in SCOPES if s != "admin"]
    )
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="session")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzz_app)
