"""The org's daily limit governs delivery, end to end: a real worker process, a real Redis, the
sandbox org with a daily limit of 15,000 calls, applications POSTed through the gateway app.

Org calls are counted by the sandbox (what the org would bill), and cross-checked with the
gateway's own count by purpose. No beat runs, so nothing else calls the org. Times are only
generous polling deadlines; the assertions are on call counts, statuses and the forecast.
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

from sandbox_stack import wait_for

from ats_gateway.extensions import services
from ats_gateway.tasks import budget as budget_cli

SOAK = os.environ.get("ATS_GATEWAY_SOAK", "") not in ("", "0")
# dedupe query + one /composite of upserts (Contacts, then applications) by the gateway's
# External IDs ([14]'s keyed plan, services/applications/org.py; the sandbox has the fields)
BATCH_COST = 2


def delivered(stack, ids) -> bool:
    return all(r.get("status") == "delivered" for r in stack.statuses(ids).values())


def test_a_steady_trickle_stays_within_the_allowance(budget_stack):
    """13,000 calls a day is 0.15 calls a second: a 3-call batch every ~20 s. Applications
    arrive every 0.5 s for 40 s; the org sees no more calls than the allowance for the time it
    ran plus one batch (and the one batch a fresh start may send at once), every application is
    in the org exactly once, and none waited past the 30 s latency bound (plus delivery time)."""
    per_day, max_wait = 13_000, 30.0
    stack = budget_stack(
        api_calls_per_day=per_day,
        delivery_max_wait_seconds=max_wait,
        delivery_window_seconds=0.5,
    )
    before = stack.org_calls()
    started = time.monotonic()
    ids = []
    for i in range(80):
        ids.append(stack.submit(i))
        time.sleep(0.5)
    wait_for(lambda: delivered(stack, ids), 120, 0.25, what="every application to be delivered")
    ran = time.monotonic() - started
    calls = stack.org_calls() - before

    allowance = per_day / 86400 * ran + 2 * BATCH_COST
    assert calls <= allowance, f"{calls} org calls in {ran:.0f} s; the allowance was {allowance}"
    assert calls >= 2 * BATCH_COST, "delivery should have taken more than one batch"
    spent = stack.forecast()["spent_24h"]
    assert spent["delivery"] == calls  # the gateway's own count agrees with the org's
    assert spent["probe"] == 0

    records = stack.statuses(ids).values()
    waited = [r["updated_at"] - r["created_at"] for r in records]
    assert max(waited) <= max_wait + 15, f"an application waited {max(waited):.0f} s"
    rows = stack.in_org()
    assert len(rows) == len(ids) == len({r["bpats__Email__c"] for r in rows})


def test_a_token_expiry_mid_trickle_keeps_the_pace(budget_stack):
    """[23] The org token leaves Redis (it expires hourly in production) twice during a trickle.
    The batch that logs in again must be priced by the calls it sent, not by the org's
    lifetime delivery count (the pacer read the count as 0 while no token was known, then
    booked every earlier call to that one batch and made small batches wait for minutes).
    Delivery keeps the normal pace, and the learned batch cost stays within the plan's bound."""
    per_day = 13_000  # a 2-call batch every ~13 s
    expiries = 10 if SOAK else 2  # `make soak`: ten expiries, ~4 minutes
    stack = budget_stack(
        api_calls_per_day=per_day, delivery_max_wait_seconds=600, delivery_window_seconds=0.5
    )
    before = stack.org_calls()
    ids, costs = [], []
    for i in range(20 * (expiries + 1)):
        ids.append(stack.submit(i))
        if i == 20:  # a gateway up for hours: its lifetime delivery count is in the hundreds
            for key in stack.redis.scan_iter(match="*spend:*"):
                stack.redis.hincrby(key, "all|delivery", 300)
        if i and i % 20 == 0:
            tokens = list(stack.redis.scan_iter(match="*sf:token:job_portal*"))
            assert tokens, "the worker should have logged in by now"
            stack.redis.delete(*tokens)
        costs.append(stack.forecast()["batch_cost"])
        time.sleep(0.5)
    # At the pace of a correct cost every application is in within ~2 batches of the last
    # one; a batch priced at the lifetime count would hold the rest for minutes.
    wait_for(lambda: delivered(stack, ids), 90, 0.25, what="every application, at the pace")
    forecast = stack.forecast()
    costs.append(forecast["batch_cost"])
    assert max(costs) <= 4, costs  # the plan: 2 calls (+ a replay), whatever the lifetime count
    calls = stack.org_calls() - before
    assert forecast["spent_24h"]["delivery"] == calls
    rows = stack.in_org()
    assert len(rows) == len(ids) == len({r["bpats__Email__c"] for r in rows})


