"""Webhooks end to end: the HTTP API, a real Redis, a real Celery worker process, the sandbox
org over HTTP, and a real receiver process on 127.0.0.1 that records what it got.

Retries use a short schedule (base 0.2 s, cap 0.5 s, window 2 s: 10 attempts); production's
is 5 s .. 2 h over 24 h (``webhook_retry_*`` settings).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sandbox_stack import demo_connection, wait_for
from standardwebhooks import Webhook

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig
from ats_gateway.extensions import services
from ats_gateway.security import KeyStore, webhooks_cli
from ats_gateway.services.delivery import Outbox
from ats_gateway.services.webhooks import EndpointRegistry, WebhookSender
from ats_gateway.services.webhooks.egress import RefusedURL, resolve
from ats_gateway.tasks import webhooks as hooks_tasks
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread
from webhooks.harness import Receiver


def _start_worker(request, *args):
    for plugin in request.config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "start_worker", None)):
            return plugin.start_worker(*args)
    raise RuntimeError("tests/conftest.py:start_worker not found")


@pytest.fixture(scope="module")
def sandbox():
    handle = start_in_thread(create_sandbox({"seed": "demo", "seed_jobs": 10}))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def module_db(redis_databases) -> Iterator[str]:
    """This module's own database of the session Redis (leased: no other module, in this
    runner or another, flushes it while the module runs)."""
    with redis_databases.lease() as url:
        yield url


@pytest.fixture(scope="module")
def stack(request, sandbox, base_settings, module_db, tmp_path_factory):
    settings = base_settings.replace(
        redis_url=module_db,
        connections={
            "job_portal": demo_connection(sandbox.url, "job_portal"),
            "interview_feedback": ConnectionConfig(name="interview_feedback"),
        },
        rate_limit_key_submit="100000/minute",
        delivery_window_seconds=0.2,
        retry_base_delay_seconds=0.2,
        retry_max_delay_seconds=1,
        webhook_retry_base_seconds=0.2,
        webhook_retry_max_seconds=0.5,
        webhook_retry_window_seconds=2.0,
        webhook_connect_timeout=1.0,
        webhook_deadline_seconds=2.0,
        webhook_breaker_base_seconds=0.2,
        webhook_breaker_max_seconds=0.5,
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    redis_client = services(app).redis
    redis_client.flushdb()
    store = KeyStore(redis_client)
    scopes = ["applications:write", "applications:read", "webhooks:manage"]
    key_a, secret_a = store.create(kind="secret", name="board A", scopes=scopes)
    key_b, secret_b = store.create(kind="secret", name="board B", scopes=scopes)
    worker = _start_worker(
        request, settings, app.extensions["celery"], tmp_path_factory.mktemp("hooks-worker")
    )
    http = app.test_client()
    yield SimpleNamespace(
        settings=settings,
        app=app,
        http=http,
        redis=redis_client,
        a={"Authorization": f"Bearer {secret_a}"},
        b={"Authorization": f"Bearer {secret_b}"},
        key_a=key_a,
        key_b=key_b,
        outbox=Outbox.from_settings(redis_client, "applications", settings),
        worker=worker,
        sandbox=sandbox,
        jobs=[],
        tmp=tmp_path_factory.mktemp("receivers"),
    )
    worker.stop()


@pytest.fixture
def receiver(stack):
    started = Receiver(stack.tmp / f"{uuid.uuid4().hex}.jsonl").start()
    yield started
    started.stop()


def register(stack, headers, url, events=None):
    body = {"url": url} if events is None else {"url": url, "events": events}
    response = stack.http.post("/v1/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["secret"].startswith("whsec_")
    return response.json


def job_id(stack) -> str:
    if stack.jobs:
        return stack.jobs[0]
    from sandbox_stack import admin_client

    admin = admin_client(stack.sandbox.url, stack.redis)
    rows = admin.query_many(
        ["SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' ORDER BY Name LIMIT 1"]
    )[0]
    stack.jobs.append(rows[0]["Id"])
    return stack.jobs[0]


def submit(stack, headers, **extra) -> str:
    tag = uuid.uuid4().hex[:10]
    body = {
        "job_id": job_id(stack),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{tag}@example.com",
        "consent": True,
        "source": "Job Board",
        **extra,
    }
    response = stack.http.post("/v1/applications", json=body, headers=headers)
    assert response.status_code == 202, response.json
    return response.json["id"]


def events_of(receiver, application_id, event_type=None):
    found = []
    for record in receiver.requests():
        body = json.loads(record["body"])
        if body["data"].get("application_id") != application_id:
            continue
        if event_type is None or body["type"] == event_type:
            found.append(record)
    return found


# --------------------------------------------------------------------------- tests


def test_delivered_application_produces_one_verified_signed_event(stack, receiver):
    endpoint = register(stack, stack.a, receiver.url, ["application.delivered"])
    other = Receiver(stack.tmp / "other.jsonl").start()
    try:
        register(stack, stack.b, other.url)
        application_id = submit(stack, stack.a, external_id="board-ref-42")
        wait_for(lambda: events_of(receiver, application_id), 30, 0.1, what="the webhook")
        wait_for(lambda: stack.outbox.get(application_id)["status"] == "delivered", 10)
        [record] = events_of(receiver, application_id)
        payload = Webhook(endpoint["secret"]).verify(record["body"], record["headers"])
        assert payload["type"] == "application.delivered"
        data = payload["data"]
        assert data["status"] == "delivered" and data["external_id"] == "board-ref-42"
        assert "email" not in record["body"] and "Lovelace" not in record["body"]
        assert record["headers"]["webhook-id"].startswith("msg_")
        # no event of A's application at B's endpoint
        assert events_of(other, application_id) == []
        # the reference never reached the org as a field (the org would have refused it) and
        # the status record is what the event says
        assert stack.outbox.get(application_id)["status"] == "delivered"
    finally:
        other.stop()
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_receiver_failing_three_times_gets_the_event_once_more_with_the_same_id(stack, receiver):
    endpoint = register(stack, stack.a, receiver.url, ["application.delivered"])
    try:
        receiver.fail_next(3)
        application_id = submit(stack, stack.a)
        wait_for(
            lambda: any(r["answered"] == 200 for r in events_of(receiver, application_id)),
            30,
            0.1,
            what="a successful delivery after 3 failures",
        )
        records = events_of(receiver, application_id)
        # wait a little longer than the retry schedule: no further attempt comes
        queue = hooks_tasks.runtime(stack.app).queue(endpoint["id"])
        wait_for(lambda: queue.counts()["queued"] == 0 and queue.counts()["delivering"] == 0, 10)
        records = events_of(receiver, application_id)
        assert [r["answered"] for r in records] == [500, 500, 500, 200]
        assert len({r["headers"]["webhook-id"] for r in records}) == 1
        Webhook(endpoint["secret"]).verify(records[-1]["body"], records[-1]["headers"])
    finally:
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_receiver_down_for_the_whole_window_dead_letters_then_replays(stack, tmp_path):
    down = Receiver(tmp_path / "down.jsonl")  # not started: connection refused
    endpoint = register(stack, stack.a, down.url, ["application.delivered"])
    queue = hooks_tasks.runtime(stack.app).queue(endpoint["id"])
    try:
        application_id = submit(stack, stack.a)
        wait_for(lambda: queue.counts()["dead_letter"] == 1, 40, 0.2, what="a dead letter")
        [letter] = queue.dead_letters()
        assert letter["error"]["code"] == "UNREACHABLE"
        assert (
            letter["attempts"]
            == hooks_tasks.runtime(stack.app)
            .sender(EndpointRegistry(stack.redis).get(endpoint["id"]))
            .attempts_limit
        )
        down.start()
        args = SimpleNamespace(all=True, endpoint=None, event=None)
        assert webhooks_cli.cmd_dlq_replay(args, stack.settings) == 0
        wait_for(lambda: events_of(down, application_id), 20, 0.1, what="the replayed event")
        [record] = events_of(down, application_id)
        assert record["headers"]["webhook-id"] == letter["id"]
        Webhook(endpoint["secret"]).verify(record["body"], record["headers"])
        assert queue.counts()["dead_letter"] == 0
    finally:
        down.stop()
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_org_status_change_from_the_stream_reaches_only_the_submitting_key(stack, receiver):
    """[12]'s subscriber appends the org's status changes to a Redis stream; this test
    appends the entry itself (that subscriber is not on this branch) and runs the sweep on
    the real worker."""
    mine = register(stack, stack.a, receiver.url, ["application.status_changed"])
    other = Receiver(stack.tmp / "other-status.jsonl").start()
    theirs = register(stack, stack.b, other.url, ["application.status_changed"])
    try:
        application_id = submit(stack, stack.a, external_id="ref-7")
        wait_for(lambda: stack.outbox.get(application_id)["status"] == "delivered", 30)
        with stack.app.app_context():
            hooks_tasks.read_status_changes(hooks_tasks.runtime(stack.app))  # sets the cursor
        stack.redis.xadd(
            hooks_tasks.STATUS_STREAM,
            {
                "application_id": application_id,
                "salesforce_id": "a0X000000000001",
                "org_status": "Interview",
                "changed_at": "1767225600000",
                "change_type": "UPDATE",
            },
        )
        stack.app.extensions["celery"].send_task(hooks_tasks.SWEEP_TASK)
        wait_for(lambda: events_of(receiver, application_id), 10, 0.1, what="status_changed")
        [record] = events_of(receiver, application_id)
        payload = Webhook(mine["secret"]).verify(record["body"], record["headers"])
        assert payload["type"] == "application.status_changed"
        assert payload["data"]["status"] == "Interview"
        assert payload["data"]["external_id"] == "ref-7"
        assert events_of(other, application_id) == []
    finally:
        other.stop()
        stack.http.delete(f"/v1/webhooks/{mine['id']}", headers=stack.a)
        stack.http.delete(f"/v1/webhooks/{theirs['id']}", headers=stack.b)


def test_private_addresses_are_refused_in_production(stack, receiver):
    prod = create_app(stack.settings.replace(env="production"))
    http = prod.test_client()
    for url, code in [
        ("https://10.1.2.3/hook", "private_address"),
        ("https://127.0.0.1/hook", "private_address"),
        ("https://localhost/hook", "private_address"),
        ("https://169.254.169.254/latest", "private_address"),
        (receiver.url, "scheme_not_allowed"),  # http://127.0.0.1
    ]:
        response = http.post("/v1/webhooks", json={"url": url}, headers=stack.a)
        assert response.status_code == 422, (url, response.json)
        assert response.json["errors"][0]["field"] == "url"
        assert response.json["errors"][0]["code"] == code, url
    # and at send time (an endpoint stored before the rules, or DNS that changed): refused,
    # dead-lettered, nothing sent
    with pytest.raises(RefusedURL):
        resolve("https://127.0.0.1:1/hook", "production")
    endpoint = EndpointRegistry(stack.redis, env="test").create("key:x", receiver.url)
    sender = WebhookSender(endpoint, env="production", applications=None, attempts_limit=5)
    queue = hooks_tasks.runtime(stack.app).queue(endpoint.id)
    queue.put({"type": "webhook.test", "body": "{}"}, item_id="msg_private")
    _token, items = queue.claim(10)
    [outcome] = sender.deliver(items, None)
    assert outcome.kind == "failed" and outcome.body["code"] == "REFUSED_URL"
    assert receiver.requests() == []
    EndpointRegistry(stack.redis).remove(endpoint.id)


def test_publishable_keys_cannot_manage_webhooks(stack):
    store = KeyStore(stack.redis)
    from ats_gateway.security.keys import InvalidKeySpec

    with pytest.raises(InvalidKeySpec):
        store.create(
            kind="publishable",
            name="site",
            scopes=["webhooks:manage"],
            origins=["https://careers.example.com"],
        )
    _, plain = store.create(kind="secret", name="reader", scopes=["applications:read"])
    response = stack.http.get("/v1/webhooks", headers={"Authorization": f"Bearer {plain}"})
    assert response.status_code == 403
