"""Slow-body clients (a declared body trickled a few bytes at a time) must not take the gateway
down for everyone: liveness and job listings keep answering."""

from __future__ import annotations

import socket
import threading
import time

SLOW_CLIENTS = 20


def _trickle(stack, stop: threading.Event) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(
                b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {stack.sk}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
            while not stop.is_set():
                s.sendall(b" ")
                stop.wait(0.5)
    except OSError:
        return  # the server hung up on us: what it should do


def test_slow_bodies_do_not_stop_health_and_listings(security_stack):
    stack = security_stack
    stop = threading.Event()
    threads = [
        threading.Thread(target=_trickle, args=(stack, stop), daemon=True)
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)  # let every slow client take a connection
        for _ in range(5):
            # The acceptance is "within 1 s"; a 1 s client timeout makes a stall a failure.
            assert stack.get("/healthz", timeout=1).status_code == 200
            r = stack.get("/v1/jobs?limit=1", headers=stack.auth(stack.pk), timeout=1)
            assert r.status_code == 200
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
