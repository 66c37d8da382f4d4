"""[19] the circuit breaker of one endpoint, run by run: the send task's body (``send_due``)
against a real Redis and a real receiver process that answers 500. No worker consumes this
database, so each run is the one the test makes (the runs it schedules wait unconsumed).

Breaker: trips after 3 failed runs in a row, pauses 3 s then 6 s (the cap); half open, one
event is tried. (Pauses of seconds, so that a loaded machine's stalls do not end them early.)
"""

from __future__ import annotations

import time

import pytest
from stack import build_gateway

from ats_gateway.security import KeyStore
from ats_gateway.tasks import webhooks as hooks_tasks
from webhooks.harness import Receiver


@pytest.fixture
def hooks(base_settings, redis_databases):
    with redis_databases.lease() as url:
        settings = base_settings.replace(
            redis_url=url,
            webhook_retry_base_seconds=0.01,
            webhook_retry_max_seconds=0.01,
            webhook_retry_window_seconds=60.0,  # many attempts: nothing dead-letters here
            webhook_deadline_seconds=2.0,
            webhook_breaker_failures=3,
            webhook_breaker_base_seconds=3.0,
            webhook_breaker_max_seconds=6.0,
        )
        app = build_gateway(settings)
        with app.app_context():
            yield hooks_tasks.runtime(app)


def test_a_failing_endpoint_is_paused_then_tried_with_one_event(hooks, tmp_path):
    receiver = Receiver(tmp_path / "r.jsonl").start()
    try:
        receiver.control(status=500)
        key, _ = KeyStore(hooks.redis).create(
            kind="secret", name="board", scopes=["webhooks:manage"]
        )
        endpoint = hooks.registry.create(f"key:{key.id}", receiver.url)
        queue = hooks.queue(endpoint.id)

        def run() -> dict:
            # the run a due timer would make (retries are due after 0.01 s)
            time.sleep(0.05)
            return hooks_tasks.send_due(hooks, endpoint.id)

        for i in range(5):
            queue.put({"type": "webhook.test", "body": "{}"}, item_id=f"msg_{i}")
        reports = [run() for _ in range(3)]
        # each failed run tried the whole batch (500 is an answer: the batch goes on)
        assert len(receiver.requests()) == 15
        assert [r["paused"] for r in reports] == [0, 0, 3.0]  # the third run tripped it
        # open: runs try nothing, and say how long is left
        tried = len(receiver.requests())
        paused = run()
        assert paused["reason"] == "breaker open" and 0 < paused["retry_in"] <= 3.0
        assert len(receiver.requests()) == tried
        # half open after the pause: one event only; it fails, so a longer pause
        time.sleep(paused["retry_in"])
        half_open = run()
        assert half_open["batches"] == 1 and half_open["paused"] == 6.0
        assert len(receiver.requests()) == tried + 1
        # the receiver recovers: the half-open event succeeds and the breaker closes, the
        # next run takes the whole backlog again
        receiver.control(status=0)
        time.sleep(6.0)
        assert run()["health"] == "ok"
        closed = run()
        assert closed["outcomes"].get("delivered") == 4 and closed["paused"] == 0
        assert queue.counts()["queued"] == 0
    finally:
        receiver.stop()
