"""Job lifecycle events ([22]): one entry per real change of a public job, from any path."""

from __future__ import annotations

import pytest
import redis

from ats_gateway.services.jobs.lifecycle import JobLifecycle


@pytest.fixture
def store(redis_databases):
    with redis_databases.lease() as url:
        client = redis.Redis.from_url(url)
        yield client
        client.close()


def job(n: int, **fields) -> dict:
    return {"id": f"a0M{n:012d}AAA", "title": f"Job {n}", **fields}


def kinds(lifecycle: JobLifecycle) -> list[tuple[str, str]]:
    return [(e.job_id[-6:-3], e.event) for e in lifecycle.read("0-0")]


def test_the_first_full_reload_is_a_silent_baseline_then_changes_are_told(store):
    lifecycle = JobLifecycle(store)
    assert (
        lifecycle.observe([job(1), job(2)], [], id_field="id", source="reconcile", full=True) == 0
    )
    # the same versions again, by another path: nothing
    assert lifecycle.observe([job(1)], [], id_field="id", source="changes") == 0
    lifecycle.observe([job(1, title="Retitled"), job(3)], [], id_field="id", source="changes")
    lifecycle.observe(
        [job(1, title="Retitled"), job(3)], [], id_field="id", source="reconcile", full=True
    )
    lifecycle.observe([], [job(2)["id"]], id_field="id", source="changes")
    assert kinds(lifecycle) == [("001", "changed"), ("003", "opened"), ("002", "closed")]
    entry = lifecycle.read("0-0")[0]
    assert entry.digest and entry.source == "changes"


def test_reopened_job_is_opened_again_and_a_close_carries_no_digest(store):
    lifecycle = JobLifecycle(store)
    lifecycle.observe([job(1)], [], id_field="id", source="changes")
    lifecycle.observe([], [job(1)["id"]], id_field="id", source="changes")
    lifecycle.observe([job(1)], [], id_field="id", source="changes")
    events = lifecycle.read("0-0")
    assert [e.event for e in events] == ["opened", "closed", "opened"]
    assert events[1].digest == "" and events[0].digest == events[2].digest


def test_consume_moves_each_consumer_past_what_it_handled(store):
    lifecycle = JobLifecycle(store)
    lifecycle.observe([job(1)], [], id_field="id", source="changes")
    seen: list[str] = []
    assert lifecycle.consume("a", lambda events: seen.extend(e.event for e in events)) == 1
    assert lifecycle.consume("a", lambda events: seen.extend(e.event for e in events)) == 0
    # a new consumer starting "from now" skips the history
    assert lifecycle.consume("b", lambda events: seen.append("b"), from_now=True) == 0
    lifecycle.observe([], [job(1)["id"]], id_field="id", source="changes")
    assert lifecycle.consume("b", lambda events: seen.extend(e.event for e in events)) == 1
    assert seen == ["opened", "closed"]


def test_a_failing_handler_leaves_the_cursor_where_it_was(store):
    lifecycle = JobLifecycle(store)
    lifecycle.observe([job(1)], [], id_field="id", source="changes")

    def boom(events):
        raise RuntimeError("consumer down")

    with pytest.raises(RuntimeError):
        lifecycle.consume("a", boom)
    assert lifecycle.consume("a", lambda events: None) == 1


def test_a_full_reload_larger_than_one_chunk_is_one_silent_baseline(store):
    lifecycle = JobLifecycle(store)
    jobs = [job(n) for n in range(1, 1201)]  # three script calls
    assert lifecycle.observe(jobs, [], id_field="id", source="reconcile", full=True) == 0
    changed = [*jobs[:-1], job(1200, title="Moved")]
    assert lifecycle.observe([*changed, job(5000)], [], id_field="id", source="x", full=True) == 2
    assert kinds(lifecycle) == [("200", "changed"), ("000", "opened")]
