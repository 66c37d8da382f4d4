"""Operational tasks."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="ats_gateway.ping")
def ping(payload: str = "pong") -> dict[str, object]:
    """Round trip through the broker and a worker; used by tests and `ats-gateway doctor`."""
    return {"payload": payload, "worker_pid": os.getpid(), "host": socket.gethostname()}
