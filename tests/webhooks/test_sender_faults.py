"""[19] the webhook sender against hostile and awkward receivers, end to end: the HTTP API and
the CLI (as subprocesses), a real Redis, a real Celery worker process, the sandbox org over
HTTP, and real receiver processes on 127.0.0.1 / [::1] (tests/webhooks/receiver.py).

Each test failed on the code before its fix (the commit says how each was checked).
Attempt deadline 2 s, a run's budget 6 s, 3 attempts per event (retry window 0.3 s), at most
2 runs per key at a time, the breaker trips after 3 failed runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from sandbox_stack import demo_connection, wait_for

from ats_gateway import create_app
from ats_gateway.config import PROJECT_ROOT, ConnectionConfig
from ats_gateway.embedded.stack import child_env
from ats_gateway.extensions import services
from ats_gateway.security import KeyStore
from ats_gateway.services.webhooks import event_id
from ats_gateway.services.webhooks.fairness import Breaker
from ats_gateway.tasks import webhooks as hooks_tasks
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread
from webhooks.certs import make_ca, make_server_cert
from webhooks.harness import Receiver
from webhooks.test_webhooks_flow import events_of, register, submit

SCOPES = ["applications:write", "applications:read", "webhooks:manage"]


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
def tls(tmp_path_factory) -> SimpleNamespace:
    """A test CA (the workers trust it through ``webhook_ca_file``), a certificate for
    127.0.0.1 and one for another name."""
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(directory)
    good = make_server_cert(directory, ca, ["127.0.0.1", "localhost"])
    wrong = make_server_cert(directory, ca, ["wrong.example"])
    return SimpleNamespace(ca=ca[0], good=(*good, ca[0]), wrong=(*wrong, ca[0]))


@pytest.fixture(scope="module")
def module_db(redis_databases) -> Iterator[str]:
    """This module's own database of the session Redis (leased: no other module, in this
    runner or another, flushes it while the module runs)."""
    with redis_databases.lease() as url:
        yield url


@pytest.fixture(scope="module")
def stack(request, sandbox, base_settings, module_db, tmp_path_factory, tls):
    settings = base_settings.replace(
        webhook_ca_file=str(tls.ca),
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
        webhook_retry_max_seconds=3.0,
        webhook_retry_window_seconds=0.3,
        webhook_connect_timeout=1.0,
        webhook_deadline_seconds=2.0,
        webhook_run_seconds=6.0,
        webhook_key_concurrency=2,
        webhook_breaker_failures=3,
        webhook_breaker_base_seconds=0.3,
        webhook_breaker_max_seconds=1.0,
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    redis_client = services(app).redis
    redis_client.flushdb()
    store = KeyStore(redis_client)
    key_a, secret_a = store.create(kind="secret", name="board A", scopes=SCOPES)
    key_b, secret_b = store.create(kind="secret", name="board B", scopes=SCOPES)
    worker = _start_worker(
        request, settings, app.extensions["celery"], tmp_path_factory.mktemp("faults-worker")
    )
    yield SimpleNamespace(
        settings=settings,
        app=app,
        http=app.test_client(),
        redis=redis_client,
        a={"Authorization": f"Bearer {secret_a}"},
        b={"Authorization": f"Bearer {secret_b}"},
        key_a=key_a,
        key_b=key_b,
        worker=worker,
        sandbox=sandbox,
        jobs=[],
        tmp=tmp_path_factory.mktemp("fault-receivers"),
        hooks=hooks_tasks.runtime(app),
    )
    worker.stop()


@pytest.fixture
def receivers(stack):
    started: list[Receiver] = []

    def start(host: str = "127.0.0.1", tls=None) -> Receiver:
        receiver = Receiver(stack.tmp / f"{uuid.uuid4().hex}.jsonl", host=host, tls=tls).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def publish(stack, owner: str, n: int = 1, tag: str = "") -> list[str]:
    """``n`` status-change events for ``owner``'s endpoints, through the real publisher (it
    asks the worker to send them); returns their webhook-ids."""
    ids = []
    with stack.app.app_context():
        for i in range(n):
            message_id = event_id("test", tag or uuid.uuid4().hex, str(i))
            data = {"application_id": f"app-{tag}-{i}", "status": "Interview"}
            stack.hooks.publisher.publish(owner, "application.status_changed", data, message_id)
            ids.append(message_id)
    return ids


def cli(stack, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ats_gateway.cli", *argv],
        env={**os.environ, **child_env(stack.settings)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def worker_threads(stack) -> int:
    return len(os.listdir(f"/proc/{stack.worker.pid}/task"))


# --------------------------------------------------------------------------- tests


def test_drip_receivers_cost_one_deadline_and_never_starve_another_key(stack, receivers):
    """4 endpoints of key A on a receiver that answers a byte every 0.5 s (urllib3's per-read
    timeout never fired: the worker's 4 threads were held for as long as it dripped), and one
    healthy endpoint of key B."""
    drip = receivers()
    drip.control(drip=0.5)
    healthy = receivers()
    dripping = [
        register(stack, stack.a, f"{drip.url}/{i}", ["application.status_changed"])
        for i in range(4)
    ]
    mine = register(stack, stack.b, healthy.url, ["application.status_changed"])
    try:
        publish(stack, f"key:{stack.key_a.id}", tag="drip")
        [theirs] = publish(stack, f"key:{stack.key_b.id}", tag="healthy")
        wait_for(
            lambda: [r for r in healthy.requests() if r["headers"]["webhook-id"] == theirs],
            30,
            0.1,
            what="key B's event while key A's receivers drip",
        )
        # every dripped event is retried after its deadline and ends dead-lettered: none lost
        queues = [stack.hooks.queue(e["id"]) for e in dripping]
        wait_for(
            lambda: all(q.counts()["dead_letter"] == 1 for q in queues),
            90,
            0.2,
            what="the dripped events dead-lettered",
        )
        for queue in queues:
            [letter] = queue.dead_letters()
            assert letter["error"]["code"] == "UNREACHABLE"
            assert "no whole answer within 2 s" in letter["error"]["message"]
            assert letter["attempts"] == 3
        # no attempt beyond the 3 each (an attempt may end before a loaded receiver logs it)
        assert 4 <= len(drip.requests()) <= 4 * 3
        # never more than the key's 2 slots held at once, across the 4 endpoints
        assert drip.max_open() <= 2
        # and each endpoint's breaker tripped after its 3 failed runs in a row
        for endpoint in dripping:
            assert stack.redis.hget(Breaker.key(endpoint["id"]), "trips") is not None
    finally:
        for endpoint in [*dripping]:
            stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)
        stack.http.delete(f"/v1/webhooks/{mine['id']}", headers=stack.b)


def test_1000_events_once_each_and_no_more_threads_than_after_10(stack, receivers):
    """The receiver answers 200 with a body on a kept-alive connection: the old sender
    returned the connection unread and resent 10 of 100 events; and each send run left a
    lease-heartbeat thread behind."""
    receiver = receivers()
    receiver.control(body='{"ok":true,"note":"' + "x" * 300 + '"}')
    endpoint = register(stack, stack.a, receiver.url, ["application.status_changed"])
    owner = f"key:{stack.key_a.id}"
    try:
        sent = publish(stack, owner, 10, tag="first")
        wait_for(lambda: len(receiver.requests()) >= 10, 30, 0.1, what="10 events")
        after_10 = worker_threads(stack)
        rounds = 0
        while len(sent) < 1000:
            sent += publish(stack, owner, 90, tag=f"round-{rounds}")
            rounds += 1
            total = len(sent)
            wait_for(lambda: len(receiver.requests()) >= total, 30, 0.05, what="a round")  # noqa: B023
        after_1000 = worker_threads(stack)
        queue = stack.hooks.queue(endpoint["id"])
        wait_for(lambda: queue.counts()["queued"] == 0, 10, 0.1)
        ids = [r["headers"]["webhook-id"] for r in receiver.requests()]
        assert sorted(ids) == sorted(sent)  # each event exactly once
        assert rounds >= 11  # as many send runs at least (the leak was a thread per run)
        # Celery's own threads come and go by one or two; the leak was one per run
        assert after_1000 <= after_10 + 2, (after_10, after_1000)
    finally:
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_cli_key_as_listed_receives_and_revoking_disables(stack, receivers):
    receiver = receivers()
    made = cli(stack, "keys", "create", "--kind", "secret", "--name", "cli board",
               *[arg for scope in SCOPES for arg in ("--scope", scope)])  # fmt: skip
    assert made.returncode == 0, made.stderr
    prefix = re.search(r"created secret key (sk_\w+) ", made.stdout).group(1)
    plaintext = re.search(r"^\s+(sk_\S+)$", made.stdout, re.M).group(1)
    listed = cli(stack, "keys", "list")
    assert prefix in listed.stdout  # the id exactly as `keys list` prints it

    refused = cli(stack, "webhooks", "add", "--key", "sk_nosuchkey", "--url", receiver.url)
    assert refused.returncode == 2 and "no key" in refused.stdout
    added = cli(stack, "webhooks", "add", "--key", prefix, "--url", receiver.url)
    assert added.returncode == 0, added.stdout + added.stderr
    endpoint_id = added.stdout.split()[0]

    headers = {"Authorization": f"Bearer {plaintext}"}
    application_id = submit(stack, headers)
    wait_for(
        lambda: events_of(receiver, application_id, "application.delivered"),
        30,
        0.1,
        what="the event at the endpoint the CLI registered",
    )

    revoked = cli(stack, "keys", "revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    assert f"disabled its 1 webhook endpoint(s): {endpoint_id}" in revoked.stdout
    again = cli(stack, "webhooks", "add", "--key", prefix, "--url", receiver.url + "/2")
    assert again.returncode == 2 and "revoked" in again.stdout
    [listing] = json.loads(cli(stack, "webhooks", "list", "--key", prefix, "--json").stdout)
    assert listing["status"] == "disabled" and "revoked" in listing["disabled_reason"]

    # the org moves the revoked key's application on: nothing is sent any more
    before = len(receiver.requests())
    with stack.app.app_context():
        stack.hooks.publisher.on_application_status_changed(application_id, "Interview", 1.0)
    queue = stack.hooks.queue(endpoint_id)
    assert queue.counts()["queued"] == 0  # not even queued: a disabled endpoint wants nothing
    assert len(receiver.requests()) == before
    stack.hooks.registry.remove(endpoint_id)


def test_one_url_once_per_key_and_the_cap_holds_under_concurrency(stack, receivers):
    receiver = receivers()
    _, plain = KeyStore(stack.redis).create(kind="secret", name="racer", scopes=SCOPES)
    headers = {"Authorization": f"Bearer {plain}"}
    first = register(stack, headers, receiver.url)
    for same in (receiver.url, receiver.url.replace("http://", "HTTP://")):
        again = stack.http.post("/v1/webhooks", json={"url": same}, headers=headers)
        assert again.status_code == 422, again.json
        assert again.json["errors"][0]["code"] == "duplicate"
    # another key may use the same URL
    other = register(stack, stack.b, receiver.url)
    stack.http.delete(f"/v1/webhooks/{other['id']}", headers=stack.b)
    stack.http.delete(f"/v1/webhooks/{first['id']}", headers=headers)

    def one(i: int) -> int:
        client = stack.app.test_client()
        url = f"{receiver.url}/{i}"
        return client.post("/v1/webhooks", json={"url": url}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(one, range(60)))
    assert codes.count(201) == 10 and codes.count(422) == 50, codes
    listed = stack.http.get("/v1/webhooks", headers=headers).json["endpoints"]
    assert len(listed) == 10
    for endpoint in listed:
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=headers)


def test_ipv6_literal_host_header_is_bracketed(stack, receivers):
    receiver = receivers("::1")
    endpoint = register(stack, stack.a, receiver.url, ["application.status_changed"])
    try:
        [sent] = publish(stack, f"key:{stack.key_a.id}", tag="v6")
        wait_for(lambda: receiver.requests(), 30, 0.1, what="the event over IPv6")
        [record] = receiver.requests()
        assert record["headers"]["webhook-id"] == sent
        assert record["headers"]["host"] == f"[::1]:{receiver.port}"
    finally:
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_retry_after_is_honoured_and_410_disables_the_endpoint(stack, receivers):
    slow_down = receivers()
    slow_down.control(status=429, retry_after="2", times=1)
    gone = receivers()
    gone.control(status=410)
    polite = register(stack, stack.a, slow_down.url, ["application.status_changed"])
    leaving = register(stack, stack.b, gone.url, ["application.status_changed"])
    try:
        publish(stack, f"key:{stack.key_a.id}", tag="retry-after")
        wait_for(
            lambda: [r for r in slow_down.requests() if r["answered"] == 200],
            30,
            0.1,
            what="the event after the 429",
        )
        first, second = slow_down.requests()
        assert first["answered"] == 429
        # the backoff alone would have come back after 0.1-0.2 s; the receiver asked for 2 s
        assert second["at"] - first["at"] >= 1.9

        [gone_id] = publish(stack, f"key:{stack.key_b.id}", tag="gone")
        listing = lambda: stack.http.get("/v1/webhooks", headers=stack.b).json["endpoints"]  # noqa: E731
        wait_for(
            lambda: next(e for e in listing() if e["id"] == leaving["id"])["status"] == "disabled",
            30,
            0.1,
            what="the endpoint disabled after its 410",
        )
        [shown] = [e for e in listing() if e["id"] == leaving["id"]]
        assert "410" in shown["disabled_reason"]
        queue = stack.hooks.queue(leaving["id"])
        [letter] = queue.dead_letters()
        assert letter["id"] == gone_id and letter["error"]["code"] == "GONE"
        # an event already queued when it was disabled goes to the dead letters, unsent
        queue.put({"type": "webhook.test", "body": "{}"}, item_id="msg_after_gone")
        with stack.app.app_context():
            hooks_tasks.schedule_send(stack.redis, leaving["id"])
        wait_for(lambda: queue.counts()["dead_letter"] == 2, 20, 0.1, what="the second letter")
        assert len(gone.requests()) == 1
        codes = {d["id"]: d["error"]["code"] for d in queue.dead_letters()}
        assert codes["msg_after_gone"] == "ENDPOINT_DISABLED"
    finally:
        stack.http.delete(f"/v1/webhooks/{polite['id']}", headers=stack.a)
        stack.http.delete(f"/v1/webhooks/{leaving['id']}", headers=stack.b)


def test_the_address_is_checked_again_at_send(stack, receivers):
    """An endpoint whose host now resolves to a forbidden address (here: its stored URL
    changed underneath, as DNS can) is refused at send time: dead-lettered, nothing sent."""
    receiver = receivers()
    endpoint = register(stack, stack.a, receiver.url, ["application.status_changed"])
    try:
        stack.redis.hset(
            stack.hooks.registry.endpoint_key(endpoint["id"]),
            "url",
            f"https://[64:ff9b::7f00:1]:{receiver.port}/hook",
        )
        publish(stack, f"key:{stack.key_a.id}", tag="rebind")
        queue = stack.hooks.queue(endpoint["id"])
        wait_for(lambda: queue.counts()["dead_letter"] == 1, 20, 0.1, what="the refusal")
        [letter] = queue.dead_letters()
        assert letter["error"]["code"] == "REFUSED_URL"
        assert receiver.requests() == []
    finally:
        stack.http.delete(f"/v1/webhooks/{endpoint['id']}", headers=stack.a)


def test_https_receivers_are_verified_against_their_name(stack, receivers, tls):
    """TLS on the pinned connection: the certificate must match the URL's host (here
    127.0.0.1, signed by the test CA the workers trust); one for another name is refused."""
    good = receivers(tls=tls.good)
    wrong = receivers(tls=tls.wrong)
    trusted = register(stack, stack.a, good.url, ["application.status_changed"])
    mismatched = register(stack, stack.b, wrong.url, ["application.status_changed"])
    try:
        [sent] = publish(stack, f"key:{stack.key_a.id}", tag="tls")
        publish(stack, f"key:{stack.key_b.id}", tag="tls-wrong")
        wait_for(lambda: good.requests(), 30, 0.1, what="the event over TLS")
        [record] = good.requests()
        assert record["headers"]["webhook-id"] == sent
        assert record["headers"]["host"] == f"127.0.0.1:{good.port}"
        queue = stack.hooks.queue(mismatched["id"])
        wait_for(lambda: queue.counts()["dead_letter"] == 1, 30, 0.1, what="the refused TLS")
        [letter] = queue.dead_letters()
        assert letter["error"]["code"] == "UNREACHABLE"
        assert "SSLCertVerificationError" in letter["error"]["message"]
        assert wrong.requests() == []
    finally:
        stack.http.delete(f"/v1/webhooks/{trusted['id']}", headers=stack.a)
        stack.http.delete(f"/v1/webhooks/{mismatched['id']}", headers=stack.b)
