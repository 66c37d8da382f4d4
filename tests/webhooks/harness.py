"""Start a receiver process and read what it got (shared by the tests and the bench)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import requests

RECEIVER = Path(__file__).with_name("receiver.py")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(
        self,
        log_path: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path, Path] | None = None,  # (certificate, key, CA that signed it)
    ) -> None:
        self.log_path = Path(log_path)
        self.host = host
        self.port = port or free_port(host)
        self.tls = tls
        scheme = "https" if tls else "http"
        where = f"[{host}]" if ":" in host else host
        self.base = f"{scheme}://{where}:{self.port}"
        self.url = f"{self.base}/hook"
        # the harness's own control calls do not check the name (one test's certificate is
        # for another name on purpose); the gateway's sends do
        self.verify = not tls
        self.process: subprocess.Popen | None = None

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InsecureRequestWarning: see verify above
            return requests.request(method, self.base + path, verify=self.verify, **kw)

    def start(self) -> Receiver:
        argv = [sys.executable, str(RECEIVER), str(self.port), str(self.log_path), self.host]
        if self.tls:
            argv += [str(self.tls[0]), str(self.tls[1])]
        self.process = subprocess.Popen(argv)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self._call("GET", "/", timeout=0.5)
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
        self._call("POST", "/__control__", json=how, timeout=5).raise_for_status()

    def max_open(self) -> int:
        """The most POSTs it held open at once."""
        return self._call("GET", "/__state__", timeout=5).json()["max_open"]

    def requests(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        # Only whole lines: the receiver may be writing the last one as we read.
        whole = self.log_path.read_text().split("\n")[:-1]
        return [json.loads(line) for line in whole if line]
