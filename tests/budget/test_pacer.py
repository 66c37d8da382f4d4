"""The pacer's decisions on a real Redis with a hand-moved clock (no org: the usage the org would
report is recorded as the client records it, and calls are counted as the client counts them).

What is checked is the rule of services/pacing.py, step by step: the allowance accrues at
ceiling / 86,400 calls a second, every call of ours (interactive ones too) is taken from it, a
full batch or the latency bound sends anyway, the ceiling itself never gives way, the share or
an absolute figure sets the ceiling, and the org's own reserve pauses delivery.
"""

from __future__ import annotations

import uuid

import pytest

from ats_gateway.salesforce.budget import ApiBudget, api_purpose
from ats_gateway.services.delivery import Outbox
from ats_gateway.services.pacing import Pacer, PaceSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def budget(redis_client, clock) -> ApiBudget:
    org = "00D" + uuid.uuid4().hex[:12]
    b = ApiBudget(redis_client, org, key_prefix=f"test-{org}:", clock=clock)
    b.record("api-usage=100/15000", count=False)  # the org: 15,000 calls a day, 100 used
    return b


def make(redis_client, budget, clock, **settings) -> tuple[Pacer, Outbox]:
    values = {"share": 0.2, "window": 2.0, "max_wait": 900.0, "batch_size": 1000, **settings}
    pacer = Pacer(redis_client, PaceSettings(**values), lambda: budget, clock=clock)
    outbox = Outbox(redis_client, "pace-" + uuid.uuid4().hex[:8], fsync=False, clock=clock)
    return pacer, outbox


def spend(budget: ApiBudget, n: int, purpose: str = "delivery", used: int | None = None) -> None:
    with api_purpose(purpose):
        for _ in range(n):
            budget.record(f"api-usage={used or 200}/15000")


def queue(outbox: Outbox, n: int) -> None:
    for i in range(n):
        outbox.put({"i": i}, wait=False)


def test_allowance_accrues_at_the_ceiling_rate(redis_client, budget, clock):
    """15,000 x 0.2 = 3,000 calls a day: a 3-call batch every 86.4 s. A fresh start may send
    one batch at once; after it, the next waits for the allowance, and goes once it is there."""
    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 5)
    first = pacer.decide(outbox)
    assert (first.send, first.reason, first.ceiling) == (True, "allowance", 3000)
    spend(budget, 3)  # the batch
    pacer.sent(3)
    for item in outbox.claim(1000)[1]:
        outbox.redis.delete(outbox.item_key(item.id))
    queue(outbox, 5)
    clock.now += 10
    waiting = pacer.decide(outbox)
    assert (waiting.send, waiting.reason) == (False, "pacing")
    assert waiting.wait == pytest.approx(86.4 - 10, abs=0.5)
    clock.now += 77
    assert pacer.decide(outbox).reason == "allowance"


def test_interactive_calls_come_first(redis_client, budget, clock):
    """Every call of ours is taken from the allowance: after a feedback link (2 interactive
    calls) delivery waits for what they used, and the calls show up under their purpose."""
    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 1)
    assert pacer.decide(outbox).send
    spend(budget, 3)
    clock.now += 86.5
    spend(budget, 2, purpose="interactive")
    decision = pacer.decide(outbox)
    assert (decision.send, decision.reason) == (False, "pacing")
    assert decision.wait == pytest.approx(2 * 28.8, abs=0.5)
    assert budget.spent() == {"delivery": 3, "interactive": 2}


def test_full_batch_and_latency_bound_send_without_allowance(redis_client, budget, clock):
    pacer, outbox = make(redis_client, budget, clock, max_wait=30.0, batch_size=10)
    queue(outbox, 1)
    assert pacer.decide(outbox).send
    spend(budget, 3)
    queue(outbox, 3)
    clock.now += 5
    assert pacer.decide(outbox).reason == "pacing"
    clock.now += 30  # the oldest waited 30 s: the bound
    assert (pacer.decide(outbox).send, pacer.decide(outbox).reason) == (True, "max_wait")
    queue(outbox, 10)
    assert pacer.decide(outbox).reason == "full"


def test_the_ceiling_holds_even_past_the_latency_bound(redis_client, budget, clock):
    """With the 24 h ceiling spent, nothing goes: not a full batch, not at the bound; the wait
    ends when the oldest calls leave the rolling window."""
    pacer, outbox = make(redis_client, budget, clock, max_wait=30.0, batch_size=10)
    spend(budget, 2850)  # 3,000 less the 5% headroom left to interactive calls
    queue(outbox, 20)
    clock.now += 3600
    decision = pacer.decide(outbox)
    assert (decision.send, decision.reason) == (False, "ceiling_exhausted")
    assert 0 < decision.wait <= 3600
    clock.now += 86400  # a day later the window is empty again
    assert pacer.decide(outbox).send


