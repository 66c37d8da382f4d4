"""The API budget kept in Redis: shared across processes, newest observation wins, reserve."""

from __future__ import annotations

from ats_gateway.salesforce.budget import ApiBudget


def _budget(sf_redis, now, **kw) -> ApiBudget:
    return ApiBudget(sf_redis, "00D000000000001", key_prefix="test:sf:", clock=lambda: now[0], **kw)


def test_nothing_recorded_means_may_spend(sf_redis):
    budget = _budget(sf_redis, [1.0])
    snap = budget.snapshot()
    assert (snap.used, snap.limit, snap.remaining, snap.reserve) == (None, None, None, None)
    assert budget.may_spend(1000) is True


def test_reserve_is_kept_and_configurable(sf_redis):
    now = [100.0]
    budget = _budget(sf_redis, now)
    budget.record("api-usage=13000/15000")
    assert budget.may_spend(500) is True  # 2000 - 500 >= 1500
    assert budget.may_spend(501) is False
    strict = _budget(sf_redis, now, reserve_fraction=0.2)
    assert strict.may_spend(1) is False  # 2000 - 1 < 3000
    snap = budget.snapshot()
    assert snap.as_dict() == {
        "org": "00D000000000001",
        "used": 13000,
        "limit": 15000,
        "remaining": 2000,
        "reserve": 1500,
        "updated_at": 100.0,
        "exhausted": False,
    }


def test_a_slow_older_response_does_not_overwrite_a_newer_one(sf_redis):
    now = [200.0]
    budget = _budget(sf_redis, now)
    budget.record("api-usage=500/15000")
    now[0] = 199.0  # recorded later, observed earlier
    budget.record("api-usage=400/15000")
    assert budget.snapshot().used == 500


def test_other_processes_see_the_same_numbers(sf_redis, sf_redis_server):
    import redis

    _budget(sf_redis, [1.0]).record("api-usage=42/15000")
    other_process = redis.Redis.from_url(sf_redis_server.url)
    other = ApiBudget(other_process, "00D000000000001", key_prefix="test:sf:")
    assert other.snapshot().used == 42


def test_limit_exceeded_stops_spending_until_the_window_frees_calls(sf_redis):
    now = [10.0]
    budget = _budget(sf_redis, now)
    budget.record("api-usage=100/15000")
    budget.record_exhausted()
    assert budget.may_spend() is False and budget.snapshot().exhausted
    now[0] = 20.0
    budget.record("api-usage=9000/15000")  # the rolling window moved on
    assert budget.may_spend() is True
