"""A send run's time budget never stops its first attempt ([19], found by the isolation test).

The sender starts no attempt it could not finish within the run's budget
(``WEBHOOK_RUN_SECONDS``). With a deadline per attempt at or above that budget (the isolation
test's 30 s drip deadline against the 30 s default budget), every run deferred every event
before trying one, and rescheduled itself: the endpoint never received anything and its events
were never retried, delivered or dead-lettered. A run's first attempt always starts now (the
task's Celery limits, run + deadline + 15 s, still bound it); later ones keep the rule.
"""

from __future__ import annotations

import json
import time

from ats_gateway.services.delivery import Item
from ats_gateway.services.webhooks import signing
from ats_gateway.services.webhooks.registry import Endpoint
from ats_gateway.services.webhooks.sender import WebhookSender
from webhooks.harness import Receiver


def _item(n: int) -> Item:
    body = json.dumps({"type": "application.delivered", "n": n})
    return Item(f"msg_{n}", {"body": body}, {}, 0, {}, time.time())


def test_a_deadline_at_the_run_budget_still_sends_one_event_per_run(tmp_path):
    receiver = Receiver(tmp_path / "r.jsonl").start()
    try:
        endpoint = Endpoint(
            "ep_budget",
            "key:k",
            receiver.url,
            frozenset({"application.delivered"}),
            0.0,
            secret=signing.new_secret(),
        )
        sender = WebhookSender(
            endpoint,
            env="test",
            applications=None,
            attempts_limit=5,
            deadline_seconds=30.0,
            run_seconds=30.0,
        )
        outcomes = sender.deliver([_item(1), _item(2)], progress=None)
        # the first event is sent; the second would not fit in the budget: deferred, no attempt
        assert [o.kind for o in outcomes] == ["delivered", "defer"]
        assert outcomes[1].body["code"] == "RUN_BUDGET_SPENT"
        assert [r["headers"].get("webhook-id") for r in receiver.requests()] == ["msg_1"]
    finally:
        receiver.stop()
