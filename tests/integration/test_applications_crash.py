"""A worker killed with SIGKILL in the middle of a batch loses nothing and duplicates nothing.

The org answers slowly (injected latency), so the kill lands while the batch's create call is
in flight: the sandbox still commits it after the worker is gone, exactly the case where only
the dedupe query of the next attempt stands between a redelivery and a duplicate.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import requests
from sandbox_stack import admin_client, demo_connection

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig
from ats_gateway.extensions import services
from ats_gateway.security import KeyStore
from ats_gateway.services.delivery import Outbox
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread

APPLICATION = "bpats__Job_Board_Application__c"


def _start_worker(request, *args):
    """`start_worker` of the session's root conftest (several conftest modules share a name)."""
    for plugin in request.config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "start_worker", None)):
            return plugin.start_worker(*args)
    raise RuntimeError("tests/conftest.py:start_worker not found")


def _wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return value


@pytest.fixture(scope="module")
def sandbox():
    handle = start_in_thread(
        create_sandbox({"seed": "demo", "seed_jobs": 10, "faults_enabled": True})
    )
    yield handle
    handle.stop()


@pytest.mark.parametrize("kill_during", ["contacts", "applications"])
def test_sigkill_mid_batch_then_new_worker_delivers_each_exactly_once(
    kill_during, request, sandbox, base_settings, redis_url, tmp_path
):
    settings = base_settings.replace(
        redis_url=redis_url.rsplit("/", 1)[0] + ("/4" if kill_during == "contacts" else "/5"),
        connections={
            "job_portal": demo_connection(sandbox.url, "job_portal"),
            "interview_feedback": ConnectionConfig(name="interview_feedback"),
        },
        rate_limit_ip_submit="100000/minute",
        rate_limit_key_submit="100000/minute",
        delivery_window_seconds=0.1,
        retry_base_delay_seconds=0.2,
        retry_max_delay_seconds=1,
        delivery_lease_seconds=3,
    )
    app = create_app(settings)
    redis_client = services(app).redis
    redis_client.flushdb()
    outbox = Outbox.from_settings(redis_client, "applications", settings)
    _, secret = KeyStore(redis_client).create(
        kind="secret", name="board", scopes=["applications:write", "applications:read"]
    )
    admin = admin_client(sandbox.url, redis_client)
    job = admin.query_many(
        ["SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' LIMIT 1"]
    )[0][0]["Id"]
    tag = "k" + uuid.uuid4().hex[:8]
    # Half the candidates are new (Contacts to create), half known already.
    known = [
        {"FirstName": "Grace", "LastName": f"K{i}", "Email": f"grace.{i}@{tag}.example.com"}
        for i in range(0, 400, 2)
    ]
    assert all(o.success for o in admin.bulk_create("Contact", known))

    worker = _start_worker(request, settings, app.extensions["celery"], tmp_path)
    replacement = None
    try:
        requests.post(sandbox.url + "/__sandbox__/faults", json={"latency_ms": 700}, timeout=5)
        items = [
            {
                "job_id": job,
                "first_name": "Grace",
                "last_name": f"Hopper {i}",
                "email": f"grace.{i}@{tag}.example.com",
            }
            for i in range(400)
        ]
        response = app.test_client().post(
            "/v1/applications/batch",
            json={"applications": items},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 207
        ids = [o["id"] for o in response.json["items"]]
        assert len(ids) == 400

        def applications() -> list[dict]:
            soql = (
                f"SELECT bpats__Email__c FROM {APPLICATION} "
                f"WHERE bpats__Email__c LIKE '%@{tag}.example.com'"
            )
            return [r for page in admin.query(soql).pages() for r in page.records]

        def stage_reached():
            record = outbox.get(ids[1])  # a new candidate
            progress = (record or {}).get("progress") or {}
            if kill_during == "contacts":
                return record and record["status"] == "delivering"
            return progress.get("create_attempted")

        _wait(stage_reached, 20, f"the {kill_during} step")
        time.sleep(0.3)  # the create request is on the wire (the org sleeps 700 ms first)
        worker.kill()
        assert not worker.alive()
        assert outbox.counts()["delivering"] == 400  # nothing was settled by the dead worker

        if kill_during == "applications":
            # The org finishes the request the dead worker sent: committed, never recorded.
            _wait(lambda: len(applications()) == 400, 10, "the orphaned create to commit")
        requests.post(sandbox.url + "/__sandbox__/faults", json={"latency_ms": 0}, timeout=5)
        replacement = _start_worker(request, settings, app.extensions["celery"], tmp_path)

        def settled():
            records = [outbox.get(i) for i in ids]
            return (
                all(r and r["status"] not in ("queued", "delivering") for r in records) and records
            )

        records = _wait(settled, 40, "redelivery by the new worker", interval=0.2)
        assert Counter(r["status"] for r in records) == {"delivered": 400}
        per_email = Counter(r["bpats__Email__c"] for r in applications())
        assert len(per_email) == 400 and set(per_email.values()) == {1}
        contacts = [
            r
            for page in admin.query(
                f"SELECT Email FROM Contact WHERE Email LIKE '%@{tag}.example.com'"
            ).pages()
            for r in page.records
        ]
        assert len(contacts) == 400  # 200 known + 200 created once, whatever the kill hit
    finally:
        requests.delete(sandbox.url + "/__sandbox__/faults", timeout=5)
        worker.stop()
        if replacement is not None:
            replacement.stop()
