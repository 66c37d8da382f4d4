"""Celery's connection to Redis: retried for ever, so a worker or beat rides out a Redis
restart, a failover behind Sentinel, or a full Redis, instead of exiting ([20]).

The settings are Celery's own (https://docs.celeryq.dev/en/stable/userguide/configuration.html):

* ``broker_connection_max_retries=None``: reconnect for ever (the default gives up after 100
  attempts and the worker exits);
* ``broker_channel_error_retry``: a channel error - kombu's Redis transport counts every
  ``ResponseError`` as one, e.g. ``OutOfMemoryError`` from a full Redis or ``READONLY`` from a
  demoted primary - restarts the consumer like a lost connection, instead of ending the worker;
* ``result_backend_always_retry``: storing a task's result retries too.

Behind Sentinel the broker is kombu's Sentinel transport with one fix (:class:`SentinelTransport`).
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel, made to fail like a lost connection when it is closed after
    its transport was: on a failover, closing the channel restores unacked messages through a
    new pool built from ``self.connection.client``, which is None by then, and the
    AttributeError ended the worker ("Unrecoverable error", exit 1; seen in
    tests/reliability/test_failover.py). A ConnectionError there is ignored by kombu
    (``maybe_close_channel``) and the consumer reconnects; the unacked messages are restored
    by the next restore pass, and the outbox is drained by beat's sweep meanwhile."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection closed (failover)")
        return super()._connparams(asynchronous=asynchronous)


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def broker_resilience(*, sentinel: bool = False) -> dict[str, Any]:
    """Celery settings (``conf.update(**broker_resilience())``) for the broker's connection."""
    extra = {"broker_transport": f"{__name__}:SentinelTransport"} if sentinel else {}
    return {
        **extra,
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 20,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 5000,
    }
