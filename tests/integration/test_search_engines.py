"""Jobs pushed to search engines ([22]): from a job changed in the sandbox org to Google's
Indexing API and IndexNow (a local stand-in that checks the documented request shapes,
including the service account's OAuth token exchange).

The whole real path runs: the sandbox org's Pub/Sub API (gRPC on 127.0.0.1), an
`ats-gateway events` process keeping the snapshot current and appending lifecycle events, Celery
beat and a worker running `tasks/indexing.py`, a private Redis. Waits have deadlines (10 s, as
the issue's acceptance says); nothing asserts on wall-clock durations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from search_standin import SearchStandIn
from stack import (
    FAST_DELIVERY,
    build_gateway,
    events_overrides,
    running_beat,
    running_sandbox,
    running_subscriber,
    wait_for,
)

from ats_gateway.services.indexing import IndexNow, SearchNotifier, build_notifier
from ats_gateway.services.jobs.lifecycle import STREAM_KEY, JobLifecycle

JOB = "bpats__Job__c"
HOST = "careers.example.com"
INDEXNOW_KEY = "0123456789abcdef0123456789abcdef"


def page(job_id: str) -> str:
    return f"https://{HOST}/jobs/{job_id}"


@pytest.fixture(scope="module")
def sandbox_org():
    with running_sandbox(pubsub=True, seed="demo", seed_jobs=20) as handle:
        yield handle


@pytest.fixture(scope="module")
def standin() -> Iterator[SearchStandIn]:
    server = SearchStandIn(indexnow_key=INDEXNOW_KEY, indexnow_host=HOST).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides(sandbox_org, standin, tmp_path_factory) -> dict[str, Any]:
    key_file = standin.service_account_file(tmp_path_factory.mktemp("google") / "sa.json")
    return {
        **FAST_DELIVERY,
        "jobs_staleness_seconds": 3600,
        **events_overrides(sandbox_org),
        "job_page_url_template": page("{id}"),
        "search_poll_seconds": 0.5,
        "google_indexing_key_file": key_file,
        "google_indexing_token_uri": standin.url + "/token",
        "google_indexing_endpoint": standin.url + "/v3/urlNotifications:publish",
        "google_indexing_batch_endpoint": standin.url + "/batch",
        "indexnow_key": INDEXNOW_KEY,
        "indexnow_host": HOST,
        "indexnow_endpoint": standin.url + "/indexnow",
    }


@pytest.fixture(scope="module")
def running(stack_settings, stack_redis, worker, tmp_path_factory) -> Iterator[None]:
    """Beat and the `ats-gateway events` subscriber, as `ats-gateway dev` runs them."""
    logs = tmp_path_factory.mktemp("search-stack")
    beat = running_beat(stack_settings, logs)
    events = running_subscriber(stack_settings, logs / "events.log")
    try:
        wait_for(
            lambda: stack_redis.hget("ats-gateway:events:state", "mode") == b"stream",
            60,
            what="the subscriber's stream",
        )
        # The search consumer starts at the newest entry: let it take its cursor first.
        wait_for(
            lambda: stack_redis.exists("ats-gateway:jobs:lifecycle:cursor:search"),
            30,
            what="the search sweep",
        )
        yield
    finally:
        events.stop()
        beat.stop()


def settled(store: redis.Redis) -> bool:
    """Every lifecycle entry read by the search consumer and nothing left to send."""
    newest = store.xrevrange(STREAM_KEY, count=1)
    cursor = store.get("ats-gateway:jobs:lifecycle:cursor:search")
    pending = sum(store.zcard(f"ats-gateway:search:{e}:order") for e in ("google", "indexnow"))
    return bool(newest) and cursor == newest[0][0] and pending == 0


def test_job_opened_retitled_and_closed_reach_google_and_indexnow_once_each(
    running, admin, standin, stack_redis, gateway_app
):
    title = f"Search engines {uuid.uuid4().hex[:8]}"
    job_id = admin.create(
        JOB,
        {
            "Name": title[:80],
            "bpats__Job_Title__c": title,
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
            "bpats__Department__c": "Engineering",
        },
    )
    url = page(job_id)

    # Opened: one URL_UPDATED to Google, the URL in one IndexNow post, within 10 s each.
    wait_for(lambda: standin.updates(url, "URL_UPDATED") == 1, 10, what="URL_UPDATED (opened)")
    wait_for(lambda: standin.indexnow_count(url) == 1, 10, what="IndexNow (opened)")
    assert standin.grants >= 1  # the JWT-bearer grant, verified with the test key

    # A field that is not public changes, then the title: only the title is told.
    template = admin.query_many(["SELECT Id FROM bpats__Interview_Template__c LIMIT 1"])[0]
    assert template, "the demo seed has interview templates"
    admin.update(JOB, job_id, {"bpats__Interview_Template__c": template[0]["Id"]})
    admin.update(JOB, job_id, {"bpats__Job_Title__c": title + " (senior)"})
    wait_for(lambda: standin.updates(url, "URL_UPDATED") >= 2, 10, what="URL_UPDATED (title)")
    wait_for(lambda: standin.indexnow_count(url) >= 2, 10, what="IndexNow (title)")

    # Closed: one URL_DELETED.
    admin.update(JOB, job_id, {"bpats__Status__c": "Closed"})
    wait_for(lambda: standin.updates(url, "URL_DELETED") == 1, 10, what="URL_DELETED (closed)")
    wait_for(lambda: standin.indexnow_count(url) >= 3, 10, what="IndexNow (closed)")

    # Everything read and sent (more sweeps ran meanwhile): exactly one notification per
    # public version, none for the non-public change.
    wait_for(lambda: settled(stack_redis), 10, what="the search queues to settle")
    assert standin.updates(url, "URL_UPDATED") == 2
    assert standin.updates(url, "URL_DELETED") == 1
    assert standin.indexnow_count(url) == 3
    events = [e.event for e in JobLifecycle(stack_redis).read("0-0") if e.job_id == job_id]
    assert events == ["opened", "changed", "closed"]
    assert standin.errors == []

    metrics = gateway_app.test_client().get("/metrics").get_data(as_text=True)
    assert (
        'ats_gateway_search_notifications_total{engine="google",outcome="sent",type="URL_DELETED"}'
        in metrics
    )
    assert 'ats_gateway_search_pending{engine="indexnow"} 0.0' in metrics
    ready = gateway_app.test_client().get("/readyz").json
    assert ready["checks"]["search_engines"]["status"] == "ok", ready


def test_google_batches_newest_first_and_defers_beyond_the_daily_quota(
    standin, stack_settings, redis_databases
):
    """A backlog (e.g. after a reconciliation) goes out as one batch request, newest change
    first, and stops at the daily quota: the rest stays pending for the next day."""
    with redis_databases.lease() as url:
        store = redis.Redis.from_url(url)
        settings = stack_settings.replace(
            redis_url=url, google_indexing_daily_quota=3, indexnow_key=""
        )
        notifier = build_notifier(settings, store, job_url=page)
        lifecycle = JobLifecycle(store, clock=iter(range(1000, 2000)).__next__)
        jobs = [{"id": f"a0M{n:012d}AAA", "title": f"Job {n}"} for n in range(5)]
        for job in jobs:  # one event each, oldest first
            lifecycle.observe([job], [], id_field="id", source="test")
        assert notifier.intake(lifecycle.read("0-0")) == 5
        before = standin.google_requests

        report = notifier.publish("google")

        assert report == {"ran": True, "sent": 3, "rejected": 0, "retry": 0}
        assert standin.google_requests == before + 1  # one batch request for three URLs
        told = {n["url"] for n in standin.google if n["batch"]}
        assert {page(j["id"]) for j in jobs[2:]} <= told  # the three newest
        assert not {page(j["id"]) for j in jobs[:2]} & told
        assert notifier.publish("google") == {"ran": False, "reason": "quota"}
        assert notifier.status()["google"]["pending"] == 2
        # The same versions again (a stream entry read twice): nothing new to tell.
        assert notifier.intake(lifecycle.read("0-0")[2:]) == 0
        store.close()


def test_a_failed_request_is_retried_after_a_backoff_and_told_once(standin, redis_databases):
    """503 with Retry-After: nothing is lost, nothing is sent before the backoff ends, and the
    version is told once when the engine answers again (IndexNow here; Google likewise)."""
    with redis_databases.lease() as url:
        store = redis.Redis.from_url(url)
        now = [1_000_000.0]
        engine = IndexNow(INDEXNOW_KEY, HOST, endpoint=standin.url + "/indexnow")
        notifier = SearchNotifier(
            store, [engine], job_url=page, retry_base_seconds=10, clock=lambda: now[0]
        )
        lifecycle = JobLifecycle(store)
        job = {"id": "a0M000000000777AAA", "title": "Retried"}
        lifecycle.observe([job], [], id_field="id", source="test")
        notifier.intake(lifecycle.read("0-0"))
        standin.fail_next = 1

        failed = notifier.publish("indexnow")
        assert failed["sent"] == 0 and failed["retry_in"] >= 8  # base 10 s, jitter +-20 %
        assert notifier.publish("indexnow")["reason"] == "backoff"  # no request meanwhile
        assert standin.indexnow_count(page(job["id"])) == 0
        now[0] += failed["retry_in"] + 0.1
        assert notifier.publish("indexnow")["sent"] == 1
        assert standin.indexnow_count(page(job["id"])) == 1
        notifier.intake(lifecycle.read("0-0"))  # the same version read again
        assert notifier.publish("indexnow") == {"ran": False, "reason": "idle"}
        assert standin.indexnow_count(page(job["id"])) == 1
        store.close()


def test_the_gateway_serves_the_indexnow_key_file_when_the_job_pages_are_its_own(
    base_settings, redis_databases
):
    """IndexNow verifies ownership by fetching https://{host}/{key}.txt: when the job pages
    live on the gateway's host, the gateway serves it (and documents it in its OpenAPI)."""
    with redis_databases.lease() as url:
        own = base_settings.replace(
            redis_url=url,
            public_url=f"https://{HOST}",
            job_page_url_template=page("{id}"),
            indexnow_key=INDEXNOW_KEY,
        )
        client = build_gateway(own).test_client()
        response = client.get(f"/{INDEXNOW_KEY}.txt")
        assert response.status_code == 200 and response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == INDEXNOW_KEY
        assert f"/{INDEXNOW_KEY}.txt" in client.get("/v1/openapi.json").json["paths"]
        assert client.get("/0123456789.txt").status_code == 404
        # Pages on another host (the career site's): that host serves the file, not us.
        elsewhere = build_gateway(own.replace(public_url="https://api.example.com"))
        assert elsewhere.test_client().get(f"/{INDEXNOW_KEY}.txt").status_code == 404


