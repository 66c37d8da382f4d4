"""Fixtures of the fault suite: a private Redis (restartable), the sandbox org with faults on,
a real Celery worker process and the gateway app. Helpers and the invariant: faultkit.py.
"""

from __future__ import annotations

import pytest
import redis
from faultkit import Stack, connection, demo_user

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig
from ats_gateway.embedded import EmbeddedRedis
from ats_gateway.extensions import services
from ats_gateway.salesforce import ConnectionSettings, Grants, SalesforceClient
from ats_gateway.security import KeyStore
from ats_gateway.services.delivery import Outbox
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread

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
    handle = start_in_thread(
        create_sandbox({"seed": "demo", "seed_jobs": 20, "faults_enabled": True})
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="package")
def stack(reliability_redis, reliability_sandbox, base_settings, tmp_path_factory):
    settings = base_settings.replace(
        redis_url=reliability_redis.url,
        connections={
            "job_portal": connection(reliability_sandbox.url),
            "interview_feedback": ConnectionConfig(name="interview_feedback"),
        },
        rate_limit_ip_submit="1000000/minute",
        rate_limit_key_submit="1000000/minute",
        rate_limit_key_read="1000000/minute",
        rate_limit_ip_read="1000000/minute",
        delivery_window_seconds=0.1,
        retry_base_delay_seconds=0.2,
        retry_max_delay_seconds=1,
        delivery_lease_seconds=5,
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    redis_client = services(app).redis
    _, secret = KeyStore(redis_client).create(
        kind="secret", name="fault suite", scopes=["applications:write", "applications:read"]
    )
    admin_user = demo_user("admin")
    admin = SalesforceClient(
        ConnectionSettings(
            name="admin",
            login_url=reliability_sandbox.url,
            client_id=admin_user["client_id"],
            client_secret=admin_user["client_secret"],
            username=admin_user["username"],
            password=admin_user["password"],
            security_token=admin_user["security_token"],
            grants=Grants.everything(),
        ),
        # The admin's token and budget in a Redis of their own: reading the org back must not
        # tell the gateway anything (e.g. that the API budget is back).
        redis.Redis.from_url(base_settings.redis_url),
    )
    jobs = [
        r["Id"]
        for r in admin.query_many(
            [
                "SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' "
                "AND bpats__Post_to_Job_Board__c = true AND "
                "(bpats__End_Date__c = null OR bpats__End_Date__c >= TODAY) ORDER BY Name"
            ]
        )[0]
    ]
    assert len(jobs) >= 3
    # The job snapshot is loaded before any fault, as it is in a running deployment (intake
    # checks "is this job open" against it; with no snapshot and the org down, each submission
    # waits for a failed load, which is a separate finding, not what these tests measure).
    assert services(app).jobs.refresh().outcome == "refreshed"
    log_dir = tmp_path_factory.mktemp("reliability-logs")
    the_stack = Stack(
        settings=settings,
        app=app,
        redis_server=reliability_redis,
        redis=redis_client,
        outbox=Outbox.from_settings(redis_client, "applications", settings),
        sandbox=reliability_sandbox,
        admin=admin,
        headers={"Authorization": f"Bearer {secret}"},
        jobs=jobs,
        log_dir=log_dir,
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
