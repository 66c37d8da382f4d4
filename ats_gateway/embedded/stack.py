"""Commands for the gateway's own processes (worker, beat, gunicorn), shared by dev and tests."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ats_gateway.config import PROJECT_ROOT, Settings
from ats_gateway.embedded.processes import ManagedProcess
from ats_gateway.tasks.queues import QUEUE_NAMES, WORK_CLASSES, work_class


def worker_argv(
    *,
    name: str | None = None,
    pool: str = "threads",
    concurrency: int = 4,
    loglevel: str = "INFO",
    queues: Sequence[str] = QUEUE_NAMES,
) -> list[str]:
    """A `celery worker` consuming ``queues`` (default: every work class's queue, one pool for
    all: the tests' and benchmarks' worker; `ats-gateway dev` starts one per class)."""
    name = name or f"ats-gateway-{uuid.uuid4().hex[:8]}@%h"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "celery_worker",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "-Q",
        ",".join(queues),
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
    ]


def class_worker_argv(queue: str, *, name: str | None = None, loglevel: str = "INFO") -> list[str]:
    """The pool of one work class (tasks/queues.py: its queue, pool kind and size)."""
    work = work_class(queue)
    return worker_argv(
        name=name or f"{queue}-{uuid.uuid4().hex[:8]}@%h",
        pool=work.pool,
        concurrency=work.concurrency,
        loglevel=loglevel,
        queues=(work.queue,),
    )


def class_workers(env: dict[str, str], log_dir: Path, host: str = "dev") -> list[ManagedProcess]:
    """One worker process per work class, as production runs them (`ats-gateway dev`)."""
    return [
        ManagedProcess(
            f"worker ({work.queue})",
            class_worker_argv(work.queue, name=f"{work.queue}@{host}"),
            env=env,
            cwd=PROJECT_ROOT,
            log_path=Path(log_dir) / f"worker-{work.queue}.log",
        )
        for work in WORK_CLASSES
    ]


def beat_argv(schedule_path: str, loglevel: str = "INFO") -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "celery_worker",
        "beat",
        f"--loglevel={loglevel}",
        "-s",
        schedule_path,
    ]


def gunicorn_argv(host: str, port: int, workers: int = 2, threads: int = 32) -> list[str]:
    """gunicorn with the gateway's server settings (`ats_gateway/gunicorn_conf.py`)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:ats_gateway.gunicorn_conf",
        "wsgi:app",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for a child that must see exactly these settings and import our modules."""
    env = settings.to_env()
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_worker(
    settings: Settings,
    celery_app: Any,
    log_dir: Path,
    *,
    concurrency: int = 4,
    queue: str | None = None,
) -> ManagedProcess:
    """A real `celery worker` process for these settings; returns once it answers a ping.

    Default: one threads pool consuming every queue. ``queue``: that work class's own pool
    (its queue, pool kind and size, as `ats-gateway dev` and production run it).
    Used by the test suite and the benchmarks; `process.worker_name` is its Celery node name.
    """
    prefix = queue or "test"
    name = f"{prefix}-{uuid.uuid4().hex[:8]}@localhost"
    argv = (
        class_worker_argv(queue, name=name)
        if queue
        else worker_argv(name=name, pool="threads", concurrency=concurrency)
    )
    process = ManagedProcess(
        "celery worker",
        argv,
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        ready=lambda: bool(celery_app.control.ping(destination=[name], timeout=0.5)),
        log_path=Path(log_dir) / f"{name.split('@')[0]}.log",
    )
    process.worker_name = name  # type: ignore[attr-defined]
    return process.start(timeout=60)