def test_a_url_google_refuses_for_good_is_dropped_and_counted_not_retried(
    standin, stack_settings, redis_databases
):
    """A 403 for one URL of a batch (ownership not verified): that URL is dropped and counted
    as rejected; the others of the batch are sent; nothing is retried."""
    with redis_databases.lease() as url:
        store = redis.Redis.from_url(url)
        settings = stack_settings.replace(redis_url=url, indexnow_key="")
        where = {"a0M000000000901AAA": "forbidden/"}
        notifier = build_notifier(
            settings, store, job_url=lambda i: f"https://{HOST}/jobs/{where.get(i, '')}{i}"
        )
        lifecycle = JobLifecycle(store)
        for n in (900, 901, 902):
            lifecycle.observe([{"id": f"a0M000000000{n}AAA"}], [], id_field="id", source="t")
        notifier.intake(lifecycle.read("0-0"))

        assert notifier.publish("google") == {"ran": True, "sent": 2, "rejected": 1, "retry": 0}
        assert notifier.status()["google"] == {
            "pending": 0,
            "retry_in": 0.0,
            "quota_used_today": 3,
            "daily_quota": settings.google_indexing_daily_quota,
        }
        stats = {k.decode(): int(v) for k, v in store.hgetall("ats-gateway:search:stats").items()}
        assert stats["google|URL_UPDATED|rejected"] == 1
        assert stats["google|URL_UPDATED|sent"] == 2
        store.close()
