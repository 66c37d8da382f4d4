"""Fixtures of the API budget tests: a Redis and a sandbox org (daily limit 15,000) of their own,
and a factory for a gateway app plus a real Celery worker with a test's pacing settings.

No beat runs: nothing polls the org, so every org call in a test is one the gateway chose to
make (delivery, or its own /limits probe). Org calls are counted by the sandbox's counter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sandbox_stack import admin_client, demo_connection

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig, Settings
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess
from ats_gateway.embedded.stack import start_worker
from ats_gateway.extensions import services
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.security import KeyStore
from ats_gateway.services.delivery import Outbox
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread

ORG_LIMIT = 15_000
OPEN_JOBS = (
    "SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' "
    "AND bpats__Post_to_Job_Board__c = true AND "
    "(bpats__End_Date__c = null OR bpats__End_Date__c >= TODAY) ORDER BY Name"
)


@dataclass
class BudgetStack:
    settings: Settings
    app: Any
    redis: redis.Redis
    sandbox_url: str
    admin: SalesforceClient
    headers: dict[str, str]
    jobs: list[str]
    worker: ManagedProcess | None = None
    tag: str = field(default_factory=lambda: "g" + uuid.uuid4().hex[:8])

    @property
    def outbox(self):
        return Outbox.from_settings(self.redis, "applications", self.settings)

    def usage(self, **values: Any) -> dict:
        """The org's counter (``used``, ``limit``): read, or set as the org's own users would."""
        if values:
            response = requests.post(
                self.sandbox_url + "/__sandbox__/usage", json=values, timeout=5
            )
        else:
            response = requests.get(self.sandbox_url + "/__sandbox__/usage", timeout=5)
        response.raise_for_status()
        return response.json()

    def org_calls(self) -> int:
        return self.usage()["used"]

    def submit(self, i: int) -> str:
        body = {
            "job_id": self.jobs[i % len(self.jobs)],
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "email": f"ada.{i}@{self.tag}.example.com",
            "consent": True,
        }
        response = self.app.test_client().post("/v1/applications", json=body, headers=self.headers)
        assert response.status_code == 202, response.get_data(as_text=True)[:300]
        return response.json["id"]

    def statuses(self, ids: list[str]) -> dict[str, dict]:
        outbox = self.outbox
        return {i: outbox.get(i) or {} for i in ids}

    def forecast(self) -> dict:
        found = services(self.app)
        return found.pacer.forecast(found.applications_outbox)

    def in_org(self) -> list[dict]:
        soql = (
            "SELECT Id, bpats__Email__c FROM bpats__Job_Board_Application__c "
            f"WHERE bpats__Email__c LIKE '%@{self.tag}.example.com'"
        )
        return [r for page in self.admin.query(soql).pages() for r in page.records]


@pytest.fixture(scope="package")
def budget_redis(tmp_path_factory) -> EmbeddedRedis:
    server = EmbeddedRedis(data_dir=tmp_path_factory.mktemp("budget-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def budget_sandbox():
    handle = start_in_thread(
        create_sandbox({"seed": "demo", "seed_jobs": 20, "daily_api_limit": ORG_LIMIT})
    )
    yield handle
    handle.stop()


@pytest.fixture
def budget_stack(budget_redis, budget_sandbox, base_settings, tmp_path_factory):
    """``budget_stack(**settings)``: a fresh day (org counter 0 of 15,000, empty Redis), the
    gateway app with these settings and one worker process; stopped after the test."""
    made: list[BudgetStack] = []

    def make(**overrides: Any) -> BudgetStack:
        raw = redis.Redis.from_url(budget_redis.url)
        raw.flushall()
        requests.post(
            budget_sandbox.url + "/__sandbox__/usage",
            json={"used": 0, "limit": ORG_LIMIT},
            timeout=5,
        ).raise_for_status()
        overrides.setdefault("api_calls_per_day", 0)  # the share of the org's limit
        settings = base_settings.replace(
            redis_url=budget_redis.url,
            connections={
                "job_portal": demo_connection(budget_sandbox.url, "job_portal"),
                "interview_feedback": ConnectionConfig(name="interview_feedback"),
            },
            rate_limit_ip_submit="1000000/minute",
            rate_limit_key_submit="1000000/minute",
            rate_limit_key_read="1000000/minute",
            rate_limit_ip_read="1000000/minute",
            jobs_staleness_seconds=3600,
            intake_fsync=False,
            **overrides,
        )
        app = create_app(settings)
        app.config["TESTING"] = True
        redis_client = services(app).redis
        _, secret = KeyStore(redis_client).create(
            kind="secret", name="budget", scopes=["applications:write", "applications:read"]
        )
        # The admin's token in a Redis of its own: reading the org back tells the gateway nothing.
        admin = admin_client(budget_sandbox.url, redis.Redis.from_url(base_settings.redis_url))
        jobs = [r["Id"] for r in admin.query_many([OPEN_JOBS])[0]]
        assert services(app).jobs.refresh().outcome == "refreshed"
        stack = BudgetStack(
            settings=settings,
            app=app,
            redis=redis_client,
            sandbox_url=budget_sandbox.url,
            admin=admin,
            headers={"Authorization": f"Bearer {secret}"},
            jobs=jobs,
        )
        log_dir = Path(tmp_path_factory.mktemp("budget-logs"))
        stack.worker = start_worker(settings, app.extensions["celery"], log_dir)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        if stack.worker is not None:
            stack.worker.stop()