def test_raising_the_org_limit_shortens_the_wait(budget_stack):
    """A share of 0.2 of 15,000 is 3,000 calls a day: after the first batch the next waits
    about 58 s (2 calls a batch). The org's limit is raised to 1,000,000; the waiting drain
    probes /limits, the ceiling becomes 200,000 and the waiting applications go at once."""
    stack = budget_stack(
        delivery_max_wait_seconds=600, delivery_window_seconds=0.5, budget_probe_seconds=3
    )
    first = [stack.submit(0)]
    wait_for(lambda: delivered(stack, first), 30, what="the first application (a full allowance)")
    waiting = [stack.submit(i) for i in range(1, 4)]

    def paced() -> dict | None:
        f = stack.forecast()
        return f if f["delivery"]["decision"] == "pacing" and f["delivery"]["due"] == 3 else None

    before = wait_for(paced, 20, what="the next batch to wait for the allowance")
    assert before["ceiling"] == 3000
    # one batch costs BATCH_COST of 3,000 calls a day: ~58 s between batches (a fixed window
    # would have sent within 2 s); some of it has passed while the forecast was polled
    assert before["delivery"]["wait_seconds"] > 20
    assert {r["status"] for r in stack.statuses(waiting).values()} == {"queued"}

    stack.usage(limit=1_000_000)
    wait_for(lambda: delivered(stack, waiting), 40, what="the waiting applications after the raise")
    after = stack.forecast()
    assert after["ceiling"] == 200_000
    assert after["spent_24h"]["probe"] >= 1  # learnt from the gateway's own /limits probe
    assert after["spent_24h"]["delivery"] == 2 * BATCH_COST
    assert len(stack.in_org()) == 4

    # The forecast as operators see it: /readyz, /metrics, `ats-gateway budget`.
    http = stack.app.test_client()
    check = http.get("/readyz").json["checks"]["api_budget"]
    assert check["status"] == "ok" and check["ceiling"] == 200_000
    assert check["delivery"]["queued"] == 0
    metrics = http.get("/metrics").get_data(as_text=True)
    assert f'ats_gateway_api_calls_24h{{purpose="delivery"}} {2.0 * BATCH_COST}' in metrics
    assert "ats_gateway_api_ceiling_calls 200000.0" in metrics


def test_the_reserve_pauses_delivery_and_the_probe_resumes_it(budget_stack, capsys):
    """The org's own users used 14,000 of its 15,000 calls (the reserve is 1,500): delivery
    pauses, makes no delivery call, and only probes /limits every few seconds. When the org has
    calls again, delivery resumes by itself: no beat, no other traffic tells the gateway."""
    stack = budget_stack(
        delivery_max_wait_seconds=20,
        delivery_window_seconds=0.5,
        budget_probe_seconds=2,
        delivery_budget_defer_seconds=2,
    )
    stack.usage(used=14_000)
    services(stack.app).connections.client("job_portal").limits()  # the gateway learns it
    before, probes_before = stack.org_calls(), stack.forecast()["spent_24h"]["probe"]
    ids = [stack.submit(i) for i in range(5)]

    def deferred() -> bool:
        return all(
            (r.get("deferred") or {}).get("code") == "API_BUDGET_RESERVE"
            for r in stack.statuses(ids).values()
        )

    wait_for(deferred, 30, what="the applications to be deferred for the org's reserve")
    wait_for(lambda: stack.forecast()["spent_24h"]["probe"] >= probes_before + 2, 30, what="probes")
    paused = stack.forecast()
    calls = stack.org_calls() - before
    assert paused["paused_by_org"] is True
    assert paused["spent_24h"]["delivery"] == 0
    assert calls == paused["spent_24h"]["probe"] - probes_before  # probes, and nothing else
    assert stack.app.test_client().get("/readyz").json["checks"]["api_budget"]["status"] == (
        "degraded"
    )
    assert budget_cli.cmd_budget(SimpleNamespace(json=True), stack.settings) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["paused_by_org"] is True and printed["delivery"]["queued"] == 5

    stack.usage(used=0)  # the rolling 24 h window of the org's users moved on
    wait_for(lambda: delivered(stack, ids), 60, what="delivery to resume without outside traffic")
    assert len(stack.in_org()) == 5
    assert stack.forecast()["spent_24h"]["delivery"] == BATCH_COST
