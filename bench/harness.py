"""What bench/drain.py and bench/load.py share: a stack on 127.0.0.1 (private Redis, the sandbox
org in its own process, gateway under gunicorn, Celery workers), memory readings, percentiles,
and the machine line of bench/RESULTS.md.

Nothing here binds beyond 127.0.0.1; every process started is stopped by :meth:`Stack.close`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ats_gateway import create_app  # noqa: E402
from ats_gateway.config import PROJECT_ROOT, ConnectionConfig, Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess, free_port  # noqa: E402
from ats_gateway.embedded.stack import child_env, gunicorn_argv, worker_argv  # noqa: E402
from ats_gateway.extensions import services  # noqa: E402
from ats_gateway.security import KeyStore  # noqa: E402
from sandbox_org.seed import DEMO_USERS  # noqa: E402

HOST = "127.0.0.1"
RESULTS = ROOT / "bench" / "RESULTS.md"


# --------------------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' (+ uncommitted changes)' if dirty else ''}"


def machine_line() -> str:
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs ({cpu_model()}), "
        f"Python {platform.python_version()}, commit {commit()}"
    )


def append_results(text: str, write: bool = True) -> None:
    print(text, flush=True)
    if write:
        with open(RESULTS, "a", encoding="utf-8") as out:
            out.write(text if text.endswith("\n") else text + "\n")


# --------------------------------------------------------------------------- numbers


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(c) for c in text)
    except OSError:
        return []
    return found


def rss_mb(pid: int | None, *, tree: bool = True) -> float:
    """Resident memory of a process (and, with ``tree``, all its descendants), in MiB."""
    if pid is None:
        return 0.0
    pids, total = [pid], 0
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        if tree:
            pids.extend(_children(current))
    return total / 1024


class PeakMemory:
    """Samples the RSS of some processes in the background; keeps the peak of each."""

    def __init__(self, processes: dict[str, int | None], interval: float = 0.25) -> None:
        import threading

        self.processes = processes
        self.peak = dict.fromkeys(processes, 0.0)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.processes.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# --------------------------------------------------------------------------- the stack


class Stack:
    """Redis + the sandbox org (own process, faults on) + gateway/workers on demand."""

    def __init__(self, *, jobs: int = 200, **overrides) -> None:
        self.log_dir = Path(os.environ.get("ATS_BENCH_LOGS", "/tmp")) / (
            "ats-bench-" + uuid.uuid4().hex[:6]
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis_server = EmbeddedRedis().start()
        port = free_port()
        self.sandbox_url = f"http://{HOST}:{port}"
        sandbox_argv = [sys.executable, "-m", "ats_gateway.cli", "sandbox", "--host", HOST]
        sandbox_argv += ["--port", str(port), "--seed", "demo", "--jobs", str(jobs), "--faults"]
        self.sandbox = ManagedProcess(
            "sandbox org",
            sandbox_argv,
            cwd=ROOT,
            ready=lambda: requests.get(self.sandbox_url + "/services/data/", timeout=1).ok,
            log_path=self.log_dir / "sandbox.log",
        ).start(timeout=180)
        connections = {}
        for name in ("job_portal", "interview_feedback"):
            user = next(u for u in DEMO_USERS if u["key"] == name)
            connections[name] = ConnectionConfig(
                name=name,
                login_url=self.sandbox_url,
                client_id=user["client_id"],
                client_secret=user["client_secret"],
                username=user["username"],
                password=user["password"],
                security_token=user["security_token"],
            )
        values = {
            "env": "production",
            "redis_url": self.redis_server.url,
            "secret_key": "bench-" + uuid.uuid4().hex,
            "log_format": "text",
            "log_level": "WARNING",
            "connections": connections,
            # One load generator is one IP and one key: the bench measures throughput, not
            # the rate limiter.
            "rate_limit_ip_submit": "10000000/minute",
            "rate_limit_key_submit": "10000000/minute",
            "rate_limit_ip_read": "10000000/minute",
            "rate_limit_key_read": "10000000/minute",
            **overrides,
        }
        self.settings = Settings.from_env({}, **values)
        self.app = create_app(self.settings)
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.gateway: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []

    # -- processes

    def start_gateway(self, workers: int = 2, threads: int = 4) -> str:
        port = free_port()
        url = f"http://{HOST}:{port}"
        self.gateway = ManagedProcess(
            "gateway",
            gunicorn_argv(HOST, port, workers=workers, threads=threads),
            env=child_env(self.settings),
            cwd=PROJECT_ROOT,
            ready=lambda: requests.get(url + "/healthz", timeout=1).ok,
            log_path=self.log_dir / "gateway.log",
        ).start(timeout=60)
        self.gateway_url = url
        return url

    def start_workers(self, count: int, concurrency: int = 4) -> list[ManagedProcess]:
        celery = self.app.extensions["celery"]
        started = []
        for _ in range(count):
            name = f"bench-{uuid.uuid4().hex[:6]}@localhost"
            process = ManagedProcess(
                "worker",
                worker_argv(name=name, pool="threads", concurrency=concurrency, loglevel="WARNING"),
                env=child_env(self.settings),
                cwd=PROJECT_ROOT,
                ready=lambda n=name: bool(celery.control.ping(destination=[n], timeout=0.5)),
                log_path=self.log_dir / f"{name.split('@')[0]}.log",
            )
            started.append(process.start(timeout=90))
        self.workers.extend(started)
        return started

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def close(self) -> None:
        self.stop_workers()
        if self.gateway is not None:
            self.gateway.stop()
        self.sandbox.stop()
        self.redis_server.stop()

    # -- the org

    def faults(self, **values) -> dict:
        response = requests.post(self.sandbox_url + "/__sandbox__/faults", json=values, timeout=5)
        response.raise_for_status()
        return response.json()

    def api_calls(self) -> int:
        return requests.get(self.sandbox_url + "/__sandbox__/usage", timeout=5).json()["used"]

    def api_key(self, scopes: list[str]) -> str:
        _, secret = KeyStore(self.redis).create(kind="secret", name="bench", scopes=scopes)
        return secret

    def open_jobs(self) -> list[str]:
        client = services(self.app).connections.client("job_portal")
        rows = client.query_many(
            [
                "SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' "
                "AND bpats__Post_to_Job_Board__c = true AND "
                "(bpats__End_Date__c = null OR bpats__End_Date__c >= TODAY)"
            ]
        )[0]
        return [r["Id"] for r in rows]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
