"""Work classes: one Celery queue and one worker pool per kind of work, so one slow party
never holds back another.

Every task is routed by name (Celery's ``task_routes``, built here from :data:`WORK_CLASSES`),
never by an ``if`` in a task: a webhook receiver that drips its answer fills only the
``webhooks`` pool, and applications keep flowing through theirs. A task no class names goes
to ``maintenance`` (the default queue), so nothing lands on a queue no worker reads.

=============  ==============================================  ====================
queue          tasks                                           pool (``make run``)
=============  ==============================================  ====================
applications   ``ats_gateway.applications.*`` (delivery)       prefork, 2
feedback       ``ats_gateway.feedback.*`` (feedback delivery)  prefork, 1
webhooks       ``ats_gateway.webhooks.send``                   threads, 8
search         ``ats_gateway.indexing.*``, ``.search.*``,      threads, 2
               ``ats_gateway.tasks.indexing.*`` (search-
               engine notifications)
maintenance    refreshes (jobs snapshot, describes),           prefork, 2
               reconciliation, sweeps (the webhooks status
               sweep), budget probes, any task not named
=============  ==============================================  ====================

Why these pools: Celery enforces soft and hard time limits in the prefork pool (a child
gets ``SoftTimeLimitExceeded``, then is killed and replaced; the threads pool cannot interrupt
a thread; "pool support: prefork/gevent",
https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits). The classes
that call the org (applications, feedback, maintenance) are single-flight drains or
occasional refreshes, so two processes each are plenty and their limits hold. Webhook and
search sends are many small, slow, third-party waits: threads, each bounded by the sender's
own per-attempt wall-clock deadline rather than by Celery.

Each queue's depth and the age of its oldest waiting message are read from the broker at
``/readyz`` and ``/metrics`` time (:func:`queue_depths`): a message waits in the broker list
only while every process of its pool is busy, so a growing age says which pool to scale.
Messages carry the time they were sent in a header (``before_task_publish``) for this.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from celery.signals import before_task_publish

#: The message header holding the epoch time a task message was sent (for the oldest age).
SENT_AT_HEADER = "ats_sent_at"


@dataclass(frozen=True)
class WorkClass:
    queue: str
    tasks: tuple[str, ...]  # task names or glob patterns routed to this queue
    pool: str  # the Celery pool `make run` starts for it
    concurrency: int
    what: str


MAINTENANCE = "maintenance"

WORK_CLASSES: tuple[WorkClass, ...] = (
    WorkClass(
        "applications", ("ats_gateway.applications.*",), "prefork", 2, "application delivery"
    ),
    WorkClass("feedback", ("ats_gateway.feedback.*",), "prefork", 1, "feedback delivery"),
    # Exact names win over patterns in Celery's router: the webhooks sweep (cheap, reads the
    # org's status changes) stays timely even while every send thread waits on a receiver.
    WorkClass("webhooks", ("ats_gateway.webhooks.*",), "threads", 8, "webhook sends"),
    WorkClass(
        "search",
        # tasks/indexing.py ([22]): named ``ats_gateway.indexing.*`` (or ``.search.*``), or left
        # to Celery's default name, the module path.
        ("ats_gateway.indexing.*", "ats_gateway.search.*", "ats_gateway.tasks.indexing.*"),
        "threads",
        2,
        "search-engine notifications",
    ),
    WorkClass(
        MAINTENANCE,
        (
            "ats_gateway.webhooks.sweep",
            "ats_gateway.jobs.*",
            "ats_gateway.metadata.*",
            "ats_gateway.ping",
        ),
        "prefork",
        2,
        "refreshes, reconciliation, sweeps, budget probes",
    ),
)

QUEUE_NAMES: tuple[str, ...] = tuple(c.queue for c in WORK_CLASSES)


def work_class(queue: str) -> WorkClass:
    for c in WORK_CLASSES:
        if c.queue == queue:
            return c
    raise KeyError(f"no work class {queue!r}; known: {', '.join(QUEUE_NAMES)}")


def task_routes() -> dict[str, dict[str, str]]:
    """Celery ``task_routes``: exact names first (Celery tries them before any pattern)."""
    exact: dict[str, dict[str, str]] = {}
    patterns: dict[str, dict[str, str]] = {}
    for c in WORK_CLASSES:
        for name in c.tasks:
            (patterns if "*" in name else exact)[name] = {"queue": c.queue}
    return {**exact, **patterns}


def queue_of(task_name: str) -> str:
    """The queue Celery routes ``task_name`` to (the same matching as ``task_routes``)."""
    from fnmatch import fnmatchcase

    routes = task_routes()
    if task_name in routes:
        return routes[task_name]["queue"]
    for pattern, route in routes.items():
        if fnmatchcase(task_name, pattern):
            return route["queue"]
    return MAINTENANCE


def broker_client(settings: Any) -> Any:
    """A bare Celery client that sends tasks by name to their class's queue (the CLI: it needs
    no app), on the broker the settings name (Sentinel included, [20]). Without the routes a
    task would go to Celery's default queue, which no worker reads any more."""
    from ats_gateway.redis_clients import cli_celery

    client = cli_celery(settings)
    client.conf.update(task_routes=task_routes(), task_default_queue=MAINTENANCE)
    return client


@before_task_publish.connect
def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


def queue_depths(
    client: redis.Redis, queues: Iterable[str] = QUEUE_NAMES, now: float | None = None
) -> dict[str, dict[str, float]]:
    """Each queue's messages waiting for a worker and the age of the oldest (0: none).

    Kombu's Redis transport keeps a queue as a list named after it, pushed on the left and
    popped on the right, so the oldest message is the last element. Messages a worker has
    taken (running, or holding a countdown) are not waiting and not counted."""
    now = time.time() if now is None else now
    names = list(queues)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
            pipe.lindex(name, -1)
        answers = pipe.execute()
    depths: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        depth, oldest = answers[2 * i], answers[2 * i + 1]
        depths[name] = {"depth": int(depth or 0), "oldest_seconds": _age(oldest, now)}
    return depths


def _age(raw: bytes | str | None, now: float) -> float:
    if not raw:
        return 0.0
    try:
        sent = float(json.loads(raw)["headers"][SENT_AT_HEADER])
    except (ValueError, KeyError, TypeError):  # sent by a process without the stamp
        return 0.0
    return round(max(0.0, now - sent), 1)
