"""The generic durable outbox against a real Redis: guards, claims, leases, fencing, DLQ."""

from __future__ import annotations

import uuid

import pytest

from ats_gateway.services.delivery import Outbox, Outcome, backoff_delay, drain


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def outbox(redis_client, clock):
    kind = "test-" + uuid.uuid4().hex[:8]
    box = Outbox(
        redis_client,
        kind,
        status_ttl=3600,
        lease_seconds=30,
        retry_base_seconds=1,
        retry_max_seconds=8,
        clock=clock,
    )
    yield box
    for key in redis_client.scan_iter(f"ats-gateway:outbox:{kind}:*"):
        redis_client.delete(key)


def test_put_stores_payload_and_attachment_and_queues(outbox):
    result = outbox.put({"a": 1}, attachments={"resume": b"\x00\xffbinary"}, unique=["u1"])
    assert result.accepted
    _, items = outbox.claim(10)
    assert [i.id for i in items] == [result.id]
    assert items[0].payload == {"a": 1}
    assert dict(items[0].attachments) == {"resume": b"\x00\xffbinary"}
    assert items[0].attachments.size("resume") == 8
    assert outbox.get(result.id)["status"] == "delivering"


def test_idempotency_replays_same_fingerprint_and_refuses_another(outbox):
    first = outbox.put({"a": 1}, idempotency=("key-1", "fp-a"))
    assert outbox.put({"a": 1}, idempotency=("key-1", "fp-a")) == type(first)("replay", first.id)
    conflict = outbox.put({"a": 2}, idempotency=("key-1", "fp-b"))
    assert conflict.outcome == "idempotency_conflict"
    assert outbox.counts()["queued"] == 1


def test_unique_name_answers_duplicate_with_the_holder(outbox):
    first = outbox.put({"a": 1}, unique=["email+job"])
    second = outbox.put({"a": 2}, unique=["email+job"])
    assert second.outcome == "duplicate" and second.id == first.id
    assert outbox.counts()["queued"] == 1


def test_delivered_removes_payload_keeps_status_and_unique(outbox, redis_client):
    item_id = outbox.put({"secret": "candidate"}, attachments={"resume": b"x"}, unique=["u"]).id
    token, [item] = outbox.claim(1)
    assert outbox.settle(item, token, Outcome.delivered(salesforce_id="a0J1"))
    record = outbox.get(item_id)
    assert record["status"] == "delivered" and record["result"] == {"salesforce_id": "a0J1"}
    assert not record["has_payload"]
    assert not any(k.startswith(b"att:") for k in redis_client.hkeys(outbox.item_key(item_id)))
    assert 0 < redis_client.ttl(outbox.item_key(item_id)) <= 3600
    assert outbox.unique_holder("u") == item_id
    assert outbox.counts() == {"queued": 0, "delivering": 0, "dead_letter": 0}


def test_retry_backs_off_and_is_not_claimable_before_due(outbox, clock):
    item_id = outbox.put({"a": 1}).id
    token, [item] = outbox.claim(1)
    outbox.settle(item, token, Outcome.retry(code="UNABLE_TO_LOCK_ROW", message="locked"))
    record = outbox.get(item_id)
    assert record["status"] == "queued" and record["attempts"] == 1
    assert record["error"]["code"] == "UNABLE_TO_LOCK_ROW"
    delay = record["next_attempt_at"] - clock.now
    assert 0.5 <= delay <= 1.0  # base 1 s, jitter into [50%, 100%]
    assert outbox.claim(1)[1] == []
    clock.now += delay
    assert [i.id for i in outbox.claim(1)[1]] == [item_id]


def test_defer_is_not_an_attempt(outbox, clock):
    item_id = outbox.put({"a": 1}).id
    token, [item] = outbox.claim(1)
    outbox.settle(item, token, Outcome.defer(60, code="API_BUDGET_RESERVE"))
    record = outbox.get(item_id)
    assert record["attempts"] == 0 and record["next_attempt_at"] == clock.now + 60


def test_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_off(outbox, clock):
    item_id = outbox.put({"a": 1}).id
    old_token, [old_item] = outbox.claim(1)
    clock.now += 31  # the first worker died or stalled past its lease
    new_token, [new_item] = outbox.claim(1)
    assert new_item.id == item_id and new_token != old_token
    assert not outbox.record_progress(old_item, old_token, salesforce_id="stale")
    assert not outbox.settle(old_item, old_token, Outcome.failed(reason="stale"))
    assert outbox.settle(new_item, new_token, Outcome.delivered(salesforce_id="a0J2"))
    assert outbox.get(item_id)["result"] == {"salesforce_id": "a0J2"}


