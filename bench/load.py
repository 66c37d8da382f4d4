"""Bounded mixed-traffic load test of the gateway on 127.0.0.1.

    .venv/bin/python bench/load.py [--seconds 120] [--concurrency 8] [--jobs 500] [--no-write]

Starts a private Redis, the sandbox org (its own process, `--jobs` demo jobs), the gateway under
gunicorn (2 workers x 4 threads) and one Celery worker, then runs a threaded load generator
(keep-alive `requests` sessions, one per thread) for `--seconds` with this mix:

    50% GET /v1/jobs (one of 50 filter/sort combinations)   25% GET /v1/jobs/{id}
    10% POST /v1/applications (a new candidate each)         15% GET /v1/applications/{id}

It reports the error rate (5xx, connection errors, and any status other than the expected one),
p50/p95/p99 latency per kind, requests/s, the org API calls made during the run (the sandbox's
counter), how many of the submitted applications were delivered when the run ended (plus a
short grace period), and peak memory of the gateway and the worker. The comparison, from the
same run: the calls a gateway without snapshot or batching would have made for the same
requests (one per read, three per application). Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import threading
import time
import uuid
from collections import defaultdict

import requests
from harness import PeakMemory, Stack, append_results, machine_line, percentile, wait_for

from ats_gateway.services.delivery import Outbox

DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "People")
WORKPLACES = ("Remote", "Hybrid")
SORTS = ("-posted_at", "title", "-salary_min", "city", "salary_max")
COMBOS = [
    {"department": d, "workplace_type": w, "sort": s}
    for d in DEPARTMENTS
    for w in WORKPLACES
    for s in SORTS
]
MIX = (("list", 50), ("detail", 25), ("apply", 10), ("status", 15))
EXPECTED = {"list": 200, "detail": 200, "apply": 202, "status": 200}


class Load:
    def __init__(self, url: str, key: str, job_ids: list[str], seconds: float) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}
        self.job_ids = job_ids
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.submitted: list[str] = []
        self.tag = "l" + uuid.uuid4().hex[:8]
        self.counter = 0

    def _next_email(self) -> str:
        with self.lock:
            self.counter += 1
            return f"ada.{self.counter}@{self.tag}.example.com"

    def _request(self, http: requests.Session, kind: str, rng: random.Random) -> None:
        started = time.perf_counter()
        try:
            if kind == "list":
                response = http.get(
                    self.url + "/v1/jobs", params=rng.choice(COMBOS), headers=self.headers
                )
            elif kind == "detail":
                job = rng.choice(self.job_ids)
                response = http.get(f"{self.url}/v1/jobs/{job}", headers=self.headers)
            elif kind == "apply":
                body = {
                    "job_id": rng.choice(self.job_ids),
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": self._next_email(),
                    "consent": True,
                }
                response = http.post(self.url + "/v1/applications", json=body, headers=self.headers)
                if response.status_code == 202:
                    with self.lock:
                        self.submitted.append(response.json()["id"])
            else:
                with self.lock:
                    known = self.submitted[-200:]
                if not known:
                    return
                application = rng.choice(known)
                response = http.get(
                    f"{self.url}/v1/applications/{application}", headers=self.headers
                )
            status = response.status_code
        except requests.RequestException as exc:
            status = None
            detail = type(exc).__name__
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latency[kind].append(elapsed)
            if status != EXPECTED[kind]:
                self.errors[kind] += 1
                if len(self.error_samples) < 5:
                    text = detail if status is None else f"{status} {response.text[:200]}"
                    self.error_samples.append(f"{kind}: {text}")

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        kinds = [k for k, _ in MIX]
        weights = [w for _, w in MIX]
        with requests.Session() as http:
            while time.monotonic() < self.deadline:
                self._request(http, rng.choices(kinds, weights)[0], rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the run")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--jobs", type=int, default=500, help="demo jobs in the org")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)

    stack = Stack(jobs=args.jobs, delivery_window_seconds=1.0)
    try:
        url = stack.start_gateway()
        stack.start_workers(1)
        key = stack.api_key(["jobs:read", "applications:write", "applications:read"])
        warm = requests.get(
            url + "/v1/jobs", params={"limit": 100}, headers={"Authorization": f"Bearer {key}"}
        )
        warm.raise_for_status()
        job_ids = [j["id"] for j in warm.json()["data"]]
        load = Load(url, key, job_ids, args.seconds)
        calls_before = stack.api_calls()
        pids = {"gateway": stack.gateway.pid, "worker": stack.workers[0].pid}
        with PeakMemory(pids) as memory:
            started = time.perf_counter()
            threads = [
                threading.Thread(target=load.worker, args=(seed,), daemon=True)
                for seed in range(args.concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        outbox = Outbox.from_settings(stack.redis, "applications", stack.settings)

        def delivered_count() -> int:
            pipe = stack.redis.pipeline(transaction=False)
            for i in load.submitted:
                pipe.hget(outbox.item_key(i), "status")
            return sum(1 for s in pipe.execute() if s == b"delivered")

        with contextlib.suppress(TimeoutError):  # report what was delivered by then
            wait_for(lambda: delivered_count() == len(load.submitted), 60, "delivery")
        delivered = delivered_count()
        calls = stack.api_calls() - calls_before
    finally:
        stack.close()

    total = sum(len(v) for v in load.latency.values())
    errors = sum(load.errors.values())
    reads = sum(len(load.latency[k]) for k in ("list", "detail", "status"))
    naive_calls = reads + 3 * len(load.latency["apply"])
    rows = []
    for kind, _ in MIX:
        values = load.latency[kind]
        rows.append(
            f"| {kind} | {len(values):,} | {load.errors[kind]} | {percentile(values, 50):.1f} | "
            f"{percentile(values, 95):.1f} | {percentile(values, 99):.1f} |"
        )
    text = (
        f"\n## Mixed load ({machine_line()})\n\n"
        f"`bench/load.py`: {args.seconds:.0f} s, {args.concurrency} client threads on the same "
        f"machine, gateway under gunicorn (2 x 4 threads), 1 worker, {args.jobs} jobs; mix "
        "50% listing / 25% job detail / 10% apply / 15% status polling.\n\n"
        f"* {total:,} requests, {total / elapsed:,.0f} requests/s, error rate "
        f"{errors / max(total, 1):.3%} ({errors})\n"
        f"* org API calls during the run: {calls} (snapshot refreshes + delivery batches); "
        f"without snapshot and batching: {naive_calls:,} -> **{naive_calls / max(calls, 1):,.0f}x "
        "fewer**\n"
        f"* applications: {len(load.submitted):,} accepted, {delivered:,} delivered by the end\n"
        f"* peak memory: gateway (gunicorn, all processes) {memory.peak['gateway']:.0f} MiB, "
        f"worker {memory.peak['worker']:.0f} MiB\n\n"
        "| request | count | errors | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    if load.error_samples:
        text += "\nFirst errors: " + "; ".join(load.error_samples) + "\n"
    append_results(text, write=not args.no_write)
    return 0 if total and errors / total < 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
