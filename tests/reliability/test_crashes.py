"""Processes die (SIGKILL, as a crash or the OOM killer would) with applications in flight.

Complements tests/integration/test_applications_crash.py (worker killed while Contacts or
applications are being created): here Redis itself crashes with applications queued, the worker
dies while resumes are being uploaded, and the gateway (gunicorn) dies mid-request while
clients keep submitting and retry what got no answer.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from faultkit import Supervisor, assert_exactly_once, new_tag, scale, wait_for

from ats_gateway.embedded import free_port

RESUME = {"filename": "cv.txt", "content_base64": base64.b64encode(b"Plain text CV\n").decode()}


def _queue_for_a_down_org(stack, tag: str, n: int) -> dict[str, str]:
    stack.faults(error_rate=1.0)
    accepted: dict[str, str] = {}
    for start in range(0, n, 100):
        items = [stack.candidate(tag, i, job=i) for i in range(start, min(n, start + 100))]
        accepted.update(stack.submit_batch(items))
    wait_for(
        lambda: any((stack.outbox.get(i) or {}).get("attempts") for i in accepted),
        20,
        "a failed attempt against the down org",
    )
    return accepted


def _crash_and_restart_redis(stack, accepted: dict[str, str]) -> None:
    stack.redis_server.kill()  # no shutdown, no final AOF rewrite: a crash
    time.sleep(1.0)
    stack.redis_server.start()
    survivors = [stack.outbox.get(i) for i in accepted]
    assert all(r is not None and r["has_payload"] for r in survivors), "a 202 was lost"


def test_redis_crash_with_applications_queued(stack):
    """Redis is SIGKILLed while accepted applications wait for an org that is down, then
    started again on the same AOF: every 202 survived, with its candidate data, and once the
    org is back all are delivered exactly once, with nobody touching the gateway.

    After losing its broker the Celery worker either exits (kombu's Redis transport raises
    "Unrecoverable error"; the supervisor restarts it, and a starting worker drains at once) or
    reconnects with its drain timer lost (beat's 30 s delivery sweep picks the queue up)."""
    tag = new_tag("r")
    accepted = _queue_for_a_down_org(stack, tag, scale(200, 2000))
    with Supervisor(stack):
        _crash_and_restart_redis(stack, accepted)
        stack.faults(error_rate=0.0)
        assert_exactly_once(stack, accepted, tag, timeout=scale(75, 300))


def test_beat_sweeps_the_delivery_queue(stack):
    """The safety net the previous test (and any lost drain timer) relies on: beat sends the
    applications drain at least once a minute."""
    schedule = stack.app.extensions["celery"].conf.beat_schedule or {}
    tasks = {entry["task"]: entry for entry in schedule.values()}
    assert "ats_gateway.applications.drain" in tasks, sorted(tasks)
    assert tasks["ats_gateway.applications.drain"]["schedule"] <= 60


def _resume_upload_started(stack, ids):
    """True once the batch's applications are created and its resumes are on the wire."""
    records = [stack.outbox.get(i) for i in ids]
    return all(
        r and r["status"] == "delivering" and (r.get("progress") or {}).get("salesforce_id")
        for r in records
    )


def test_worker_sigkill_while_resumes_upload(stack):
    """The worker dies after the applications were created, while their resumes are being
    uploaded (the org still commits that call): the new worker attaches each resume once."""
    tag = new_tag("w")
    n = scale(40, 300)
    accepted = stack.submit_batch([stack.candidate(tag, i, resume=RESUME) for i in range(n)])
    stack.faults(latency_ms=800)
    wait_for(lambda: _resume_upload_started(stack, accepted), 30, "the resume upload", 0.05)
    time.sleep(0.3)  # the ContentVersion call is in flight; the org sleeps first
    stack.worker.kill()
    time.sleep(1.0)  # the org finishes the orphaned call
    stack.faults(latency_ms=0)
    stack.start_worker()
    final = assert_exactly_once(stack, accepted, tag, timeout=60)
    app_ids = ",".join(f"'{r['result']['salesforce_id']}'" for r in final.values())
    files = stack.org_rows(
        f"SELECT FirstPublishLocationId FROM ContentVersion WHERE FirstPublishLocationId IN "
        f"({app_ids})"
    )
    per_app = Counter(f["FirstPublishLocationId"] for f in files)
    assert len(per_app) == n and set(per_app.values()) == {1}, per_app.most_common(3)


def test_worker_killed_again_and_again(stack):
    """The worker is SIGKILLed at random moments, again and again, while a slow org receives
    the batches; a supervisor restarts it each time. Each application reaches the org once.
    (tests/integration/test_applications_crash.py kills it once at two chosen steps.)"""
    tag = new_tag("k")
    n, kills = scale(300, 3000), scale(3, 12)
    rng = random.Random(5)
    stack.faults(latency_ms=400)
    accepted: dict[str, str] = {}
    for start in range(0, n, 100):
        items = [stack.candidate(tag, i, job=i) for i in range(start, start + 100)]
        accepted.update(stack.submit_batch(items))
    with Supervisor(stack) as supervisor:
        for _ in range(kills):
            wait_for(lambda: stack.worker is not None and stack.worker.alive(), 60, "a worker")
            time.sleep(rng.uniform(1.0, 3.0))
            stack.worker.kill()
        wait_for(lambda: supervisor.restarts >= kills, 60, "the supervisor's restarts")
        stack.faults(latency_ms=0)
        assert_exactly_once(stack, accepted, tag, timeout=scale(90, 300))


def _batch_item_id(outcome: dict) -> str:
    """The id a batch item got, or (a batch cut short by the kill, sent again) already had:
    the items stored before the kill answer 409 with the existing application."""
    if outcome["status"] == 202:
        return outcome["id"]
    assert outcome["status"] == 409, outcome
    return outcome["existing_application"]["id"]


def test_gateway_sigkill_mid_request(stack):
    """gunicorn is SIGKILLed while clients are submitting (single and batch, each with an
    Idempotency-Key); it is started again and every client retries what got no answer with the
    same key. Each submission ends with exactly one id, and each id is in the org once.

    An application stored by a request the kill cut short (after the store, before its drain
    was scheduled) is answered to the retry as a replay, which schedules nothing: beat's
    delivery sweep delivers it (within 30 s)."""
    tag = new_tag("g")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = stack.start_gateway(port)
    singles, batches, batch_size = scale(60, 400), scale(4, 20), scale(25, 100)
    work: list[tuple[str, list[dict]]] = [
        (f"single-{tag}-{i}", [stack.candidate(tag, i, job=i)]) for i in range(singles)
    ]
    for b in range(batches):
        base = singles + b * batch_size
        items = [stack.candidate(tag, base + i, job=b) for i in range(batch_size)]
        work.append((f"batch-{tag}-{b}", items))
    work.sort(key=lambda w: uuid.uuid5(uuid.NAMESPACE_OID, w[0]).hex)  # interleave kinds
    results: dict[str, dict[str, str]] = {}
    lost_answers = Counter()

    def submit(key: str, items: list[dict]) -> None:
        body = items[0] if key.startswith("single") else {"applications": items}
        path = "/v1/applications" if key.startswith("single") else "/v1/applications/batch"
        headers = {**stack.headers, "Idempotency-Key": key}
        for _ in range(600):  # a minute of retries: the gateway is down for a few seconds
            try:
                response = requests.post(url + path, json=body, headers=headers, timeout=30)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # no answer, or half of one: the outcome is unknown, so send it again
                lost_answers[key] += 1
                time.sleep(0.1)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                time.sleep(0.1)
                continue
            if key.startswith("single"):
                assert response.status_code == 202, response.text
                results[key] = {response.json()["id"]: items[0]["email"]}
            else:
                assert response.status_code == 207, response.text
                results[key] = {
                    _batch_item_id(o): items[o["index"]]["email"] for o in response.json()["items"]
                }
            return
        raise AssertionError(f"{key} never got an answer")

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(submit, key, items) for key, items in work]
        wait_for(lambda: len(results) >= len(work) // 3, 60, "a third of the submissions")
        gateway.kill()  # the whole gunicorn group, mid-request; clients keep trying
        stack.extra.remove(gateway)
        restarted = stack.start_gateway(port)
        for future in futures:
            future.result(timeout=120)
    assert sum(lost_answers.values()) >= 1, "the kill did not land on a request"
    accepted = {i: email for mapping in results.values() for i, email in mapping.items()}
    emails = Counter(accepted.values())
    assert len(accepted) == singles + batches * batch_size and set(emails.values()) == {1}
    assert_exactly_once(stack, accepted, tag, timeout=scale(75, 240))
    restarted.stop()
    stack.extra.remove(restarted)
