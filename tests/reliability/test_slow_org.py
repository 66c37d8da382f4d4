"""Exactly once when the org is slow (issue [14]): writes that commit after the client gave up,
answers lost after the commit, two workers on one batch, a dead worker's batch taken over, a
full Redis at intake, and an org that restricts a picklist behind the gateway's back.

Workers run with a short read timeout (``sf_read_timeout``) so a slow write is ambiguous
within a second or two: the org commits it, the worker never hears so.
"""

from __future__ import annotations

import base64
import time
from collections import Counter

import pytest
import redis
import requests
from faultkit import (
    APPLICATION,
    Supervisor,
    SwappedWorkers,
    assert_exactly_once,
    new_tag,
    scale,
    wait_for,
    wait_settled,
)

from ats_gateway import create_app
from ats_gateway.extensions import services
from ats_gateway.metadata.preflight import GATEWAY_KEY


def _submit(stack, tag: str, n: int, start: int = 0, **extra) -> dict[str, str]:
    accepted: dict[str, str] = {}
    for first in range(start, start + n, 100):
        last = min(start + n, first + 100)
        accepted.update(
            stack.submit_batch(
                [stack.candidate(tag, i, job=i, **extra) for i in range(first, last)]
            )
        )
    return accepted


def _org_keys(stack, tag: str) -> list[str]:
    rows = stack.org_rows(
        f"SELECT {GATEWAY_KEY} FROM {APPLICATION} WHERE bpats__Email__c LIKE '%@{tag}.example.com'"
    )
    return [r[GATEWAY_KEY] for r in rows]


def test_writes_commit_after_the_read_timeout(stack):
    """Every write takes 2.5 s in the org; the worker gives up after 1 s. Each attempt's
    upsert commits after the worker retried, so a retry meets the earlier write: the org
    holds each application once, carrying the gateway's id, and one Contact per candidate."""
    tag = new_tag("s")
    with SwappedWorkers(stack, sf_read_timeout=1.0):
        stack.faults(write_latency_ms=2500)
        accepted = _submit(stack, tag, scale(30, 300))
        try:
            wait_for(
                lambda: any((stack.outbox.get(i) or {}).get("attempts") for i in accepted),
                30,
                "an attempt that timed out",
            )
            final = assert_exactly_once(stack, accepted, tag, timeout=scale(90, 300))
        finally:
            stack.faults(write_latency_ms=0)
    assert sorted(_org_keys(stack, tag)) == sorted(accepted), "an application lacks our id"
    assert all(r["result"]["salesforce_id"] for r in final.values())


def test_answers_lost_after_the_commit(stack):
    """Half the writes commit and then lose their answer: held back past the read timeout,
    or the connection closed unanswered. Still exactly once."""
    tag = new_tag("h")
    with SwappedWorkers(stack, sf_read_timeout=1.0):
        for withhold_ms in (1500, 0):
            stack.faults(withhold_rate=0.5, withhold_ms=withhold_ms, seed=7)
            accepted = _submit(stack, tag + str(withhold_ms), scale(20, 200))
            try:
                assert_exactly_once(stack, accepted, tag + str(withhold_ms), timeout=60)
            finally:
                stack.faults(withhold_rate=0)


@pytest.mark.parametrize("heartbeat", [False, True], ids=["leases-expire", "heartbeat"])
def test_two_workers_and_a_lease_shorter_than_a_batch(stack, heartbeat):
    """A 1 s lease, 2.5 s writes, two workers. Without the heartbeat the second worker takes
    the batch over while the first is still writing (both write it; the upserts make the
    second write an update, and the first worker's settle is fenced off); with it the first
    keeps its lease and the batch costs one plan. Either way: exactly once, every status
    `delivered` (never `duplicate` about our own application)."""
    tag = new_tag("2" + str(int(heartbeat)))
    with SwappedWorkers(
        stack, count=2, delivery_lease_seconds=1, delivery_heartbeat=heartbeat, sf_read_timeout=10
    ) as swapped:
        stack.faults(write_latency_ms=2500)
        calls = stack.api_calls()
        try:
            accepted = _submit(stack, tag, scale(40, 400))
            first = next(iter(accepted))
            wait_for(
                lambda: (stack.outbox.get(first) or {}).get("status") == "delivering",
                20,
                "the batch in flight",
                0.02,
            )
            # While the first worker writes, drains keep arriving (the lease ends after 1 s).
            celery = stack.app.extensions["celery"]
            for _ in range(12):
                time.sleep(0.25)
                celery.send_task("ats_gateway.applications.drain")
            assert_exactly_once(stack, accepted, tag, timeout=90)
        finally:
            stack.faults(write_latency_ms=0)
        lost = swapped.lost_leases()
    spent = stack.api_calls() - calls
    if heartbeat:
        # The drains that arrived meanwhile found the lock held and the lease renewed: no
        # settle was fenced off, so no item was written by two workers.
        assert lost == 0, lost
    else:
        assert lost > 0, "the lease never ran out: the test did not test a takeover"
        # The batch was taken over and written twice (two plans at least), yet is in the
        # org once: the second write was an update by the key.
        assert spent >= 4, spent


