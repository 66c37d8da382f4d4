"""A job edited in the org reaches a running gateway as a delta, not as a new catalogue.

End to end: the sandbox org (REST and its Pub/Sub API over real gRPC), a real Redis, a real
`ats-gateway events` process and the gateway under gunicorn (2 processes, real HTTP). The
admin edits a title over REST; the test waits (deadlines, no wall-clock asserts) until both
gunicorn processes' `GET /v1/jobs?q=` show it, then checks what it cost in Redis: one delta
entry in the log holding that one record, the full snapshot neither rewritten nor replaced.
Feeds are not rebuilt by the change (`feeds_rebuild_seconds` is 5 minutes here).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from stack import (
    FAST_DELIVERY,
    events_overrides,
    running_sandbox,
    running_subscriber,
    secret_headers,
    wait_for,
)

from ats_gateway.services.jobs.store import KEY_PREFIX, SnapshotStore

JOB = "bpats__Job__c"


@pytest.fixture(scope="module")
def sandbox_org():
    with running_sandbox(pubsub=True, seed="demo", seed_jobs=120) as handle:
        yield handle


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides(sandbox_org) -> dict[str, Any]:
    return {
        **FAST_DELIVERY,
        "jobs_staleness_seconds": 3600,
        **events_overrides(sandbox_org),
        "feeds_rebuild_seconds": 300,
        "feed_key_indeed": "indeed-feed-key",
    }


@pytest.fixture(scope="module")
def subscriber(stack_settings, stack_redis, tmp_path_factory):
    process = running_subscriber(
        stack_settings, tmp_path_factory.mktemp("events") / "events.log", streaming=stack_redis
    )
    yield process
    process.stop()


def test_an_edit_reaches_every_process_as_one_delta(subscriber, live_gateway, stack_redis, admin):
    store = SnapshotStore(stack_redis)
    headers = secret_headers(stack_redis, ["jobs:read"], name="deltas e2e")

    def get(path: str, **params: Any) -> requests.Response:
        return requests.get(live_gateway.url + path, params=params, headers=headers, timeout=10)

    # Every gunicorn process loads the catalogue (the subscriber wrote its first snapshot).
    first = get("/v1/jobs", limit=5, sort="title").json()
    job = first["data"][0]
    feed_url = live_gateway.url + "/feeds/indeed.xml?token=indeed-feed-key"

    def feed_etags() -> set[str]:
        # Each gunicorn process builds its own; 8 fresh connections reach both, likely.
        answers = [requests.get(feed_url, timeout=30) for _ in range(8)]
        assert all(a.status_code == 200 for a in answers)
        return {a.headers["ETag"] for a in answers}

    before = feed_etags()
    assert len(before) == 1  # the same catalogue version gives the same bytes everywhere
    base, version = store.base(), store.pointer().version
    snapshot = stack_redis.get(KEY_PREFIX + f"snapshot:{base}")
    log_before = store.log_length()

    word = "Dirigible" + uuid.uuid4().hex[:6]
    # "Aaaa": it stays first in the title order, before the cursor of the first page.
    admin.update(JOB, job["id"], {"bpats__Job_Title__c": f"Aaaa {word} Captain"})

    def listed_everywhere() -> bool:
        # Several requests, so both gunicorn processes answer at least once each, likely.
        return all(
            [j["id"] for j in get("/v1/jobs", q=word).json()["data"]] == [job["id"]]
            for _ in range(6)
        )

    wait_for(listed_everywhere, 30, what="the edited title in GET /v1/jobs")

    # One delta in the log holding just that record; the full snapshot untouched.
    assert store.base() == base
    assert stack_redis.get(KEY_PREFIX + f"snapshot:{base}") == snapshot
    assert store.log_length() == log_before + 1
    (entry,) = store.entries(version)
    assert entry.kind == "delta" and entry.removals == []
    assert [r["id"] for r in entry.upserts] == [job["id"]]
    assert entry.upserts[0]["title"] == f"Aaaa {word} Captain"
    snapshots = list(stack_redis.scan_iter(match=KEY_PREFIX + "snapshot:*"))
    assert snapshots == [(KEY_PREFIX + f"snapshot:{base}").encode()]

    # A cursor cut before the delta continues after it: no job twice, none skipped.
    rest, cursor = [], first["page"]["next_cursor"]
    while cursor:
        page = get("/v1/jobs", limit=5, sort="title", cursor=cursor)
        assert page.status_code == 200, page.text
        rest += [j["id"] for j in page.json()["data"]]
        cursor = page.json()["page"]["next_cursor"]
    everything = [j["id"] for j in first["data"]] + rest
    assert len(everything) == len(set(everything))
    now, cursor = [], None
    while True:
        page = get("/v1/jobs", limit=100, sort="title", **({"cursor": cursor} if cursor else {}))
        now += [j["id"] for j in page.json()["data"]]
        cursor = page.json()["page"]["next_cursor"]
        if not cursor:
            break
    assert set(everything) == set(now) and now[0] == job["id"]

    # The board feed was not rebuilt for the change: same bytes, same validator.
    assert feed_etags() == before
