"""One slow party never delays another ([19]): application delivery latency of one board while
other keys' webhook endpoints drip their answers, with a pool per work class (tasks/queues.py)
side by side with the single pool of before (one threads pool of 4 reading every queue: what
`make run` and production ran until [19]).

    .venv/bin/python bench/isolation.py [--slow 0,10,50] [--applications 20] [--wait 60]
                                        [--no-write]

Per run: ``slow`` webhook endpoints (ten per key, the per-key cap) on a receiver that reads
the request and answers one byte every 2 s (tests/isolation/slow.py); one application from each
slow key makes every endpoint's send start; once the sends hold the webhook threads, another key
submits ``applications`` applications at once. Latency: accepted -> delivered, from the outbox's
own timestamps. An application not delivered within ``wait`` seconds counts as not delivered.
Between runs the receiver recovers (the sends in flight are cut) and the workers are replaced.
Delivery uses the fixed micro-batch window (``delivery_paced=False``): the runs compare pools,
not the API-budget pacer.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import Stack, append_results, machine_line, percentile, wait_for  # noqa: E402
from isolation.slow import DripReceiver  # noqa: E402

from ats_gateway.embedded.stack import start_worker  # noqa: E402
from ats_gateway.extensions import services  # noqa: E402
from ats_gateway.tasks.queues import work_class  # noqa: E402

CLASS_POOLS = ("applications", "feedback", "webhooks", "maintenance")
PER_KEY = 10


# The sender's production defaults (config.py): deadline 10 s, two runs per key, breaker after
# five failed runs. The other layouts open the fair share and breaker wide (the pools' worst
# case); this one shows what the sender alone does for the old single pool.
SENDER_DEFAULTS = {
    "webhook_deadline_seconds": 10.0,
    "webhook_run_seconds": 30.0,
    "webhook_key_concurrency": 2,
    "webhook_breaker_failures": 5,
}


def start_pools(stack: Stack, layout: str) -> list:
    celery = stack.app.extensions["celery"]
    logs = stack.log_dir / f"{layout}-{uuid.uuid4().hex[:4]}"
    if layout == "single-fair":
        settings = stack.settings.replace(**SENDER_DEFAULTS)
        return [start_worker(settings, celery, logs, concurrency=4)]
    if layout == "single":
        return [start_worker(stack.settings, celery, logs, concurrency=4)]
    return [start_worker(stack.settings, celery, logs, queue=q) for q in CLASS_POOLS]


def one_run(stack: Stack, drip: DripReceiver, layout: str, slow: int, n: int, wait: float):
    http = stack.app.test_client()
    outbox = services(stack.app).applications_outbox
    job = stack.open_jobs()[0]

    def submit(headers: dict) -> str:
        body = {
            "job_id": job,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": f"ada.{uuid.uuid4().hex[:12]}@example.com",
            "consent": True,
            "source": "Job Board",
        }
        response = http.post("/v1/applications", json=body, headers=headers)
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    workers = start_pools(stack, layout)
    threads = {
        "single": 4,
        # two per slow key: the fair share, not the pool, bounds the drips
        "single-fair": min(4, 2 * -(-slow // PER_KEY)),
    }.get(layout, work_class("webhooks").concurrency)
    endpoints = []
    ids: list[str] = []
    try:
        slow_keys = [
            {"Authorization": "Bearer " + stack.api_key(["applications:write", "webhooks:manage"])}
            for _ in range(-(-slow // PER_KEY))
        ]
        for i in range(slow):
            owner = slow_keys[i // PER_KEY]
            response = http.post(
                "/v1/webhooks",
                json={"url": drip.url(f"/{uuid.uuid4().hex}"), "events": ["application.delivered"]},
                headers=owner,
            )
            assert response.status_code == 201, response.get_json()
            endpoints.append((response.get_json()["id"], owner))
        for owner in slow_keys:
            submit(owner)
        if slow:
            wait_for(lambda: drip.in_flight >= min(slow, threads), 60, "slow sends in flight")
        board = {"Authorization": "Bearer " + stack.api_key(["applications:write"])}
        ids = [submit(board) for _ in range(n)]
        deadline = time.monotonic() + wait
        records = []
        while time.monotonic() < deadline:
            records = [outbox.get(i) for i in ids]
            if all(r["status"] == "delivered" for r in records):
                break
            time.sleep(0.2)
        latencies = [
            r["updated_at"] - r["created_at"] for r in records if r["status"] == "delivered"
        ]
        in_flight = drip.in_flight
    finally:
        drip.recover()
        for endpoint_id, owner in endpoints:
            http.delete(f"/v1/webhooks/{endpoint_id}", headers=owner)
        # What waited behind the slow sends goes now, before the next run's workers start.
        wait_for(lambda: all(outbox.get(i)["status"] == "delivered" for i in ids), 120, "leftovers")
        for worker in workers:
            worker.stop()
        wait_for(lambda: drip.in_flight == 0, 30, "the cut sends to end")
        drip.dripping = True
    return {
        "delivered": len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95) if len(latencies) == n else None,
        "in_flight": in_flight,
    }


def cell(result: dict, n: int, wait: float) -> str:
    if result["p95"] is None:
        return f"{result['delivered']}/{n} delivered in {wait:.0f} s"
    return f"{result['p50']:.2f} / {result['p95']:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", default="0,10,50", help="slow endpoints, comma list")
    parser.add_argument("--applications", type=int, default=20)
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.slow.split(",")]

    stack = Stack(
        jobs=20,
        env="dev",  # webhooks to 127.0.0.1 (refused in production)
        delivery_paced=False,
        delivery_window_seconds=0.3,
        webhook_deadline_seconds=30.0,  # an attempt may drip for 30 s: threads are held
        # The run budget must exceed the deadline: a run starts no attempt it could not end
        # within its budget (with both at 30 s no send ever started: the bench waited for ever).
        webhook_run_seconds=60.0,
        # The worst case for the pools: the fair share per key and the circuit breaker ([19],
        # the sender) are opened wide, so the drips hold every webhook thread.
        webhook_key_concurrency=100,
        webhook_breaker_failures=1000,
        webhook_retry_base_seconds=0.2,
        webhook_retry_max_seconds=0.5,
        webhook_retry_window_seconds=600.0,
        api_calls_per_day=10_000_000,
    )
    drip = DripReceiver(interval=2.0).start()
    results: dict[tuple[str, int], dict] = {}
    try:
        for slow in counts:
            for layout in ("classes", "single", "single-fair"):
                result = one_run(stack, drip, layout, slow, args.applications, args.wait)
                results[(layout, slow)] = result
                print(layout, slow, result, flush=True)
    finally:
        drip.stop()
        stack.close()

    lines = [
        f"## Work classes: one board's deliveries while others' webhooks drip ({machine_line()})",
        "",
        f"`bench/isolation.py --slow {args.slow} --applications {args.applications}`: "
        f"{args.applications} applications of one key, submitted at once while other keys' "
        "webhook endpoints answer one byte every 2 s (ten endpoints per key; one application "
        "per slow key starts every endpoint's send). Latency accepted -> delivered, p50 / p95. "
        "**pools per class** (tasks/queues.py: applications prefork 2, feedback prefork 1, "
        "webhooks threads 8, maintenance prefork 2) against **single pool** (one threads pool "
        "of 4 reading every queue: the configuration before [19]); both with the sender's fair "
        "share and breaker opened wide (100 runs per key, breaker after "
        "1,000 failed runs, deadline 30 s, run budget 60 s). **single pool, sender defaults**: "
        "the same single pool with the sender's production defaults (deadline 10 s, 2 runs per "
        "key, breaker after 5 failed runs). Fixed 0.3 s micro-batch window. Machine shared with "
        "other engineers' runs (loaded).",
        "",
        "| slow endpoints | pools per class: p50 / p95 | single pool: p50 / p95 "
        "| single pool, sender defaults: p50 / p95 |",
        "|---|---|---|---|",
    ]
    for slow in counts:
        lines.append(
            f"| {slow} | {cell(results[('classes', slow)], args.applications, args.wait)} "
            f"| {cell(results[('single', slow)], args.applications, args.wait)} "
            f"| {cell(results[('single-fair', slow)], args.applications, args.wait)} |"
        )
    append_results("\n".join(lines) + "\n", write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
