"""Celery's connection to Redis: retried for ever, so a worker or beat rides out a Redis
restart, a failover behind Sentinel, or a full Redis, instead of exiting ([20]).

The settings are Celery's own (https://docs.celeryq.dev/en/stable/userguide/configuration.html):

* ``broker_connection_max_retries=None``: reconnect for ever (the default gives up after 100
  attempts and the worker exits);
* ``broker_channel_error_retry``: a channel error - kombu's Redis transport counts every
  ``ResponseError`` as one, e.g. ``OutOfMemoryError`` from a full Redis or ``READONLY`` from a
  demoted primary - restarts the consumer like a lost connection, instead of ending the worker;
* ``result_backend_always_retry``: storing a task's result retries too.

The transports are kombu's Redis and Sentinel ones with one fix (:class:`_ClosedTransportGuard`).
"""

from __future__ import annotations

from typing import Any

import redis
from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis


class _ClosedTransportGuard:
    """kombu's Redis channel, made to fail like a lost connection when it is closed after its
    transport was: on a Redis restart or failover, closing the channel restores unacked
    messages through a new pool built from ``self.connection.client``, which is None by then,
    and the AttributeError ended the worker ("Unrecoverable error", exit 1, on every restart:
    tests/reliability/test_failover.py). A ConnectionError there is ignored by kombu
    (``maybe_close_channel``) and the consumer reconnects; the unacked messages are restored
    by a later restore pass, and beat's sweep drains the outbox meanwhile."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:  # type: ignore[attr-defined]
            raise redis.ConnectionError("the broker connection closed (restart or failover)")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class RedisChannel(_ClosedTransportGuard, kombu_redis.Channel):
    pass


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


class SentinelChannel(_ClosedTransportGuard, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


# kombu re-resolves the transport from the URL's scheme when it fails over to the next of the
# Sentinel URLs ("sentinel://a;sentinel://b"), which would bring the stock transport (and the
# bug above) back after the first failover: the scheme names point at ours in this process.
kombu_transport.TRANSPORT_ALIASES["redis"] = f"{__name__}:RedisTransport"
kombu_transport.TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
for _scheme in ("redis", "sentinel"):
    kombu_transport._transport_cache.pop(_scheme, None)


def broker_resilience(*, sentinel: bool = False) -> dict[str, Any]:
    """Celery settings (``conf.update(**broker_resilience())``) for the broker's connection."""
    transport = "SentinelTransport" if sentinel else "RedisTransport"
    return {
        "broker_transport": f"{__name__}:{transport}",
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 20,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 5000,
    }
