"""Every Redis client of the gateway, from settings: one server (`redis_url`) or the primary that
Redis Sentinel names (`redis_sentinels`, `redis_sentinel_master`), and what the server can
promise.

Behind Sentinel a client asks the Sentinels for the primary whenever it (re)connects, and a
connection to a primary that was demoted is dropped on its first ``READONLY`` answer
(redis-py's ``SentinelManagedConnection``), so a failover needs no restart: the commands in
flight fail (a 503 at the HTTP edge, a retry in the workers) and the next ones reach the new
primary. Celery's broker and result backend use kombu's ``sentinel://`` transport with the
same Sentinels (:func:`celery_connection`).

Cluster mode is out of scope: Celery's Redis transport does not support it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from ats_gateway.config import Settings

# WAITAOF appeared in Redis 7.2 (https://redis.io/docs/latest/commands/waitaof/); Valkey
# (forked from 7.2.4) has it in every release.
WAITAOF_VERSION = (7, 2)


def _node_options(settings: Settings) -> dict[str, Any]:
    """Database, credentials and TLS of the data nodes, from `redis_url`."""
    parsed = parse_url(settings.redis_url)
    options: dict[str, Any] = {"db": int(parsed.get("db") or 0)}
    for name in ("username", "password"):
        if parsed.get(name):
            options[name] = parsed[name]
    if settings.redis_url.startswith("rediss://"):
        options["ssl"] = True
    return options


def build_redis(settings: Settings, **overrides: Any) -> redis.Redis:
    """A Redis client (bytes in, bytes out; connects on first command) on the server or, with
    Sentinels configured, on whichever node is the primary now."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "socket_timeout": settings.redis_socket_timeout,
        "health_check_interval": 30,
        # A reconnect after a failover or restart: a few tries with backoff (about 1.5 s in
        # all) before the error reaches the caller.
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 5),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "decode_responses": False,
    }
    options.update(overrides)
    sentinels = settings.sentinel_addresses
    if not sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": options["socket_connect_timeout"],
        "socket_timeout": 2,
    }
    if settings.redis_sentinel_password:
        sentinel_kwargs["password"] = settings.redis_sentinel_password
    if settings.redis_sentinel_tls:
        sentinel_kwargs["ssl"] = True
    sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=redis.Redis,
        **_node_options(settings),
        **options,
    )


def tracking_connection(settings: Settings) -> Callable[[], redis.connection.AbstractConnection]:
    """A factory of the connection a process's tracked keys listen on (``redis_tracking``): the
    same server (or Sentinel's primary, asked again on every connect), RESP2 (invalidations
    arrive as Pub/Sub messages), no retries or health checks (a failure must reach the
    tracker, which then serves nothing from its cache until it has reconnected)."""
    client = build_redis(
        settings,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        health_check_interval=0,
        socket_timeout=5,
    )
    return client.connection_pool.make_connection


def celery_connection(settings: Settings) -> tuple[str, dict[str, Any]]:
    """(URL, transport options) of Celery's broker and result backend: `redis_url`, or
    kombu's Sentinel transport (https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#sentinel)."""
    sentinels = settings.sentinel_addresses
    if not sentinels:
        return settings.redis_url, {}
    node = _node_options(settings)
    auth = f":{node['password']}@" if node.get("password") else ""
    url = ";".join(f"sentinel://{auth}{host}:{port}/{node['db']}" for host, port in sentinels)
    options: dict[str, Any] = {"master_name": settings.redis_sentinel_master}
    sentinel_kwargs: dict[str, Any] = {}
    if settings.redis_sentinel_password:
        sentinel_kwargs["password"] = settings.redis_sentinel_password
    if settings.redis_sentinel_tls:
        sentinel_kwargs["ssl"] = True
    if sentinel_kwargs:
        options["sentinel_kwargs"] = sentinel_kwargs
    return url, options


def server_status(client: redis.Redis, settings: Settings) -> tuple[str, dict[str, Any]]:
    """Readiness of Redis for intake: its version, whether it can confirm durability as
    configured (``WAITAOF`` needs >= 7.2 and the AOF on; ``N`` replicas connected), and
    whether it takes writes at all (a full Redis refuses them: intake answers 503).
    "fail" whenever a ``202`` cannot be given now."""
    info = client.info("server")
    persistence = client.info("persistence")
    replication = client.info("replication")
    version_text = str(info.get("valkey_version") or info.get("redis_version") or "0")
    version = tuple(int(p) for p in version_text.split(".")[:2] if p.isdigit())
    # Replicas that can confirm a write now (a replica still in its full sync cannot).
    replicas = sum(
        1
        for name, value in replication.items()
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )
    details: dict[str, Any] = {
        "version": version_text,
        "server": "valkey"
        if info.get("valkey_version") or info.get("server_name") == "valkey"
        else "redis",
        "role": str(replication.get("role", "")),
        "replicas": replicas,
        "aof": bool(int(persistence.get("aof_enabled") or 0)),
        "intake_replicas": settings.durable_replicas,
    }
    state = "ok"
    if settings.intake_fsync:
        if version < WAITAOF_VERSION:
            state = "fail"
            details["durability"] = (
                f"Redis {version_text} has no WAITAOF (7.2+): a 202 cannot wait for the "
                "append-only file; upgrade, or set ATS_GATEWAY_INTAKE_FSYNC=false to waive it"
            )
        elif not details["aof"]:
            state = "fail"
            details["durability"] = "appendonly is off: a 202 cannot wait for the append-only file"
        elif replicas < settings.durable_replicas:
            state = "fail"
            details["durability"] = (
                f"{replicas} replica(s) connected, {settings.durable_replicas} must confirm "
                "each application: intake answers 503 until they are back"
            )
    try:  # a write that expires at once: a full Redis (noeviction) refuses it, as it does intake
        client.set("ats:readyz:write-probe", b"1", px=1000)
    except redis.exceptions.OutOfMemoryError:
        state = "fail"
        details["full"] = "Redis is at maxmemory and refuses writes: intake answers 503"
    except redis.exceptions.ReadOnlyError:
        state = "fail"
        details["read_only"] = "this node is a replica now (a failover is under way)"
    return state, details


def cli_celery(settings: Settings) -> Any:
    """A bare Celery client on the broker (a CLI command sends tasks by name with it)."""
    from celery import Celery

    url, options = celery_connection(settings)
    client = Celery("ats-gateway-cli", broker=url)
    client.conf.broker_transport_options = options
    return client
