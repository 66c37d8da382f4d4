"""Celery, the Flask way: tasks run inside the app context; the Celery app lives on the Flask app.

Tasks are declared with `@shared_task` in the modules listed in `TASK_MODULES`; each is thin and
calls a service. A module that needs periodic runs defines `beat_schedule(settings)`; the
entries of all of them make up the beat schedule.

[19] Work classes: every task is routed to its class's queue by name (``task_routes`` from
``tasks/queues.py``; anything unnamed goes to ``maintenance``), and carries soft and hard time
limits sized to its work (``task_annotations`` from ``tasks/limits.py``, a Celery-wide default
for the rest).
"""

from __future__ import annotations

import importlib
from typing import Any

from celery import Celery, Task
from flask import Flask

from ats_gateway.redis_clients import celery_connection
from ats_gateway.tasks import limits, queues
from ats_gateway.tasks.broker import broker_resilience

TASK_MODULES = [
    "ats_gateway.tasks.system",
    "ats_gateway.tasks.applications",
    "ats_gateway.tasks.metadata",
    "ats_gateway.tasks.jobs",
    "ats_gateway.tasks.feedback",
    "ats_gateway.tasks.webhooks",
    "ats_gateway.tasks.job_events",
    "ats_gateway.tasks.indexing",
]


def celery_init_app(app: Flask) -> Celery:
    settings = app.config["SETTINGS"]

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    broker_url, connection_options = celery_connection(settings)
    celery_app.conf.update(
        broker_url=broker_url,
        result_backend=broker_url,
        include=TASK_MODULES,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task whose worker dies mid-run is redelivered, never lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Longer than the longest retry delay, so a waiting retry is not redelivered twice.
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout,
            **connection_options,
        },
        result_backend_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout,
            **connection_options,
        },
        result_expires=3600,
        **broker_resilience(sentinel=bool(settings.sentinel_addresses)),
        worker_hijack_root_logger=False,
        task_track_started=True,
        # One queue per work class (tasks/queues.py): a slow party fills only its own pool.
        task_routes=queues.task_routes(),
        task_default_queue=queues.MAINTENANCE,
        task_create_missing_queues=True,
        # Every task has a deadline (tasks/limits.py); prefork pools enforce them.
        task_annotations=limits.task_annotations(settings),
        task_soft_time_limit=limits.DEFAULT_SOFT,
        task_time_limit=limits.DEFAULT_HARD,
    )
    celery_app.conf.beat_schedule = collect_beat_schedule(settings)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def collect_beat_schedule(settings: Any) -> dict[str, dict[str, Any]]:
    """Every task module's `beat_schedule(settings)`, merged (names must not collide)."""
    schedule: dict[str, dict[str, Any]] = {}
    for name in TASK_MODULES:
        module = importlib.import_module(name)
        entries = module.beat_schedule(settings) if hasattr(module, "beat_schedule") else {}
        clash = schedule.keys() & entries.keys()
        if clash:
            raise RuntimeError(f"beat schedule entries defined twice: {sorted(clash)}")
        schedule.update(entries)
    return schedule
