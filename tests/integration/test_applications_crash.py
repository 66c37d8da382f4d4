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
import redis
import requests
from stack import (
    FAST_DELIVERY,
    build_gateway,
    gateway_settings,
    running_worker,
    secret_headers,
)

from ats_gateway.services.delivery import Outbox

APPLICATION = "bpats__Job_Board_Application__c"


def _wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return value


@pytest.fixture(scope="module")
def sandbox_options():
    return {"seed": "demo", "seed_jobs": 10, "faults_enabled": True}


@pytest.mark.parametrize("kill_during", ["contacts", "applications"])
def test_sigkill_mid_batch_then_new_worker_delivers_each_exactly_once(
    kill_during, sandbox_org, redis_databases, base_settings, admin, tmp_path
):
    with redis_databases.lease() as redis_url:
        _kill_mid_batch(kill_during, sandbox_org, admin, base_settings, redis_url, tmp_path)


def _kill_mid_batch(kill_during, sandbox, admin, base_settings, redis_url, tmp_path):
    settings = gateway_settings(
        base_settings,
        redis_url=redis_url,
        sandbox=sandbox,
        connections=["job_portal"],
        **{**FAST_DELIVERY, "delivery_window_seconds": 0.1, "delivery_lease_seconds": 3},
        rate_limit_ip_submit="100000/minute",
        rate_limit_key_submit="100000/minute",
    )
    app = build_gateway(settings)
    redis_client = redis.Redis.from_url(redis_url)
    outbox = Outbox.from_settings(redis_client, "applications", settings)
    secret = secret_headers(redis_client, ["applications:write", "applications:read"], "board")
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

    worker = running_worker(settings, app, tmp_path)
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
            headers=secret,
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
        replacement = running_worker(settings, app, tmp_path)

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
