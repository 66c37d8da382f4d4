"""What describe revalidation costs the org while nothing happens, and what a change costs.

Real beat and worker processes on a compressed schedule (`describe_refresh_seconds=2`: beat
asks every 2 s, a revalidation is due 2 s after the last one), the sandbox org counting every
call it receives by kind (`/__sandbox__/usage`).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import requests
from stack import FAST_DELIVERY, running_beat, running_worker, wait_for

from ats_gateway.extensions import services
from ats_gateway.tasks.metadata import revalidation_due

CHANGED = ("job_portal", "bpats__Job_Board_Application__c")
FIELD = "bpats__Source__c"


@pytest.fixture(scope="module")
def stack_overrides():
    return {
        **FAST_DELIVERY,
        "describe_refresh_seconds": 2,
        # the sandbox shares our clock: ask "since when we last checked", to the second
        "describe_clock_skew_seconds": 0.0,
        # no snapshot reload on beat while we count (the org has no subscriber here)
        "jobs_staleness_seconds": 3600,
    }


def usage(sandbox) -> dict:
    return requests.get(sandbox.url + "/__sandbox__/usage?detail=1", timeout=5).json()


def reset_usage(sandbox) -> None:
    requests.post(sandbox.url + "/__sandbox__/usage", json={"used": 0}, timeout=5)


def settled(cache, after: float) -> float:
    """Wait for a revalidation that started after `after`, and for the worker to finish it."""
    marked = wait_for(
        lambda: (cache.revalidated_at() or 0) > after and cache.revalidated_at(),
        timeout=60,
        what="a describe revalidation",
    )
    time.sleep(0.5)
    return marked


def test_idle_revalidation_costs_one_describe_global_per_connection_and_a_change_one_describe(
    sandbox_org, stack_settings, gateway_app, stack_redis, tmp_path
):
    svc = services(gateway_app)
    cache, pairs = svc.metadata.cache, svc.metadata.pairs()
    connections = sorted({conn for conn, _ in pairs})
    time.sleep(1.1)  # the sandbox's metadata times have one-second precision
    worker = running_worker(stack_settings, gateway_app, tmp_path)
    beat = running_beat(stack_settings, tmp_path)
    try:
        # start-up: the first revalidation loads every describe from the org (and logs in)
        settled(cache, 0)
        settled(cache, cache.revalidated_at())
        assert revalidation_due(svc, time.time()) in (None, "max-age")

        # idle: each revalidation is one Describe Global (304) per connection, nothing else
        reset_usage(sandbox_org)
        start = time.time()
        before = {p: cache.peek(*p) for p in pairs}
        for _ in range(3):
            settled(cache, cache.revalidated_at())
        beat.stop()
        time.sleep(1.0)  # a revalidation under way ends
        idle = usage(sandbox_org)
        print("idle revalidations:", idle)
        assert set(idle["kinds"]) == {"GET /sobjects"}, idle
        assert idle["logins"] == 0, idle
        calls = idle["kinds"]["GET /sobjects"]
        assert calls >= 3 * len(connections) and calls % len(connections) == 0, idle
        for pair in pairs:
            entry = cache.peek(*pair)
            assert entry.source == "org" and entry.checked_at > start  # revalidated ...
            assert entry.fetched_at == before[pair].fetched_at  # ... not fetched again

        # a picklist value added in the org: the next revalidation re-describes that object
        # (its connection's other objects answer 304; the other connection's Describe Global,
        # which cannot see the object, stays 304)
        reset_usage(sandbox_org)
        response = requests.patch(
            f"{sandbox_org.url}/__sandbox__/objects/{CHANGED[1]}/fields/{FIELD}",
            json={"add_picklist_values": ["Revalidation test board"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        beat = running_beat(stack_settings, tmp_path)
        wait_for(
            lambda: (
                "Revalidation test board"
                in cache.peek(*CHANGED).describe.field(FIELD).active_values
            ),
            timeout=60,
            what="the changed describe",
        )
        beat.stop()
        time.sleep(1.0)
        changed = usage(sandbox_org)
        print("after a change:", changed)
        same_connection = [p for p in pairs if p[0] == CHANGED[0]]
        assert changed["kinds"].get("GET /sobjects/*/describe") == len(same_connection), changed
        assert set(changed["kinds"]) == {"GET /sobjects", "GET /sobjects/*/describe"}, changed
        for pair in pairs:
            entry = cache.peek(*pair)
            if pair == CHANGED:
                assert entry.version != before[pair].version
            else:  # 304: the describe held is the one fetched before
                assert entry.fetched_at == before[pair].fetched_at, pair
    finally:
        beat.stop()
        worker.stop()


def test_a_reconciliation_makes_a_revalidation_due_and_nothing_else_does(
    sandbox_org, stack_settings, gateway_app
):
    svc = services(gateway_app)
    settings = svc.settings.replace(describe_refresh_seconds=6 * 3600)
    now = time.time()
    svc.metadata.cache.mark_revalidated(now)
    check = SimpleNamespace(metadata=svc.metadata, events_state=svc.events_state, settings=settings)
    assert revalidation_due(check, now + 3600) is None  # an idle hour: no org call
    # what the events subscriber records when a full reconciliation finished
    svc.events_state.count_reconciliation("interval")
    assert revalidation_due(check, time.time()) == "reconciled"
    svc.metadata.cache.mark_revalidated(time.time() + 0.001)
    assert revalidation_due(check, time.time() + 3600) is None
    assert revalidation_due(check, time.time() + 6 * 3600 + 1) == "max-age"

    # intake refuses a picklist value the cached describe lacks (an admin may have just added
    # it): a revalidation is asked for, honoured at most every 15 minutes
    marked = time.time()
    svc.metadata.cache.mark_revalidated(marked)
    refused = svc.metadata.errors("interview_feedback", {"recommendation": "Added an hour ago"})
    assert any(e["code"] == "not_allowed" for e in refused), refused
    assert revalidation_due(check, marked + 600) is None
    assert revalidation_due(check, marked + 901) == "requested"
