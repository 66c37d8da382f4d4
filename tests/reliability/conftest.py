"""Fixtures of the fault suite, built from the shared stack (tests/stack.py): a Redis server of
its own (restartable), the sandbox org with faults on, a real Celery worker process, beat, and
the gateway app. Helpers and the invariant: faultkit.py.

One stack for the whole package (both test modules), so the fixtures use the shared factories
rather than the module-scoped shared fixtures.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from faultkit import Stack
from stack import (
    UNLIMITED,
    admin_client,
    build_gateway,
    gateway_settings,
    open_job_ids,
    running_sandbox,
    secret_headers,
)

from ats_gateway.embedded import EmbeddedRedis
from ats_gateway.extensions import services
from ats_gateway.services.delivery import Outbox

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="package")
def reliability_redis(tmp_path_factory) -> EmbeddedRedis:
    """A Redis of the fault suite's own, so a test may kill and restart it (AOF, fsync always:
    the restart test checks what survives a crash)."""
    server = EmbeddedRedis(data_dir=tmp_path_factory.mktemp("reliability-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def reliability_sandbox():
    with running_sandbox(seed="demo", seed_jobs=20, faults_enabled=True) as handle:
        yield handle


@pytest.fixture(scope="package")
def stack(reliability_redis, reliability_sandbox, base_settings, tmp_path_factory):
    settings = gateway_settings(
        base_settings,
        redis_url=reliability_redis.url,
        sandbox=reliability_sandbox,
        connections=["job_portal"],
        **UNLIMITED,
        delivery_window_seconds=0.1,
        retry_base_delay_seconds=0.2,
        retry_max_delay_seconds=1,
        delivery_lease_seconds=5,
    )
    app = build_gateway(settings)
    redis_client = redis.Redis.from_url(settings.redis_url)
    admin = admin_client(
        reliability_sandbox.url,
        # The admin's token and budget in a Redis of their own: reading the org back must not
        # tell the gateway anything (e.g. that the API budget is back).
        redis.Redis.from_url(base_settings.redis_url),
        key_prefix=f"test:admin:{uuid.uuid4().hex}:",
    )
    jobs = open_job_ids(admin)
    # The job snapshot is loaded before any fault, as it is in a running deployment (intake
    # checks "is this job open" against it; with no snapshot and the org down, each submission
    # waits for a failed load, which is a separate finding, not what these tests measure).
    assert services(app).jobs.refresh().outcome == "refreshed"
    the_stack = Stack(
        settings=settings,
        app=app,
        redis_server=reliability_redis,
        redis=redis_client,
        outbox=Outbox.from_settings(redis_client, "applications", settings),
        sandbox=reliability_sandbox,
        admin=admin,
        headers=secret_headers(
            redis_client, ["applications:write", "applications:read"], name="fault suite"
        ),
        jobs=jobs,
        log_dir=tmp_path_factory.mktemp("reliability-logs"),
    )
    the_stack.start_worker()
    the_stack.start_beat()
    yield the_stack
    for process in [the_stack.worker, the_stack.beat, *the_stack.extra]:
        if process is not None:
            process.stop()
    the_stack.clear_faults()


@pytest.fixture(autouse=True)
def _healthy_org_after_each_test(request):
    """Faults never leak into the next test; the worker and beat are back if a test killed
    them."""
    yield
    if "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        stack.clear_faults()
        if stack.worker is None or not stack.worker.alive():
            stack.start_worker()
        if stack.beat is None or not stack.beat.alive():
            stack.start_beat()
