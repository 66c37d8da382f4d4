"""Change events end to end: the sandbox org's Pub/Sub API (real gRPC on 127.0.0.1), a real
Redis, a real `ats-gateway events` process, and the gateway's HTTP API.

The admin user changes jobs in the org over REST; the test waits (with deadlines, never
wall-clock assertions) until `/v1/jobs` shows the change. Org calls are counted with the
sandbox's usage counter (`/__sandbox__/usage`) and the subscriber's own state in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import requests
from stack import FAST_DELIVERY, events_overrides, running_subscriber, wait_for

from ats_gateway.config import Settings
from ats_gateway.embedded import ManagedProcess
from ats_gateway.embedded.stack import start_worker
from ats_gateway.security import KeyStore
from sandbox_org import create_app as create_sandbox
from sandbox_org.server import start_in_thread

JOB = "bpats__Job__c"
APPLICATION = "bpats__Job_Board_Application__c"
STATUS = "bpats__Status__c"
STATE_KEY = "ats-gateway:events:state"


@pytest.fixture(scope="module")
def sandbox_org():
    """The sandbox org with its Pub/Sub API on a free port (keepalives every second; a stream
    owed no events closed after 2 s, as Salesforce does after 60 s: the subscriber keeps
    events owed, so every test here also shows it is never cut off for idling)."""
    handle = start_in_thread(
        create_sandbox(
            {
                "seed": "demo",
                "seed_jobs": 300,
                "faults_enabled": True,
                "pubsub_idle_close_seconds": 2.0,
            }
        ),
        pubsub_port=0,
        pubsub_keepalive=1.0,
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides(sandbox_org) -> dict[str, Any]:
    return {
        **FAST_DELIVERY,
        "jobs_staleness_seconds": 3600,
        **events_overrides(sandbox_org),
        "events_stream_retry_seconds": 2.0,
    }


@pytest.fixture(scope="module")
def settings(stack_settings) -> Settings:
    return stack_settings


@pytest.fixture(scope="module")
def store(stack_redis) -> redis.Redis:
    return stack_redis


@pytest.fixture(scope="module")
def sandbox(sandbox_org):
    return sandbox_org


class Subscriber:
    """The `ats-gateway events` process, restartable."""

    def __init__(self, settings: Settings, log_path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        self.process = running_subscriber(self.settings, self.log_path)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture(scope="module")
def subscriber(settings, store, tmp_path_factory) -> Iterator[Subscriber]:
    sub = Subscriber(settings, tmp_path_factory.mktemp("events") / "events.log")
    sub.start()
    wait_for(lambda: state(store).get("mode") == "stream", 60, what="the stream")
    yield sub
    sub.stop()


@pytest.fixture(scope="module")
def gateway(gateway_app):
    return gateway_app


@pytest.fixture(scope="module")
def api(gateway, store):
    _, key = KeyStore(store).create(
        kind="secret", name="events tests", scopes=["jobs:read"], rate_limit="100000/minute"
    )
    client = gateway.test_client()
    headers = {"Authorization": f"Bearer {key}"}

    class Api:
        def get(self, path: str, **params: Any):
            return client.get(path, query_string=params, headers=headers)

    return Api()


@pytest.fixture(scope="module")
def org(admin):
    return admin


def state(store: redis.Redis) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in store.hgetall(STATE_KEY).items()}


def reconciliations(store: redis.Redis) -> int:
    return int(state(store).get("reconciliations") or 0)


def usage(sandbox) -> int:
    return requests.get(sandbox.url + "/__sandbox__/usage", timeout=5).json()["used"]


def faults(sandbox, **values: Any) -> dict[str, Any]:
    response = requests.post(sandbox.url + "/__sandbox__/faults", json=values, timeout=5)
    assert response.ok, response.text
    return response.json()


def public_job(api, index: int = -1) -> dict[str, Any]:
    body = api.get("/v1/jobs", limit=5).get_json()
    assert len(body["data"]) == 5, body
    return body["data"][index]


def title_of(api, job_id: str) -> str | None:
    response = api.get(f"/v1/jobs/{job_id}")
    return response.get_json()["data"]["title"] if response.status_code == 200 else None


def new_job(org, title: str) -> str:
    return org.create(
        JOB,
        {
            "Name": title[:80],
            "bpats__Job_Title__c": title,
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
            "bpats__Department__c": "Engineering",
        },
    )


# --------------------------------------------------------------------------- tests


def test_closed_job_leaves_listings_and_answers_410(api, org, subscriber):
    job = public_job(api)
    total = api.get("/v1/jobs").get_json()["meta"]["total"]
    etag = api.get("/v1/jobs").headers["ETag"]
    org.update(JOB, job["id"], {"bpats__Status__c": "Closed"})
    gone = wait_for(
        lambda: (r := api.get(f"/v1/jobs/{job['id']}")).status_code == 410 and r,
        what="410 for the closed job",
    )
    assert gone.mimetype == "application/problem+json"
    listing = api.get("/v1/jobs")
    assert listing.get_json()["meta"]["total"] == total - 1
    assert listing.headers["ETag"] != etag
    assert job["id"] not in {j["id"] for j in api.get("/v1/jobs", limit=100).get_json()["data"]}
    # A job that never was public is still a plain 404.
    assert api.get("/v1/jobs/a0M000000000000AAA").status_code == 404


def test_new_public_job_appears(api, org, subscriber):
    word = "Zeppelin" + uuid.uuid4().hex[:6]
    job_id = new_job(org, f"{word} Pilot")
    found = wait_for(
        lambda: api.get("/v1/jobs", q=word).get_json()["data"], what="the new job listed"
    )
    assert [j["id"] for j in found] == [job_id]


def test_edited_title_shows(api, org, subscriber, sandbox, store):
    job = public_job(api)
    before = reconciliations(store)
    new_title = f"Edited {uuid.uuid4().hex[:8]}"
    calls = usage(sandbox)
    org.update(JOB, job["id"], {"bpats__Job_Title__c": new_title})
    wait_for(lambda: title_of(api, job["id"]) == new_title, what="the new title")
    # Applied from the event alone: the only org call is the admin's update.
    assert usage(sandbox) - calls == 1
    assert reconciliations(store) == before


def test_killed_subscriber_resumes_from_its_replay_id(api, org, subscriber, sandbox, store):
    job = public_job(api)
    before = reconciliations(store)
    subscriber.kill()
    new_title = f"While down {uuid.uuid4().hex[:8]}"
    org.update(JOB, job["id"], {"bpats__Job_Title__c": new_title})
    calls = usage(sandbox)
    subscriber.start()
    wait_for(lambda: title_of(api, job["id"]) == new_title, 60, what="the missed change")
    assert reconciliations(store) == before  # resumed, not reloaded
    assert usage(sandbox) == calls  # no org call at all to catch up


def test_replay_id_too_old_reconciles_exactly_once(api, org, subscriber, sandbox, store):
    job = public_job(api)
    subscriber.kill()
    before = reconciliations(store)
    faults(sandbox, pubsub_expire=True)  # every replay id issued so far is out of retention
    first = f"Expired {uuid.uuid4().hex[:8]}"
    org.update(JOB, job["id"], {"bpats__Job_Title__c": first})
    subscriber.start()
    wait_for(lambda: reconciliations(store) == before + 1, 60, what="one reconciliation")
    assert state(store)["last_reconcile_reason"] == "replay_too_old"
    wait_for(lambda: title_of(api, job["id"]) == first, what="the change, by the reconciliation")
    wait_for(lambda: state(store).get("mode") == "stream", what="the stream again")
    second = f"After {uuid.uuid4().hex[:8]}"
    org.update(JOB, job["id"], {"bpats__Job_Title__c": second})
    wait_for(lambda: title_of(api, job["id"]) == second, what="a change by event again")
    assert reconciliations(store) == before + 1


def test_overflow_event_reconciles(api, subscriber, sandbox, store):
    before = reconciliations(store)
    faults(sandbox, pubsub_emit={"entity": JOB, "changeType": "GAP_OVERFLOW"})
    wait_for(lambda: reconciliations(store) == before + 1, what="a reconciliation")
    assert state(store)["last_reconcile_reason"] == "overflow"


def test_endpoint_down_falls_back_to_delta_polling_and_back(
    api, gateway, org, subscriber, sandbox, store
):
    job = public_job(api)
    before = reconciliations(store)
    faults(sandbox, pubsub_down=True)
    try:
        wait_for(lambda: state(store).get("mode") == "polling", 30, what="polling mode")
        with gateway.test_client() as client:
            events = client.get("/readyz").get_json()["checks"]["events"]
        assert events["mode"] == "polling"
        assert "confirmed_age_seconds" in events
        polled = f"Polled {uuid.uuid4().hex[:8]}"
        org.update(JOB, job["id"], {"bpats__Job_Title__c": polled})
        wait_for(lambda: title_of(api, job["id"]) == polled, 30, what="the change, by polling")
        closed = public_job(api, 0)
        assert closed["id"] != job["id"]
        org.delete(JOB, closed["id"])
        wait_for(
            lambda: api.get(f"/v1/jobs/{closed['id']}").status_code == 410,
            30,
            what="the deleted job gone, by polling",
        )
    finally:
        faults(sandbox, pubsub_down=False)
    wait_for(lambda: state(store).get("mode") == "stream", 30, what="the stream back")
    streamed = f"Streamed {uuid.uuid4().hex[:8]}"
    org.update(JOB, job["id"], {"bpats__Job_Title__c": streamed})
    wait_for(lambda: title_of(api, job["id"]) == streamed, what="the change, by event")
    assert reconciliations(store) == before  # polling never reloads in full


def test_idle_costs_no_org_calls(subscriber, sandbox, store):
    """With nothing changing, keepalives flow and the org is not called."""
    calls = usage(sandbox)
    confirmed = float(state(store)["confirmed_at"])
    wait_for(
        lambda: float(state(store)["confirmed_at"]) > confirmed + 2,
        what="two seconds of keepalives",
    )
    assert usage(sandbox) == calls


@pytest.fixture(scope="module")
def delivered(gateway, store, api, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """An application the gateway delivered (a real worker), and how to read its status."""
    worker = start_worker(
        gateway.config["SETTINGS"], gateway.extensions["celery"], tmp_path_factory.mktemp("w")
    )
    try:
        _, key = KeyStore(store).create(
            kind="secret", name="board", scopes=["applications:write", "applications:read"]
        )
        http = gateway.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        tag = uuid.uuid4().hex[:8]
        accepted = http.post(
            "/v1/applications",
            json={
                "job_id": public_job(api, 1)["id"],
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": f"ada@{tag}.example.com",
                "consent": True,
            },
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.get_json()
        app_id = accepted.get_json()["id"]

        def status() -> dict[str, Any]:
            return http.get(f"/v1/applications/{app_id}", headers=headers).get_json()

        view = wait_for(lambda: (s := status())["status"] == "delivered" and s, 60)
    finally:
        worker.stop()
    yield SimpleNamespace(id=app_id, salesforce_id=view["salesforce_id"], view=view, status=status)


def org_status_becomes(org, delivered, value: str, how: str) -> dict[str, Any]:
    org.update("bpats__Job_Board_Application__c", delivered.salesforce_id, {STATUS: value})
    return wait_for(
        lambda: (s := delivered.status()).get("org_status") == value and s, 30, what=how
    )


def test_org_status_of_a_delivered_application_is_recorded(org, subscriber, store, delivered):
    assert "org_status" not in delivered.view  # its own CREATE event changes nothing
    seen = org_status_becomes(org, delivered, "In Review", "the status, by event")
    assert seen["status"] == "delivered"
    entries = store.xrevrange("ats:events:application_status", count=5)
    mine = [e for _, e in entries if e[b"application_id"].decode() == delivered.id]
    assert mine and mine[0][b"org_status"] == b"In Review"
    assert mine[0][b"salesforce_id"].decode() == delivered.salesforce_id


def test_each_channel_falls_back_and_recovers_on_its_own(
    api, org, subscriber, sandbox, store, gateway, delivered
):
    """[23] Change Data Capture off for jobs only: jobs are polled, while application status
    changes still arrive as events (they used to wait for the job stream, for ever if the
    setting was permanent). Then off for applications only: their status changes arrive by
    polling while jobs stream. /readyz says which channel is in which mode."""
    job = public_job(api, 2)
    faults(sandbox, pubsub_cdc={JOB: False}, pubsub_drop_streams=True)
    try:
        wait_for(lambda: state(store).get("jobs_mode") == "polling", 30, what="jobs polling")
        assert state(store)["mode"] == "polling"  # degraded as a whole
        wait_for(lambda: state(store).get("applications_mode") == "stream", 30)
        with gateway.test_client() as client:
            events = client.get("/readyz").get_json()["checks"]["events"]
        assert events["channels"]["jobs"]["mode"] == "polling", events
        assert events["channels"]["applications"] == {"mode": "stream"}, events
        polled = f"NoCdc {uuid.uuid4().hex[:8]}"
        org.update(JOB, job["id"], {"bpats__Job_Title__c": polled})
        wait_for(lambda: title_of(api, job["id"]) == polled, 30, what="the change, by polling")
        org_status_becomes(org, delivered, "Processed", "the status, by event, jobs polling")
    finally:
        faults(sandbox, pubsub_cdc={JOB: True})
    wait_for(lambda: state(store).get("mode") == "stream", 30, what="the stream back")

    faults(sandbox, pubsub_cdc={APPLICATION: False}, pubsub_drop_streams=True)
    try:
        wait_for(lambda: state(store).get("applications_mode") == "polling", 30)
        assert state(store)["jobs_mode"] == "stream"
        org_status_becomes(org, delivered, "Rejected", "the status, by polling")
        streamed = f"Cdc {uuid.uuid4().hex[:8]}"
        org.update(JOB, job["id"], {"bpats__Job_Title__c": streamed})
        wait_for(lambda: title_of(api, job["id"]) == streamed, 30, what="the change, by event")
    finally:
        faults(sandbox, pubsub_cdc={APPLICATION: True})
    wait_for(lambda: state(store).get("mode") == "stream", 30, what="the stream back")
    entries = store.xrevrange("ats:events:application_status", count=10)
    mine = [e[b"org_status"] for _, e in entries if e[b"application_id"].decode() == delivered.id]
    assert mine[:2] == [b"Rejected", b"Processed"], mine  # each change once, newest first


def test_cdc_not_enabled_falls_back_to_polling(api, org, subscriber, sandbox, store):
    """An org where Change Data Capture is off for jobs: the channel cannot be subscribed,
    the gateway polls deltas instead, and streams again once an admin turns CDC on."""
    job = public_job(api, 2)
    faults(sandbox, pubsub_cdc={JOB: False}, pubsub_drop_streams=True)
    try:
        wait_for(lambda: state(store).get("mode") == "polling", 30, what="polling mode")
        polled = f"NoCdc {uuid.uuid4().hex[:8]}"
        org.update(JOB, job["id"], {"bpats__Job_Title__c": polled})
        wait_for(lambda: title_of(api, job["id"]) == polled, 30, what="the change, by polling")
    finally:
        faults(sandbox, pubsub_cdc={JOB: True})
    wait_for(lambda: state(store).get("mode") == "stream", 30, what="the stream back")
