"""Jobs listing benchmark: `GET /v1/jobs` from the snapshot vs. one SOQL query per request.

    .venv/bin/python bench/jobs_listing.py [--jobs 10000] [--requests 4000] [--seconds 30]
                                           [--concurrency 4] [--no-write]

Starts, on 127.0.0.1 only: a private Redis, the sandbox org (its own process, seeded with
`--jobs` demo jobs), and the gateway under gunicorn. The snapshot is loaded once; then a load
generator in this process (threads with keep-alive connections) sends `GET /v1/jobs` over 50
filter/sort combinations, bounded by a request count and a time limit. The baseline sends, for
the same 50 combinations, the equivalent SOQL (same filters, order and page size, plus the
COUNT() behind `meta.total`) straight to the sandbox's `/query` endpoint: what a gateway
without a snapshot would do per page view; a second baseline runs the page query alone.

p50/p99 latency, requests/s and the org API calls of each phase (the sandbox's counter) are
printed and appended to bench/RESULTS.md with the date, machine and commit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ats_gateway import create_app  # noqa: E402
from ats_gateway.config import ConnectionConfig, Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess, free_port  # noqa: E402
from ats_gateway.embedded.stack import child_env, gunicorn_argv  # noqa: E402
from ats_gateway.extensions import services  # noqa: E402
from ats_gateway.salesforce import soql  # noqa: E402
from ats_gateway.security import KeyStore  # noqa: E402
from ats_gateway.services.jobs.source import snapshot_query  # noqa: E402
from sandbox_org.seed import DEMO_CREDENTIALS  # noqa: E402

HOST = "127.0.0.1"
API_VERSION = "62.0"

DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "People")
WORKPLACES = ("Remote", "Hybrid")
SORTS = ("-posted_at", "title", "-salary_min", "city", "salary_max")
COMBOS = [
    {"department": d, "workplace_type": w, "sort": s}
    for d in DEPARTMENTS
    for w in WORKPLACES
    for s in SORTS
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load(
    port: int,
    paths: list[str] | list[tuple[str, ...]],
    headers: dict[str, str],
    *,
    total: int,
    seconds: float,
    concurrency: int,
) -> dict[str, float]:
    """Send up to ``total`` requests (cycling through ``paths``) within ``seconds``.

    An item of ``paths`` may be a tuple of paths: one logical request made of several GETs
    on the same connection (a listing page plus its COUNT()), timed as a whole.
    """
    latencies: list[float] = []
    errors: list[int] = []
    counter = iter(range(total))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        mine: list[float] = []
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            item = paths[n % len(paths)]
            started = time.perf_counter()
            for path in (item,) if isinstance(item, str) else item:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(response.status)
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def wait_http(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    return ready


def baseline_soql(contract, combo: dict[str, str]) -> tuple[str, str]:
    """The SOQL a per-request gateway would run for one listing of ``combo``: the page of 20
    in the same order, and the COUNT() behind `meta.total`."""
    by_name = {f.name: f.api_name for f in contract.fields}
    query = snapshot_query(contract)
    condition = query.condition & soql.and_(
        soql.field(by_name["department"]).eq(combo["department"]),
        soql.field(by_name["workplace_type"]).eq(combo["workplace_type"]),
    )
    sort = combo["sort"]
    api = ("-" if sort.startswith("-") else "") + by_name[sort.lstrip("-")]
    page = query.where(condition).order_by(api, "Id", nulls="last").limit(20).render()
    count = soql.select("COUNT()").from_(contract.sobject).where(condition).render()
    return page, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=4000, help="gateway requests (max)")
    parser.add_argument("--baseline-requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    children: list[ManagedProcess] = []
    redis_server = EmbeddedRedis(data_dir=tmp / "redis").start()
    try:
        sandbox_port = free_port()
        sandbox_url = f"http://{HOST}:{sandbox_port}"
        t0 = time.monotonic()
        sandbox = ManagedProcess(
            "sandbox",
            [
                sys.executable,
                "-m",
                "ats_gateway.cli",
                "sandbox",
                "--host",
                HOST,
                "--port",
                str(sandbox_port),
                "--seed",
                "demo",
                "--jobs",
                str(args.jobs),
            ],
            env={"PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            ready=wait_http(f"{sandbox_url}/services/data/"),
            log_path=tmp / "sandbox.log",
        ).start(timeout=300)
        children.append(sandbox)
        print(f"sandbox with {args.jobs} jobs ready in {time.monotonic() - t0:.1f} s")

        creds = DEMO_CREDENTIALS["job_portal"]
        base = Settings.from_env({})
        settings = base.replace(
            env="production",
            redis_url=redis_server.url,
            secret_key="bench-" + os.urandom(8).hex(),
            log_format="text",
            log_level="WARNING",
            jobs_staleness_seconds=3600,
            connections={
                **base.connections,
                "job_portal": ConnectionConfig(
                    name="job_portal",
                    login_url=sandbox_url,
                    client_id=creds["client_id"],
                    client_secret=creds["client_secret"],
                    username=creds["username"],
                    password=creds["password"],
                    security_token=creds["security_token"],
                ),
            },
        )
        app = create_app(settings)
        service = services(app).jobs
        usage_url = f"{sandbox_url}/__sandbox__/usage"
        t0 = time.monotonic()
        refreshed = service.refresh()
        refresh_seconds = time.monotonic() - t0
        print(
            f"snapshot: {refreshed.count} public jobs, {refreshed.api_calls} API calls, "
            f"{refresh_seconds:.2f} s"
        )
        _, key = KeyStore(services(app).redis).create(
            kind="secret", name="bench", scopes=["jobs:read"], rate_limit="100000000/minute"
        )

        gateway_port = free_port()
        argv_ = gunicorn_argv(HOST, gateway_port, workers=args.workers, threads=args.threads)
        i = argv_.index("--access-logfile")  # no access log line per request
        del argv_[i : i + 2]
        gateway = ManagedProcess(
            "gunicorn",
            argv_,
            env=child_env(settings),
            cwd=ROOT,
            ready=wait_http(f"http://{HOST}:{gateway_port}/healthz"),
            log_path=tmp / "gunicorn.log",
        ).start(timeout=60)
        children.append(gateway)

        paths = ["/v1/jobs?" + urllib.parse.urlencode(c) for c in COMBOS]
        headers = {"Authorization": f"Bearer {key}"}
        load(gateway_port, paths, headers, total=400, seconds=60, concurrency=args.concurrency)
        used_before = requests.get(usage_url, timeout=5).json()["used"]
        gw = load(
            gateway_port,
            paths,
            headers,
            total=args.requests,
            seconds=args.seconds,
            concurrency=args.concurrency,
        )
        gw["org_calls"] = requests.get(usage_url, timeout=5).json()["used"] - used_before
        print("gateway :", json.dumps({k: round(v, 2) for k, v in gw.items()}))

        token = requests.post(
            f"{sandbox_url}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "username": creds["username"],
                "password": creds["password"] + creds["security_token"],
            },
            timeout=10,
        ).json()["access_token"]
        contract = service.contract()

        def query_path(text: str) -> str:
            return f"/services/data/v{API_VERSION}/query?" + urllib.parse.urlencode({"q": text})

        pairs = [baseline_soql(contract, c) for c in COMBOS]
        baselines = {}
        for label, paths_ in (
            ("page + COUNT()", [(query_path(p), query_path(c)) for p, c in pairs]),
            ("page only", [query_path(p) for p, _ in pairs]),
        ):
            used_before = requests.get(usage_url, timeout=5).json()["used"]
            run = load(
                sandbox_port,
                paths_,
                {"Authorization": f"Bearer {token}"},
                total=args.baseline_requests,
                seconds=args.seconds,
                concurrency=args.concurrency,
            )
            run["org_calls"] = requests.get(usage_url, timeout=5).json()["used"] - used_before
            print(f"baseline ({label}):", json.dumps({k: round(v, 2) for k, v in run.items()}))
            baselines[label] = run
        for label, run in baselines.items():
            print(f"throughput ratio vs {label}: {gw['rps'] / run['rps']:.1f}x")

        if not args.no_write:
            write_results(args, refreshed, refresh_seconds, gw, baselines)
    finally:
        for child in reversed(children):
            child.stop()
        redis_server.stop()
    return 0


def write_results(args, refreshed, refresh_seconds, gw, baselines) -> None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor() or "unknown CPU",
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "",
        f"## Jobs listing ({now})",
        "",
        f"`bench/jobs_listing.py` on {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}, commit {commit or 'unknown'} (working tree). "
        f"Sandbox org (own process) seeded with {args.jobs:,} demo jobs, of which "
        f"{refreshed.count:,} are public; snapshot loaded with {refreshed.api_calls} API calls "
        f"in {refresh_seconds:.2f} s. Gateway: gunicorn, {args.workers} workers x "
        f"{args.threads} threads, "
        f"no access log. Load generator: this process, {args.concurrency} keep-alive "
        "connections, 50 filter/sort combinations, first pages of 20; everything on "
        "127.0.0.1. Baselines: the equivalent SOQL sent straight to the sandbox per listing, "
        "as a gateway without a snapshot would: the page query and the COUNT() behind "
        "`meta.total` (two API calls), and, favouring the baseline, the page query alone.",
        "",
        "| path | requests | p50 ms | p99 ms | requests/s | org API calls |",
        "|---|---|---|---|---|---|",
        f"| `GET /v1/jobs` (snapshot) | {gw['requests']:,} | {gw['p50_ms']:.2f} | "
        f"{gw['p99_ms']:.2f} | {gw['rps']:.0f} | {gw['org_calls']} |",
    ]
    for label, run in baselines.items():
        lines.append(
            f"| SOQL per request, {label} | {run['requests']:,} | {run['p50_ms']:.2f} | "
            f"{run['p99_ms']:.2f} | {run['rps']:.0f} | {run['org_calls']} |"
        )
    lines.append("")
    lines += [
        f"Throughput ratio vs {label}: {gw['rps'] / run['rps']:.1f}x."
        for label, run in baselines.items()
    ]
    lines.append("")
    with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
