"""`job.closed` webhooks ([19]): sent from the job lifecycle stream, whichever path saw the job
close, to every endpoint subscribed to it, once.

Before [22]'s lifecycle events, ``EventPublisher.on_job_closed`` had no caller: the receiver
got nothing when a job closed. Two real paths here, each from a job closed in the sandbox org:
the full reload (the signed refresh hook an org Flow calls; the beat refresh and the
reconciliation take the same path) and the `ats-gateway events` subscriber (change events over
the sandbox's Pub/Sub API). Real processes: a Celery worker and beat, the subscriber, a receiver
on 127.0.0.1; a private Redis database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from stack import (
    FAST_DELIVERY,
    events_overrides,
    running_beat,
    running_sandbox,
    running_subscriber,
    secret_headers,
    wait_for,
)
from standardwebhooks import Webhook

from ats_gateway.api.jobs import sign_hook
from ats_gateway.embedded import ManagedProcess
from ats_gateway.services.jobs.lifecycle import STREAM_KEY
from webhooks.harness import Receiver

JOB = "bpats__Job__c"
HOOK_SECRET = "job-closed-hook-secret"


@pytest.fixture(scope="module")
def sandbox_org():
    with running_sandbox(pubsub=True, seed="demo", seed_jobs=12) as handle:
        yield handle


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides(sandbox_org) -> dict[str, Any]:
    return {
        **FAST_DELIVERY,
        "jobs_hook_secret": HOOK_SECRET,
        **events_overrides(sandbox_org),
        "job_events_poll_seconds": 0.5,
        "webhook_retry_base_seconds": 0.2,
        "webhook_retry_max_seconds": 0.5,
    }


@pytest.fixture(scope="module")
def beat(stack_settings, worker, tmp_path_factory) -> Iterator[ManagedProcess]:
    process = running_beat(stack_settings, tmp_path_factory.mktemp("job-closed-beat"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def receivers(tmp_path_factory) -> Iterator[tuple[Receiver, Receiver]]:
    logs = tmp_path_factory.mktemp("job-closed-receivers")
    wanted = Receiver(logs / "wanted.jsonl").start()
    other = Receiver(logs / "other.jsonl").start()
    yield wanted, other
    wanted.stop()
    other.stop()


@pytest.fixture(scope="module")
def endpoints(gateway_app, stack_redis, receivers) -> dict[str, Any]:
    """One endpoint for `job.closed`, one of another key for application events only."""
    http = gateway_app.test_client()
    made = {}
    for name, receiver, events in (
        ("wanted", receivers[0], ["job.closed"]),
        ("other", receivers[1], ["application.delivered"]),
    ):
        headers = secret_headers(stack_redis, ["webhooks:manage"], name=f"job-closed {name}")
        response = http.post(
            "/v1/webhooks", json={"url": receiver.url, "events": events}, headers=headers
        )
        assert response.status_code == 201, response.json
        made[name] = response.json
    return made


def open_job(admin) -> str:
    title = f"Closing soon {uuid.uuid4().hex[:8]}"
    return admin.create(
        JOB,
        {
            "Name": title,
            "bpats__Job_Title__c": title,
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
            "bpats__Department__c": "Finance",
        },
    )


def closed_events(receiver: Receiver, secret: str, job_id: str) -> list[dict]:
    """The verified `job.closed` deliveries about ``job_id``."""
    found = []
    for request in receiver.requests():
        headers = request["headers"]
        payload = Webhook(secret).verify(request["body"], headers)  # raises if badly signed
        if payload["type"] == "job.closed" and payload["data"]["job_id"] == job_id:
            found.append({**payload, "webhook-id": headers["webhook-id"]})
    return found


def hook(gateway_app) -> Any:
    body = b"{}"
    headers = {**sign_hook(HOOK_SECRET, body), "Content-Type": "application/json"}
    return gateway_app.test_client().post("/v1/hooks/jobs-changed", data=body, headers=headers)


def read_up(stack_redis) -> bool:
    newest = stack_redis.xrevrange(STREAM_KEY, count=1)
    cursor = stack_redis.get("ats-gateway:jobs:lifecycle:cursor:webhooks")
    return bool(newest) and cursor == newest[0][0]


def test_job_closed_reaches_subscribed_endpoints_from_the_full_reload_and_from_change_events(
    gateway_app, admin, stack_settings, stack_redis, worker, beat, receivers, endpoints, tmp_path
):
    wanted, other = receivers
    secret = endpoints["wanted"]["secret"]

    # Path 1: the full reload (the signed refresh hook; no subscriber is running).
    first = open_job(admin)
    assert hook(gateway_app).status_code == 202
    wait_for(
        lambda: stack_redis.hexists("ats-gateway:jobs:lifecycle:digests", first[:15]),
        20,
        what="the job in the lifecycle's public set",
    )
    admin.update(JOB, first, {"bpats__Status__c": "Closed"})
    assert hook(gateway_app).status_code == 202
    got = wait_for(lambda: closed_events(wanted, secret, first), 20, what="job.closed (reload)")
    assert got[0]["data"]["status"] == "closed"

    # Path 2: the change-event subscriber.
    events = running_subscriber(stack_settings, tmp_path / "events.log", streaming=stack_redis)
    try:
        second = open_job(admin)
        wait_for(
            lambda: stack_redis.hexists("ats-gateway:jobs:lifecycle:digests", second[:15]),
            20,
            what="the new job through change events",
        )
        admin.update(JOB, second, {"bpats__Status__c": "Closed"})
        wait_for(lambda: closed_events(wanted, secret, second), 20, what="job.closed (events)")
        wait_for(lambda: read_up(stack_redis), 20, what="the lifecycle stream read up")
    finally:
        events.stop()

    # Once each, to the subscribed endpoint only.
    assert len(closed_events(wanted, secret, first)) == 1
    assert len(closed_events(wanted, secret, second)) == 1
    assert other.requests() == []
    types = {json.loads(r["body"])["type"] for r in wanted.requests()}
    assert types == {"job.closed"}
