"""Drain throughput: org latency 0/200/1000 ms x 1/2/4 worker processes, and memory under load.

    .venv/bin/python bench/drain.py [--applications 3000] [--latencies 0,200,1000]
                                    [--workers 1,2,4] [--naive 10] [--no-write]

On 127.0.0.1 only: a private Redis, the sandbox org in its own process, the gateway under
gunicorn (2 workers x 4 threads) and 1, 2 or 4 Celery worker processes (threads pool, 4 each).
For each latency and worker count, the workers are started and idle first; then
``--applications`` new candidates are POSTed to `/v1/applications/batch` (1,000 per request,
as a job board does) and the clock runs from the first request until the org holds every one
(each status `delivered`). Throughput is applications per second end to end (intake + delivery).

The comparison measured in the same run: a naive one-record-per-call delivery (look up the
Contact, create it, create the application: 3 calls each, sequential, plain requests) of
``--naive`` applications at each latency; the ratio is gateway / naive throughput. Peak RSS of
the gateway (gunicorn master + workers) and of each Celery worker process is sampled during
every run. Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import requests
from harness import PeakMemory, Stack, append_results, machine_line, wait_for

from ats_gateway.extensions import services
from ats_gateway.salesforce.soql import literal
from ats_gateway.services.delivery import Outbox


def candidates(jobs: list[str], tag: str, n: int) -> list[dict]:
    return [
        {
            "job_id": jobs[i % len(jobs)],
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "email": f"ada.{i}@{tag}.example.com",
            "consent": True,
        }
        for i in range(n)
    ]


def gateway_run(stack: Stack, key: str, jobs: list[str], n: int, workers: int) -> dict:
    """Intake ``n`` over HTTP and wait until all are delivered; with ``workers`` processes."""
    stack.start_workers(workers)
    outbox = Outbox.from_settings(stack.redis, "applications", stack.settings)
    tag = "d" + uuid.uuid4().hex[:8]
    items = candidates(jobs, tag, n)
    headers = {"Authorization": f"Bearer {key}"}
    ids: list[str] = []
    pids = {"gateway": stack.gateway.pid}
    pids.update({f"worker {i + 1}": w.pid for i, w in enumerate(stack.workers)})
    calls_before = stack.api_calls()
    with PeakMemory(pids) as memory, requests.Session() as http:
        started = time.perf_counter()
        for start in range(0, n, 1000):
            response = http.post(
                stack.gateway_url + "/v1/applications/batch",
                json={"applications": items[start : start + 1000]},
                headers=headers,
                timeout=120,
            )
            response.raise_for_status()
            body = response.json()
            assert body["rejected"] == 0, body["items"][:3]
            ids.extend(o["id"] for o in body["items"])
        intake = time.perf_counter() - started

        pending = set(ids)

        def delivered() -> bool:
            pipe = stack.redis.pipeline(transaction=False)
            batch = list(pending)
            for i in batch:
                pipe.hget(outbox.item_key(i), "status")
            for i, status in zip(batch, pipe.execute(), strict=True):
                if status in (b"delivered", b"failed", b"duplicate"):
                    pending.discard(i)
            return not pending

        wait_for(delivered, 900, f"{n} applications to be delivered", interval=0.05)
        elapsed = time.perf_counter() - started
    failed = sum(1 for i in ids if stack.redis.hget(outbox.item_key(i), "status") != b"delivered")
    stack.stop_workers()
    return {
        "seconds": elapsed,
        "intake_seconds": intake,
        "per_second": n / elapsed,
        "calls": stack.api_calls() - calls_before,
        "not_delivered": failed,
        "peak_rss": dict(memory.peak),
    }


def naive_run(stack: Stack, jobs: list[str], n: int) -> dict:
    """What a one-record-per-call integration does: 3 sequential calls per application."""
    client = services(stack.app).connections.client("job_portal")
    tag = "x" + uuid.uuid4().hex[:8]
    before, started = stack.api_calls(), time.perf_counter()
    for item in candidates(jobs, tag, n):
        soql = f"SELECT Id FROM Contact WHERE Email = {literal(item['email'])} LIMIT 1"
        found = client.query_page(soql).records
        contact = (
            found[0]["Id"]
            if found
            else client.create(
                "Contact",
                {
                    "FirstName": item["first_name"],
                    "LastName": item["last_name"],
                    "Email": item["email"],
                },
            )
        )
        client.create(
            "bpats__Job_Board_Application__c",
            {
                "bpats__Contact__c": contact,
                "bpats__Job__c": item["job_id"],
                "bpats__Email__c": item["email"],
                "bpats__First_Name__c": item["first_name"],
                "bpats__Last_Name__c": item["last_name"],
            },
        )
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "per_second": n / elapsed, "calls": stack.api_calls() - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=3000)
    parser.add_argument("--latencies", default="0,200,1000", help="org latency, ms, comma list")
    parser.add_argument("--workers", default="1,2,4", help="worker processes, comma list")
    parser.add_argument("--naive", type=int, default=10, help="naive sample per latency")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    latencies = [int(x) for x in args.latencies.split(",")]
    worker_counts = [int(x) for x in args.workers.split(",")]

    stack = Stack(delivery_window_seconds=0.2)
    rows, memory_rows = [], []
    try:
        stack.start_gateway()
        key = stack.api_key(["applications:write", "applications:read"])
        jobs = stack.open_jobs()[:50]
        for latency in latencies:
            stack.faults(latency_ms=latency)
            naive = naive_run(stack, jobs, args.naive)
            base = None
            for count in worker_counts:
                run = gateway_run(stack, key, jobs, args.applications, count)
                base = base or run["per_second"]
                rows.append(
                    f"| {latency} | {count} | {args.applications:,} | {run['seconds']:.1f} s "
                    f"(intake {run['intake_seconds']:.1f} s) | {run['per_second']:,.0f} | "
                    f"{run['calls']} | {run['per_second'] / base:.2f}x | "
                    f"{naive['per_second']:.2f}/s ({naive['calls']} calls for {args.naive}) | "
                    f"**{run['per_second'] / naive['per_second']:,.0f}x** |"
                    + (f" {run['not_delivered']} not delivered |" if run["not_delivered"] else "")
                )
                peaks = run["peak_rss"]
                workers = [v for k, v in peaks.items() if k.startswith("worker")]
                memory_rows.append(
                    f"| {latency} | {count} | {peaks['gateway']:.0f} | "
                    f"{max(workers):.0f} | {sum(workers):.0f} |"
                )
                print(rows[-1], flush=True)
    finally:
        stack.close()

    text = (
        f"\n## Drain throughput and memory ({machine_line()})\n\n"
        "`bench/drain.py`: gateway under gunicorn (2 x 4 threads), sandbox org in its own process, "
        f"{args.applications:,} new candidates POSTed as batches of 1,000; time from the first "
        "request until every one is delivered (intake + delivery). Naive = one record per call "
        f"(3 sequential calls per application), {args.naive} applications at the same latency.\n\n"
        "| org latency (ms) | worker processes | applications | time | applications/s | "
        "org API calls | vs 1 worker | naive | gateway / naive |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nPeak resident memory (MiB) during each run:\n\n"
        "| org latency (ms) | worker processes | gateway (gunicorn, all processes) | "
        "largest worker | all workers |\n|---|---|---|---|---|\n" + "\n".join(memory_rows) + "\n"
    )
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
