"""A job edited in the org reaches a running gateway as a delta, not as a new catalogue.

End to end: the sandbox org (REST and its Pub/Sub API over real gRPC), a real Redis, a real
`ats-gateway events` process and the gateway under gunicorn (2 processes, real HTTP). The
admin edits a title over REST; the test waits (deadlines, no wall-clock asserts) until both
gunicorn processes' `GET /v1/jobs?q=` show it, then checks what it cost in Redis: one delta
entry in the log holding that one record, the full snapshot neither rewritten nor replaced.
Feeds are not rebuilt by the change (`feeds_rebuild_seconds` is 5 minutes here).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests
from stack import (
    FAST_DELIVERY,
    events_overrides,
    redis_commands,
    running_sandbox,
    running_subscriber,
    secret_headers,
    wait_for,
)

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.embedded.stack import child_env
from ats_gateway.security.keys import GENERATION, KeyStore
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
        # Each gunicorn process builds its own, on its first feed request.
        answers = [requests.get(feed_url, timeout=30) for _ in range(40)]
        assert all(a.status_code == 200 for a in answers)
        return {a.headers["ETag"] for a in answers}

    # One ETag per process at most: a process that built its feed before the subscriber's
    # start-up reconciliation moved the version serves older bytes, for `feeds_rebuild_seconds`.
    before = feed_etags()
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

    # The board feed was not rebuilt for the change: a process that built it before still
    # serves the same bytes. (Not "every answer": gunicorn may hand all of the 40 requests
    # before the edit to one process, and one that builds its first feed now builds it from
    # the edited catalogue.)
    assert feed_etags() & before


def test_a_listing_reads_the_catalogue_version_and_key_generation_from_its_process(
    subscriber, live_gateway, stack_redis, stack_settings, redis_url, admin
):
    """[18] Under gunicorn (2 processes) a listing makes no Redis round trip for the catalogue's
    version or the key generation: each process keeps them and Redis tells it when either
    changes (CLIENT TRACKING). A change made elsewhere is still seen by the next request: a
    key revoked with the CLI (another process) answers 401 at once in every gunicorn process,
    and so does a job edit once its delta is published."""
    db = int(stack_redis.connection_pool.connection_kwargs.get("db", 0))
    store = SnapshotStore(stack_redis)
    _, secret = KeyStore(stack_redis).create(
        kind="secret", name="tracked", scopes=["jobs:read"], rate_limit="100000/minute"
    )
    headers = {"Authorization": f"Bearer {secret}"}

    def statuses(n: int) -> list[int]:
        return [
            requests.get(live_gateway.url + "/v1/jobs", headers=headers, timeout=10).status_code
            for _ in range(n)
        ]

    hot = {KEY_PREFIX + "current", GENERATION}

    def hot_reads(n: int) -> tuple[list[list[str]], float]:
        with redis_commands(redis_url, db=db) as seen:
            started = time.monotonic()
            assert statuses(n) == [200] * n
            elapsed = time.monotonic() - started
            time.sleep(0.2)
        return [c for c in seen if c[0].upper() == "GET" and c[-1].strip('"') in hot], elapsed

    def kept(n: int) -> bool:
        # Without tracking: 2 reads a request. With it: each process (2 gunicorn, and the
        # subscriber on the same database) reads each key again once its copy is a second
        # old (`max_age`), however many requests it serves.
        reads, elapsed = hot_reads(n)
        return len(reads) <= 3 * len(hot) * (math.ceil(elapsed) + 1) and len(reads) < 2 * n

    # Each process opens its tracking connection on first use; then the reads stop.
    wait_for(lambda: kept(24), 30, 0.5, "the gunicorn processes to keep the hot keys")
    assert kept(60)

    # A revocation by the CLI, in another process: refused at the next request, everywhere.
    prefix = secret.split("_")[0] + "_" + secret.split("_")[1]
    revoked = subprocess.run(
        [sys.executable, "-m", "ats_gateway.cli", "keys", "revoke", prefix],
        env={**os.environ, **child_env(stack_settings)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert statuses(8) == [401] * 8

    # A new catalogue version written by another process is served at the next request.
    headers = secret_headers(stack_redis, ["jobs:read"], name="tracked 2")
    version = store.pointer().version
    job = requests.get(live_gateway.url + "/v1/jobs", headers=headers, timeout=10).json()
    word = "Zeppelin" + uuid.uuid4().hex[:6]
    record = {**_public_record(store, job["data"][0]["id"]), "title": f"{word} Navigator"}
    pointer = store.append([record], [], snapshot_at=time.time(), count=job["meta"]["total"])
    assert int(pointer.version) == int(version) + 1
    for _ in range(8):
        found = requests.get(
            live_gateway.url + "/v1/jobs", params={"q": word}, headers=headers, timeout=10
        ).json()
        assert [j["id"] for j in found["data"]] == [job["data"][0]["id"]]


def _public_record(store: SnapshotStore, job_id: str) -> dict[str, Any]:
    """The job's public record as the catalogue holds it now (base snapshot, then the log)."""
    base = store.load(store.base())
    found = {r["id"]: r for r in base.records}
    for entry in store.entries(base.version):
        found.update({r["id"]: r for r in entry.upserts})
        for gone in entry.removals:
            found.pop(gone, None)
    return found[job_id]
