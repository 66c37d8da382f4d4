"""The gateway as the fuzzer sees it: the app (in process, WSGI) with the sandbox org seeded
with demo jobs, a job snapshot loaded, and an API key holding every scope.

Built from the shared stack (tests/stack.py). The app uses a Redis database of its own
(`redis_db`; the session's worker watches database 0 and has no org connection), and no worker
watches it, so applications the fuzzer manages to submit are queued and never delivered.
"""

from __future__ import annotations

import pytest
import schemathesis
from stack import UNLIMITED, secret_headers

from ats_gateway.extensions import services
from ats_gateway.security import SCOPES


@pytest.fixture(scope="module")
def sandbox_options():
    return {"seed": "demo", "seed_jobs": 30}


@pytest.fixture(scope="module")
def stack_overrides():
    return dict(UNLIMITED)  # the fuzzer is one client sending hundreds of requests: no 429


@pytest.fixture(scope="module")
def fuzz_app(gateway_app):
    assert services(gateway_app).jobs.refresh().outcome == "refreshed"
    return gateway_app


@pytest.fixture(scope="module")
def fuzz_headers(stack_redis) -> dict[str, str]:
    return secret_headers(stack_redis, [s for s in SCOPES if s != "admin"], name="fuzzer")


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzz_app)
