"""Celery's connection to Redis: retried for ever, so a worker or beat rides out a Redis
restart, a failover behind Sentinel, or a full Redis, instead of exiting ([20]).

The settings are Celery's own (https://docs.celeryq.dev/en/stable/userguide/configuration.html):

* ``broker_connection_max_retries=None``: reconnect for ever (the default gives up after 100
  attempts and the worker exits);
* ``broker_channel_error_retry``: a channel error - kombu's Redis transport counts every
  ``ResponseError`` as one, e.g. ``OutOfMemoryError`` from a full Redis or ``READONLY`` from a
  demoted primary - restarts the consumer like a lost connection, instead of ending the worker;
* ``result_backend_always_retry``: storing a task's result retries too.
"""

from __future__ import annotations

from typing import Any


def broker_resilience() -> dict[str, Any]:
    """Celery settings (``conf.update(**broker_resilience())``) for the broker's connection."""
    return {
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 20,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": 5000,
    }
