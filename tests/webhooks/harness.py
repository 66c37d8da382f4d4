"""Start a receiver process and read what it got (shared by the tests and the bench)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

RECEIVER = Path(__file__).with_name("receiver.py")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, log_path: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.log_path = Path(log_path)
        self.host = host
        self.port = port or free_port(host)
        self.base = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self.url = f"{self.base}/hook"
        self.process: subprocess.Popen | None = None

    def start(self) -> Receiver:
        self.process = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(self.port), str(self.log_path), self.host]
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                requests.get(f"{self.base}/", timeout=0.5)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def fail_next(self, n: int) -> None:
        self.control(fail=n)

    def control(self, **how) -> None:
        """Change how it answers (see receiver.py: status, retry_after, times, body, drip)."""
        requests.post(f"{self.base}/__control__", json=how, timeout=5).raise_for_status()

    def max_open(self) -> int:
        """The most POSTs it held open at once."""
        return requests.get(f"{self.base}/__state__", timeout=5).json()["max_open"]

    def requests(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]
