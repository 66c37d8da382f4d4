"""The shared stack fixtures (tests/stack.py) do what their docstring promises: Redis databases
are never handed out twice at once and come back empty, and the pieces compose into a gateway
that serves the sandbox org's public jobs over real HTTP from a gunicorn process."""

from __future__ import annotations

import redis
import requests
from stack import secret_headers


def test_leased_databases_are_distinct_and_come_back_empty(redis_databases, redis_url):
    with redis_databases.lease() as first, redis_databases.lease() as second:
        assert first != second
        assert redis_url not in (first, second)  # db 0 is the session's own
        redis.Redis.from_url(first).set("left-over", "1")
    with redis_databases.lease() as again:
        assert redis.Redis.from_url(again).dbsize() == 0


def test_live_gateway_serves_the_orgs_public_jobs(live_gateway, stack_redis, open_jobs):
    headers = secret_headers(stack_redis, ["jobs:read"], name="stack test")
    response = requests.get(
        live_gateway.url + "/v1/jobs", params={"limit": 100}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["total"] == len(open_jobs) <= 100
    assert {job["id"] for job in body["data"]} == set(open_jobs)
