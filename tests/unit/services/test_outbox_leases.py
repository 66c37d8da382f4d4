"""Leases that follow the worker (issue [14]), against a real Redis and the real clock: the
heartbeat keeps a live worker's batch and drain lock, a stopped one loses them within a lease,
and a batch is stored all or nothing."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from ats_gateway.services.delivery import Outbox, Outcome


def _outbox(redis_client, *, heartbeat: bool, lease: float = 0.6) -> Outbox:
    return Outbox(
        redis_client, "lease-" + uuid.uuid4().hex[:8], lease_seconds=lease, heartbeat=heartbeat
    )


@pytest.fixture
def cleanup(redis_client):
    made: list[Outbox] = []
    yield made
    for box in made:
        for key in redis_client.scan_iter(box.prefix + "*"):
            redis_client.delete(key)


def test_the_heartbeat_keeps_a_live_workers_batch(redis_client, cleanup):
    box = _outbox(redis_client, heartbeat=True)
    cleanup.append(box)
    box.put({"n": 1})
    token, items = box.claim(10)
    time.sleep(1.5)  # two and a half leases
    assert box.claim(10)[1] == [], "a live worker's batch was taken over"
    assert box.settle_many(items, token, [Outcome.delivered()]) == [True]
    assert box.heartbeat.held() == {}


def test_without_renewal_the_batch_is_taken_over_and_the_old_settle_fenced(redis_client, cleanup):
    box = _outbox(redis_client, heartbeat=False)
    cleanup.append(box)
    box.put({"n": 1})
    old_token, old_items = box.claim(10)
    time.sleep(0.8)
    new_token, new_items = box.claim(10)
    assert [i.id for i in new_items] == [i.id for i in old_items]
    assert box.settle_many(old_items, old_token, [Outcome.delivered()]) == [False]
    assert box.settle_many(new_items, new_token, [Outcome.delivered()]) == [True]


def test_the_drain_lock_lives_while_held_and_ends_within_a_lease_after(redis_client, cleanup):
    box = _outbox(redis_client, heartbeat=True)
    cleanup.append(box)
    lock = box.drain_lock()
    assert lock.acquire()
    time.sleep(1.5)
    assert not box.drain_lock().acquire(), "the held drain lock expired"
    # A worker that dies stops renewing: simulate by forgetting the lock in the heartbeat.
    box.heartbeat.release_all(lock.lock)
    time.sleep(0.8)
    other = box.drain_lock()
    assert other.acquire(), "a dead drainer's lock outlived its lease"
    other.release()


def test_a_batch_is_stored_all_or_nothing_and_in_order(redis_client, cleanup):
    box = _outbox(redis_client, heartbeat=False, lease=30)
    cleanup.append(box)
    first = box.put({"n": 0}, unique=["u0"])
    results = box.put_many(
        [
            {"payload": {"n": 1}, "unique": ["u1"]},
            {"payload": {"n": 2}, "unique": ["u0"]},  # held by `first`
            {"payload": {"n": 3}, "unique": ["u1"]},  # held by the first entry of this batch
            {"payload": {"n": 4}, "attachments": {"resume": b"\x00cv"}},
        ]
    )
    assert [r.outcome for r in results] == ["accepted", "duplicate", "duplicate", "accepted"]
    assert results[1].id == first.id and results[2].id == results[0].id
    assert box.counts()["queued"] == 3
    redis_client.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):  # (Valkey: "OOM command ...")
            box.put_many([{"payload": {"n": 5}}, {"payload": {"n": 6}}])
    finally:
        redis_client.config_set("maxmemory", 0)
    assert box.counts()["queued"] == 3
