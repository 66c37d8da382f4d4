"""Soft and hard time limits of every task, sized to its work.

A task past its soft limit gets ``SoftTimeLimitExceeded`` raised where it is (in an org call,
usually); past the hard limit its process is killed and replaced. Celery enforces both in the
prefork pool only (https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits), which
is why the classes listed here run prefork pools (tasks/queues.py).

Why a limit never loses or doubles anything here:

* a drain is told to start no batch after ``drain_max_seconds``; the batch in flight then has
  its org calls' own timeouts (``BATCH_CALLS`` of them, each connect + read) before the soft
  limit interrupts it, so a healthy batch is never cut and a dripping org cannot hold a worker
  past the limit;
* an interrupt inside the deliverer becomes a retry of the whole batch (``drain``'s guard),
  settled in one Lua script (never half-written), and the retry is safe: applications are
  upserts keyed by the gateway's id, or marked ``create_attempted`` before the create and
  re-read before being written again; feedback is marked ``sent`` before its call ([14]);
* an interrupt anywhere else leaves claimed items under a lease that nobody renews once the
  drain's lock is released, so the next drain takes them back within one lease;
* the hard limit kills the process: the same as a worker crash, which [14] already survives.

Tasks not listed (and the webhook tasks, which set their own next to their per-attempt
deadline) get the Celery-wide default below.
"""

from __future__ import annotations

from typing import Any

#: From the soft limit to the hard one: time to settle the batch and release the lock.
HARD_AFTER_SOFT = 15.0

#: Every task without limits of its own (Celery's ``task_soft_time_limit``/``task_time_limit``).
DEFAULT_SOFT = 300.0
DEFAULT_HARD = DEFAULT_SOFT + HARD_AFTER_SOFT

#: Org calls a batch in flight may still need when the drain's time is up: applications
#: (services/applications/org.py: the dedupe query, the upserts, the resumes' collection);
#: feedback (one tree call per item, ``FEEDBACK_BATCH`` items a batch).
APPLICATION_BATCH_CALLS = 3
FEEDBACK_BATCH = 2

#: A jobs snapshot is a handful of query pages; the describe refresh revalidates every
#: describe of both connections (a conditional GET each, mostly 304s).
JOBS_REFRESH_CALLS = 6
DESCRIBE_REFRESH_CALLS = 12


def org_call_seconds(settings: Any) -> float:
    """The longest one org call may take by the client's own timeouts."""
    return float(settings.sf_connect_timeout + settings.sf_read_timeout)


def time_limits(settings: Any) -> dict[str, tuple[float, float]]:
    """``{task name: (soft, hard)}`` for the tasks whose work we can size."""
    from ats_gateway.tasks.drain import task_name
    from ats_gateway.tasks.jobs import REFRESH_TASK
    from ats_gateway.tasks.metadata import TASK as DESCRIBE_TASK

    call = org_call_seconds(settings)
    drain = float(settings.drain_max_seconds)
    soft = {
        task_name("applications"): drain + APPLICATION_BATCH_CALLS * call,
        task_name("feedback"): drain + FEEDBACK_BATCH * call,
        REFRESH_TASK: JOBS_REFRESH_CALLS * call,
        DESCRIBE_TASK: DESCRIBE_REFRESH_CALLS * call,
        "ats_gateway.ping": 10.0,
    }
    return {name: (s, s + HARD_AFTER_SOFT) for name, s in soft.items()}


def task_annotations(settings: Any) -> dict[str, dict[str, float]]:
    """The limits as Celery ``task_annotations`` (set on the task classes in every process)."""
    return {
        name: {"soft_time_limit": soft, "time_limit": hard}
        for name, (soft, hard) in time_limits(settings).items()
    }