def test_worker_sigkill_mid_batch_is_taken_over_within_a_lease(stack):
    """The default 30 s lease: a worker is SIGKILLed while its batch is being written; new
    applications arrive meanwhile. The supervisor's new worker takes the dead worker's batch
    over once its lease ends, and everything is delivered within 60 s of the kill."""
    tag = new_tag("t")
    with SwappedWorkers(stack, delivery_lease_seconds=30):
        stack.faults(write_latency_ms=1500)
        old = _submit(stack, tag, scale(20, 200))
        wait_for(
            lambda: (stack.outbox.get(next(iter(old))) or {}).get("status") == "delivering",
            20,
            "the batch in flight",
        )
        time.sleep(0.5)
        with Supervisor(stack) as supervisor:
            stack.worker.kill()
            killed_at = time.monotonic()
            new = _submit(stack, tag, scale(10, 100), start=10_000)
            stack.faults(write_latency_ms=0)
            everything = {**old, **new}
            wait_settled(stack, everything, 60)
            took = time.monotonic() - killed_at
            wait_for(lambda: supervisor.restarts >= 1, 10, "the restart")
    print(
        f"\nkilled worker's batch taken over and everything delivered {took:.1f} s after the kill"
    )
    assert took < 60, took
    assert_exactly_once(stack, everything, tag, timeout=5)


def _used_memory(stack) -> int:
    return int(stack.redis.info("memory")["used_memory"])


def test_full_redis_answers_503_and_stores_nothing(stack):
    """Redis reaches maxmemory (noeviction): a batch POST answers 503 saying Redis is full and
    that nothing was stored, and nothing was; a single POST too. Once there is room, the same
    batch is accepted whole and delivered once."""
    tag = new_tag("m")
    items = [stack.candidate(tag, i, job=i, cover_letter="x" * 2000) for i in range(30)]
    client = stack.app.test_client()
    before = stack.outbox.counts()
    keys_before = len(stack.redis.keys(stack.outbox.prefix + "item:*"))
    stack.redis.config_set("maxmemory-policy", "noeviction")
    stack.redis.config_set("maxmemory", max(1, _used_memory(stack) - 1024 * 1024))
    try:
        response = client.post(
            "/v1/applications/batch", json={"applications": items}, headers=stack.headers
        )
        single = client.post("/v1/applications", json=items[0], headers=stack.headers)
    finally:
        stack.redis.config_set("maxmemory", 0)
    for answer in (response, single):
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.mimetype == "application/problem+json"
        assert "full" in answer.json["detail"] and "nothing" in answer.json["detail"]
    assert stack.outbox.counts()["queued"] == before["queued"]
    assert len(stack.redis.keys(stack.outbox.prefix + "item:*")) == keys_before

    # Past the rate limiter, the store itself: one Lua script for the whole batch, refused
    # before its first write when Redis is full...
    stack.redis.config_set("maxmemory", max(1, _used_memory(stack) - 1024 * 1024))
    try:
        with stack.app.app_context(), pytest.raises(redis.exceptions.OutOfMemoryError):
            services(stack.app).applications.submit_batch(items)
    finally:
        stack.redis.config_set("maxmemory", 0)
    assert len(stack.redis.keys(stack.outbox.prefix + "item:*")) == keys_before

    # ...and when Redis fills up while the batch is being stored: all or nothing, never half.
    big = [stack.candidate(tag, 100 + i, job=i, cover_letter="y" * 30_000) for i in range(30)]
    stack.redis.config_set("maxmemory", _used_memory(stack) + 1400 * 1024)
    try:
        with stack.app.app_context():
            crossing = services(stack.app).applications.submit_batch(big)
    except redis.exceptions.OutOfMemoryError:  # (Valkey words it without "OOM")
        assert len(stack.redis.keys(stack.outbox.prefix + "item:*")) == keys_before
        crossing = None
    finally:
        stack.redis.config_set("maxmemory", 0)
    if crossing is not None:
        assert crossing["accepted"] == 30, crossing["rejected"]
    accepted = stack.submit_batch(items)
    if crossing is not None:
        accepted.update({o["id"]: big[o["index"]]["email"] for o in crossing["items"]})
    assert_exactly_once(stack, accepted, tag, timeout=60)