def test_extend_keeps_a_slow_batch_from_being_reclaimed(outbox, clock):
    outbox.put({"a": 1})
    token, items = outbox.claim(1)
    clock.now += 20
    assert outbox.extend(items, token) == 1
    clock.now += 20  # 40 s after the claim, 20 s after the renewal
    assert outbox.claim(1)[1] == []


def test_progress_survives_a_retry(outbox, clock):
    item_id = outbox.put({"a": 1}).id
    token, [item] = outbox.claim(1)
    assert outbox.record_progress(item, token, create_attempted=True)
    outbox.settle(item, token, Outcome.retry(code="X", message="y"))
    clock.now += 10
    _, [again] = outbox.claim(1)
    assert again.id == item_id and again.progress == {"create_attempted": True}


def test_failed_goes_to_dlq_frees_unique_and_replays_once(outbox, redis_client):
    item_id = outbox.put({"a": 1}, unique=["u"]).id
    token, [item] = outbox.claim(1)
    outbox.settle(
        item, token, Outcome.failed(code="FIELD_CUSTOM_VALIDATION_EXCEPTION", reason="no")
    )
    assert [r["id"] for r in outbox.dead_letters()] == [item_id]
    assert outbox.unique_holder("u") is None  # the candidate may send corrected data
    assert outbox.get(item_id)["has_payload"]  # kept for replay...
    assert 0 < redis_client.ttl(outbox.item_key(item_id)) <= 3600  # ...but not for ever
    assert outbox.replay(item_id)
    assert redis_client.ttl(outbox.item_key(item_id)) == -1  # queued items never expire
    assert not outbox.replay(item_id)  # no longer failed
    assert outbox.dead_letters() == []
    assert outbox.unique_holder("u") == item_id
    _, [again] = outbox.claim(1)
    assert again.payload == {"a": 1} and again.attempts == 0


def test_drop_forgets_the_data_but_not_the_outcome(outbox):
    item_id = outbox.put({"a": 1}).id
    token, [item] = outbox.claim(1)
    outbox.settle(item, token, Outcome.failed(reason="no"))
    assert outbox.drop(item_id)
    record = outbox.get(item_id)
    assert record["status"] == "failed" and not record["has_payload"] and "dropped_at" in record
    assert not outbox.replay(item_id)
    assert outbox.dead_letters() == []


class Recorder:
    """A deliverer that answers from a script, one list of outcome kinds per batch."""

    def __init__(self, script):
        self.script = list(script)
        self.batches = []

    def deliver(self, items, progress):
        self.batches.append([i.id for i in items])
        kinds = self.script.pop(0)
        return [
            Outcome.delivered(n=n) if k == "ok" else Outcome.retry(code="LOCK", message="m")
            for n, k in enumerate(kinds[: len(items)])
        ]


def test_drain_delivers_micro_batches_and_says_when_to_return(outbox, clock):
    for n in range(5):
        outbox.put({"n": n})
    deliverer = Recorder([["ok", "retry", "ok"], ["ok", "ok"]])
    report = drain(outbox, deliverer, batch_size=3)
    assert [len(b) for b in deliverer.batches] == [3, 2]
    assert report.outcomes == {"delivered": 4, "retry": 1}
    assert 0.5 <= report.next_run_in <= 1.0
    retried = deliverer.batches[0][1]
    assert outbox.get(retried)["status"] == "queued"
    assert outbox.counts() == {"queued": 1, "delivering": 0, "dead_letter": 0}


def test_drain_is_single_flight(outbox):
    outbox.put({"n": 1})
    lock = outbox.drain_lock()
    assert lock.acquire()
    try:
        report = drain(outbox, Recorder([["ok"]]), batch_size=10)
        assert not report.ran and report.next_run_in == 0.0
    finally:
        lock.release()


def test_drain_turns_a_crashing_deliverer_into_retries(outbox):
    item_id = outbox.put({"n": 1}).id

    class Broken:
        def deliver(self, items, progress):
            raise KeyError("bug")

    report = drain(outbox, Broken(), batch_size=10)
    assert report.outcomes == {"retry": 1}
    assert outbox.get(item_id)["error"]["code"] == "INTERNAL_ERROR"


@pytest.mark.parametrize(("attempts", "ceiling"), [(0, 1), (1, 2), (3, 8), (10, 600), (50, 600)])
def test_backoff_is_exponential_jittered_and_capped(attempts, ceiling):
    assert backoff_delay(attempts, base=1, cap=600, rng=lambda: 1.0) == ceiling
    assert backoff_delay(attempts, base=1, cap=600, rng=lambda: 0.0) == ceiling / 2
