"""Commands for the gateway's own processes (worker, beat, gunicorn), shared by dev and tests."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from ats_gateway.config import PROJECT_ROOT, Settings
from ats_gateway.embedded.processes import ManagedProcess


def worker_argv(
    *, name: str | None = None, pool: str = "threads", concurrency: int = 4, loglevel: str = "INFO"
) -> list[str]:
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
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
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
    settings: Settings, celery_app: Any, log_dir: Path, *, concurrency: int = 4
) -> ManagedProcess:
    """A real `celery worker` process for these settings; returns once it answers a ping.

    Used by the test suite and the benchmarks; `process.worker_name` is its Celery node name.
    """
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    process = ManagedProcess(
        "celery worker",
        worker_argv(name=name, pool="threads", concurrency=concurrency),
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        ready=lambda: bool(celery_app.control.ping(destination=[name], timeout=0.5)),
        log_path=Path(log_dir) / f"{name.split('@')[0]}.log",
    )
    process.worker_name = name  # type: ignore[attr-defined]
    return process.start(timeout=60)