def test_absolute_calls_per_day_replace_the_share(redis_client, budget, clock):
    pacer, _ = make(redis_client, budget, clock, calls_per_day=500)
    assert pacer.ceiling(budget.snapshot()) == (500, "ATS_GATEWAY_API_CALLS_PER_DAY")
    shared, _ = make(redis_client, budget, clock, share=0.5)
    assert shared.ceiling(budget.snapshot())[0] == 7500


def test_a_raised_limit_shortens_the_wait(redis_client, budget, clock):
    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 1)
    assert pacer.decide(outbox).send
    spend(budget, 3)
    clock.now += 5
    slow = pacer.decide(outbox)
    budget.record("api-usage=300/1000000", count=False)  # the org's limit was raised
    fast = pacer.decide(outbox)
    assert slow.wait > 60
    assert fast.ceiling == 200_000
    assert fast.send or fast.wait < 2  # was over a minute


def test_the_org_reserve_pauses_delivery(redis_client, budget, clock):
    """The org's own users used the calls: delivery goes to the deliverer, which defers every
    item without a call (its may_spend check); the forecast says paused."""
    pacer, outbox = make(redis_client, budget, clock)
    budget.record("api-usage=14000/15000", count=False)
    queue(outbox, 2)
    decision = pacer.decide(outbox)
    assert decision.reason == "org_reserve"
    forecast = pacer.forecast(outbox)
    assert forecast["paused_by_org"] is True
    assert forecast["delivery"]["eta"] is None


def test_forecast_reports_spend_by_purpose_and_the_eta(redis_client, budget, clock):
    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 1)
    pacer.decide(outbox)
    spend(budget, 3)
    spend(budget, 1, purpose="reconciliation")
    spend(budget, 1, purpose="describe")
    forecast = pacer.forecast(outbox)
    assert forecast["ceiling"] == 3000
    assert forecast["spent_24h"]["delivery"] == 3
    assert forecast["spent_24h"]["reconciliation"] == 1
    assert forecast["spent_24h"]["all"] == 5
    d = forecast["delivery"]
    assert d["queued"] == 1 and d["decision"] == "pacing"
    assert d["eta_seconds"] == pytest.approx(d["wait_seconds"], abs=0.2)
    assert d["wait_seconds"] == pytest.approx(5 / 3000 * 86400, abs=1)


def test_the_budget_command_prints_the_forecast(redis_client, budget, clock):
    from ats_gateway.tasks.budget import render

    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 2)
    pacer.decide(outbox)
    spend(budget, 3)
    spend(budget, 1, purpose="interactive")
    clock.now += 10
    text = render(pacer.forecast(outbox))
    assert f"org {budget.org}: 200 of 15,000 calls used (reserve 1,500)" in text
    assert "ceiling: 3,000 calls / 24 h (ATS_GATEWAY_API_SHARE 0.2 x org limit 15000)" in text
    assert "spent 4, left 2,996" in text
    assert "delivery 3, feedback 0, reconciliation 0, describe 0, probe 0, interactive 1" in text
    assert "delivery: 2 queued (2 due, oldest waiting 10 s); pacing" in text
    assert "next batch in 105 s (max wait 900 s)" in text


def test_other_integrations_slow_the_pace(redis_client, budget, clock):
    """Other users of the org used 12,000 of its 15,000 calls: above the 1,500 reserve only
    1,500 are left, less than the 3,000 ceiling, so delivery paces itself to 1,500 a day."""
    pacer, outbox = make(redis_client, budget, clock)
    queue(outbox, 1)
    assert pacer.decide(outbox).send
    spend(budget, 3, used=203)
    clock.now += 1
    normal = pacer.decide(outbox)
    budget.record("api-usage=12003/15000", count=False)
    slow = pacer.decide(outbox)
    assert normal.rate * 86400 == pytest.approx(3000)
    assert slow.rate * 86400 == pytest.approx(1500)
    assert slow.wait == pytest.approx(2 * normal.wait, rel=0.05)
    assert pacer.forecast(outbox)["pace_calls_per_day"] == 1500


def test_a_large_org_still_gathers_a_window(redis_client, budget, clock):
    """On a 1,000,000-call org the allowance is never short; batches still leave at most once
    per micro-batch window, so what arrives meanwhile travels together."""
    budget.record("api-usage=100/1000000", count=False)
    pacer, outbox = make(redis_client, budget, clock, window=2.0)
    queue(outbox, 1)
    assert pacer.decide(outbox).send
    spend(budget, 3)
    budget.record("api-usage=103/1000000", count=False)
    pacer.sent(3)
    clock.now += 0.5
    waiting = pacer.decide(outbox)
    assert (waiting.send, waiting.reason) == (False, "window")
    assert waiting.wait == pytest.approx(1.5)
    clock.now += 1.5
    assert pacer.decide(outbox).reason == "allowance"
