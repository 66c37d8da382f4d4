"""[20] Redis clients from settings: Sentinel for every client, and what readiness says of the
server (the session's real Redis; no connection is made for the Sentinel clients)."""

from __future__ import annotations

from redis.sentinel import SentinelConnectionPool

from ats_gateway.config import Settings
from ats_gateway.embedded import find_redis_server
from ats_gateway.embedded.redis import server_version
from ats_gateway.redis_clients import build_redis, celery_connection, server_status
from ats_gateway.tasks.broker import broker_resilience

SENTINELS = {
    "ATS_GATEWAY_REDIS_SENTINELS": "10.0.0.21:26379, 10.0.0.22:26380,10.0.0.23",
    "ATS_GATEWAY_REDIS_SENTINEL_MASTER": "ats",
    "ATS_GATEWAY_REDIS_SENTINEL_PASSWORD": "s3ntinel",
    "ATS_GATEWAY_REDIS_URL": "redis://:n0de@localhost/3",
}


def test_sentinel_settings_reach_every_client():
    settings = Settings.from_env(SENTINELS)
    assert settings.sentinel_addresses == [
        ("10.0.0.21", 26379),
        ("10.0.0.22", 26380),
        ("10.0.0.23", 26379),
    ]
    assert settings.durable_replicas == 1  # the default behind Sentinel
    client = build_redis(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "ats"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "n0de"
    url, options = celery_connection(settings)
    assert url == (
        "sentinel://:n0de@10.0.0.21:26379/3;sentinel://:n0de@10.0.0.22:26380/3;"
        "sentinel://:n0de@10.0.0.23:26379/3"
    )
    assert options == {"master_name": "ats", "sentinel_kwargs": {"password": "s3ntinel"}}
    assert broker_resilience(sentinel=True)["broker_transport"].endswith(":SentinelTransport")
    assert broker_resilience()["broker_connection_max_retries"] is None


def test_without_sentinel_nothing_changes():
    settings = Settings.from_env({"ATS_GATEWAY_REDIS_URL": "redis://127.0.0.1:6390/2"})
    assert settings.durable_replicas == 0
    assert celery_connection(settings) == ("redis://127.0.0.1:6390/2", {})
    assert build_redis(settings).connection_pool.connection_kwargs["port"] == 6390


def test_the_suite_runs_a_redis_with_waitaof(redis_client, base_settings):
    assert server_version(find_redis_server())[:2] >= (7, 2)
    state, details = server_status(redis_client, base_settings)
    assert state == "ok" and details["aof"] is True
    state, details = server_status(redis_client, base_settings.replace(intake_replicas=1))
    assert state == "fail" and "1 must confirm" in details["durability"]
