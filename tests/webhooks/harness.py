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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process: subprocess.Popen | None = None

    def start(self) -> Receiver:
        self.process = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(self.port), str(self.log_path)]
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
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
        requests.post(f"http://127.0.0.1:{self.port}/__control__", json={"fail": n}, timeout=5)

    def requests(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]