def test_redis_unreachable_answers_503_not_500(stack):
    """Redis is down: submissions answer 503 saying so, never 500."""
    tag = new_tag("u")
    client = stack.app.test_client()
    stack.redis_server.kill()
    try:
        response = client.post(
            "/v1/applications", json=stack.candidate(tag, 0), headers=stack.headers
        )
    finally:
        stack.redis_server.start()
    assert response.status_code == 503, response.get_data(as_text=True)
    assert "unreachable" in response.json["detail"] or "time" in response.json["detail"]


def test_restricted_picklist_narrowed_in_the_org(stack):
    """An admin restricts the Source picklist and deactivates "Job Board" in the org; the
    gateway's describe does not know yet. The first application with that value is accepted
    and refused by the org (dead-lettered, naming the field); the refusal refreshes the
    describe at once, so the next one is a 422 at intake."""
    tag = new_tag("p")
    field_url = f"{stack.sandbox.url}/__sandbox__/objects/{APPLICATION}/fields/bpats__Source__c"
    metadata = services(stack.app).metadata
    requests.patch(field_url, json={"restrictedPicklist": True}, timeout=5).raise_for_status()
    metadata.cache.refresh("job_portal", APPLICATION, force=True)  # the gateway knows this much
    requests.patch(
        field_url, json={"deactivate_picklist_values": ["Job Board"]}, timeout=5
    ).raise_for_status()
    try:
        client = stack.app.test_client()
        first = client.post("/v1/applications", json=stack.candidate(tag, 0), headers=stack.headers)
        assert first.status_code == 202, first.get_data(as_text=True)
        final = wait_settled(stack, [first.json["id"]], 30)[first.json["id"]]
        assert final["status"] == "failed"
        assert final["error"]["code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert final["error"]["object"] == APPLICATION
        assert "bpats__Source__c" in final["error"]["org_fields"]

        candidates = iter(range(1, 1000))

        def refused() -> bool:
            # A new candidate each poll: one accepted while this process's copy of the describe
            # catches up must not make the next poll a 409 (same email, same job).
            answer = client.post(
                "/v1/applications",
                json=stack.candidate(tag, next(candidates)),
                headers=stack.headers,
            )
            assert answer.status_code in (202, 422)
            return answer.status_code == 422 and answer

        answer = wait_for(refused, 5, "intake to refuse the value")
        assert any(e["field"] == "source" for e in answer.json["errors"])
    finally:
        requests.patch(
            field_url,
            json={"restrictedPicklist": False, "add_picklist_values": ["Job Board"]},
            timeout=5,
        ).raise_for_status()
        metadata.cache.refresh("job_portal", APPLICATION, force=True)


def test_without_the_external_ids_an_ambiguous_write_is_parked(stack):
    """An org without ATS_Gateway_Id__c (unkeyed mode): slow writes time out, the batch is
    parked for the settle time instead of retried blind, the org is read again, and only
    what is really missing is created. Exactly once, with no upsert sent."""
    tag = new_tag("n")
    metadata = services(stack.app).metadata
    urls = [
        f"{stack.sandbox.url}/__sandbox__/objects/{obj}/fields/{GATEWAY_KEY}"
        for obj in ("Contact", APPLICATION)
    ]

    def keys(on: bool) -> None:
        for url in urls:
            requests.patch(url, json={"externalId": on, "unique": on}, timeout=5).raise_for_status()
        for obj in ("Contact", APPLICATION):
            metadata.cache.refresh("job_portal", obj, force=True)

    keys(False)
    try:
        with SwappedWorkers(stack, sf_read_timeout=1.0, delivery_settle_seconds=4):
            stack.faults(write_latency_ms=2000)
            try:
                accepted = _submit(stack, tag, scale(20, 200))

                def parked() -> bool:
                    records = [stack.outbox.get(i) or {} for i in accepted]
                    return any(
                        (r.get("deferred") or {}).get("code") == "AMBIGUOUS_WRITE" for r in records
                    )

                wait_for(parked, 30, "a parked batch")
            finally:
                stack.faults(write_latency_ms=0)
            assert_exactly_once(stack, accepted, tag, timeout=60)
    finally:
        keys(True)
    assert set(_org_keys(stack, tag)) == {None}, "unkeyed mode wrote the key"
    assert Counter(_org_keys(stack, tag))[None] == len(accepted)


@pytest.mark.parametrize("keyed", [True, False], ids=["file-key", "no-file-key"])
def test_a_slow_upload_attaches_each_resume_once(stack, keyed):
    """[23] Only the uploads are slow: 4 s in the org against a 1 s read timeout, so every
    first upload is still in flight when the retry looks for the file. With the gateway's
    unique key on ContentVersion (ATS_Gateway_Id__c) a second create of the same key fails
    DUPLICATE_VALUE once the first commits, and the look-up by key finds it; without it an
    unanswered upload is parked for the settle time before the org is read again. Read from
    the org: each application has exactly one file, the one its status names."""
    tag = new_tag("u" + str(int(keyed)))
    resume = {"filename": "cv.txt", "content_base64": base64.b64encode(b"Ada's CV\n").decode()}
    url = f"{stack.sandbox.url}/__sandbox__/objects/ContentVersion/fields/{GATEWAY_KEY}"
    metadata = services(stack.app).metadata

    def file_key(on: bool) -> None:
        requests.patch(url, json={"externalId": on, "unique": on}, timeout=5).raise_for_status()
        metadata.cache.refresh("job_portal", "ContentVersion", force=True)

    if not keyed:
        file_key(False)
    with SwappedWorkers(stack, sf_read_timeout=1.0, delivery_settle_seconds=6):
        stack.faults(upload_latency_ms=4000)
        try:
            accepted = _submit(stack, tag, scale(10, 100), resume=resume)

            def retried() -> bool:  # retried (keyed), or parked for the settle time
                records = [stack.outbox.get(i) or {} for i in accepted]
                return any(
                    r.get("attempts") or (r.get("deferred") or {}).get("code") == "AMBIGUOUS_WRITE"
                    for r in records
                )

            wait_for(retried, 30, "an upload that timed out")
            final = assert_exactly_once(stack, accepted, tag, timeout=scale(90, 300))
        finally:
            stack.faults(upload_latency_ms=0)
            if not keyed:
                file_key(True)
    apps = {r["result"]["salesforce_id"][:15]: r["result"].get("resume_id") for r in final.values()}
    assert all(apps.values()), "an application was delivered without its resume"
    ids = ",".join(f"'{i}'" for i in apps)
    files = stack.org_rows(
        f"SELECT Id, FirstPublishLocationId, {GATEWAY_KEY} FROM ContentVersion "
        f"WHERE FirstPublishLocationId IN ({ids})"
    )
    per_application = Counter(str(f["FirstPublishLocationId"])[:15] for f in files)
    assert per_application == dict.fromkeys(apps, 1), f"files per application: {per_application}"
    assert {f["Id"] for f in files} == set(apps.values())
    assert {f[GATEWAY_KEY] for f in files} == (set(accepted) if keyed else {None})


def test_readyz_degrades_when_delivery_is_stuck(stack):
    """No worker delivers (all dead, no supervisor): once the oldest due application has waited
    past `delivery_lag_alert_seconds`, /readyz says the queue is degraded; delivery resuming
    clears it."""
    tag = new_tag("z")
    # A second gateway process on the same Redis, with a 1 s threshold, reads the same queue.
    watcher = create_app(stack.settings.replace(delivery_lag_alert_seconds=1.0)).test_client()
    stack.worker.stop()
    accepted = _submit(stack, tag, 3)
    time.sleep(1.5)
    queue = watcher.get("/readyz").json["checks"]["applications_queue"]
    assert queue["status"] == "degraded", queue
    assert "stuck" in queue and queue["oldest_due_seconds"] > 1.0
    stack.start_worker()
    assert_exactly_once(stack, accepted, tag, timeout=60)
    queue = watcher.get("/readyz").json["checks"]["applications_queue"]
    assert "stuck" not in queue, queue
