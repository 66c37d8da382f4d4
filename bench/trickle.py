"""Delivery under a steady trickle: org calls and latency, paced by the API budget vs the fixed
2 s micro-batch window, for small and large orgs.

    .venv/bin/python bench/trickle.py [--rates 0.1,1,10] [--limits 15000,1000000]
                                      [--seconds 120] [--share 0.2] [--no-burst] [--no-write]

On 127.0.0.1 only: a private Redis, the sandbox org in its own process, the gateway under
gunicorn and one Celery worker (no beat: nothing polls the org; the jobs snapshot is loaded
once before each run and kept, so the calls counted are delivery's). For each org daily limit
and each arrival rate, single applications are POSTed to ``/v1/applications`` at that rate
for ``--seconds``; the run ends when every one is delivered. Each run starts a fresh day: the
org's usage and the gateway's spend counters are reset.

Two delivery modes in the same run, on the same org: **paced** (``services/pacing.py``: the
ceiling is ``--share`` of the org's limit, default max wait 900 s) and **fixed window** (the
behaviour before: a batch every ``delivery_window_seconds`` = 2 s whatever the budget,
``ATS_GATEWAY_DELIVERY_PACED=false``).

Per run: applications, org calls (the sandbox's counter, from the first POST until the last
delivery), calls per 1,000 applications, projected calls/day (calls while applications arrive
/ arrival time x 86,400), the ceiling, and p50/p95 delivery latency (accepted -> delivered, from
the outbox's timestamps). Unless ``--no-burst``: 1,000 applications in one batch POST on the
smallest org, paced: the calls it costs. Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import requests
from harness import Stack, append_results, machine_line, percentile, wait_for

from ats_gateway.extensions import services
from ats_gateway.services.delivery import Outbox

DONE = (b"delivered", b"failed", b"duplicate")


def reset_day(stack: Stack, limit: int) -> None:
    """A fresh day: the org's counter at 0 with ``limit``; the gateway forgets its spend."""
    requests.post(
        stack.sandbox_url + "/__sandbox__/usage", json={"used": 0, "limit": limit}, timeout=5
    ).raise_for_status()
    for pattern in ("ats-gateway:sf:spend:*", "ats-gateway:sf:pace*", "ats-gateway:sf:budget:*"):
        keys = list(stack.redis.scan_iter(pattern))
        if keys:
            stack.redis.delete(*keys)


def trickle(
    stack: Stack, key: str, jobs: list[str], rate: float, seconds: float, outbox, before: int
) -> tuple[list[str], tuple[float, int] | None]:
    """POST one application every 1/rate s for ``seconds``; returns the accepted ids and, once
    the first one is delivered, (when, org calls so far): the first batch, which a fresh start
    sends at once from a full allowance."""
    tag = "t" + uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {key}"}
    ids: list[str] = []
    first: tuple[float, int] | None = None
    n = max(1, round(rate * seconds))
    start = time.monotonic()
    with requests.Session() as http:
        for i in range(n):
            status = stack.redis.hget(outbox.item_key(ids[0]), "status") if ids else None
            if first is None and status in DONE:
                time.sleep(0.5)  # the rest of the first batch's calls
                first = (time.monotonic(), stack.api_calls() - before)
            due = start + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = {
                "job_id": jobs[i % len(jobs)],
                "first_name": "Ada",
                "last_name": f"Lovelace {i}",
                "email": f"ada.{i}@{tag}.example.com",
                "consent": True,
            }
            response = http.post(
                stack.gateway_url + "/v1/applications", json=body, headers=headers, timeout=30
            )
            assert response.status_code == 202, response.text[:300]
            ids.append(response.json()["id"])
    return ids, first


def wait_delivered(stack: Stack, outbox, ids: list[str], timeout: float) -> None:
    pending = set(ids)

    def done() -> bool:
        batch = list(pending)
        pipe = stack.redis.pipeline(transaction=False)
        for i in batch:
            pipe.hget(outbox.item_key(i), "status")
        for i, status in zip(batch, pipe.execute(), strict=True):
            if status in DONE:
                pending.discard(i)
        return not pending

    wait_for(done, timeout, f"{len(ids)} applications to be delivered", interval=0.5)


def latencies(outbox, ids: list[str]) -> tuple[list[float], int]:
    values, not_delivered = [], 0
    for i in ids:
        record = outbox.get(i) or {}
        if record.get("status") != "delivered":
            not_delivered += 1
            continue
        values.append(record["updated_at"] - record["created_at"])
    return values, not_delivered


def one_run(stack, key, jobs, outbox, *, limit, rate, seconds, max_wait) -> dict:
    reset_day(stack, limit)
    services(stack.app).jobs.refresh()  # the snapshot intake checks against, before the clock
    before = stack.api_calls()
    started = time.monotonic()
    ids, first = trickle(stack, key, jobs, rate, seconds, outbox, before)
    ended = time.monotonic()
    arrival = ended - started
    during = stack.api_calls() - before
    steady = during / arrival * 86400
    if first is not None and ended - first[0] > 10:
        steady = (during - first[1]) / (ended - first[0]) * 86400
    wait_delivered(stack, outbox, ids, max_wait + 600)
    calls = stack.api_calls() - before
    values, lost = latencies(outbox, ids)
    return {
        "n": len(ids),
        "calls": calls,
        "per_1000": calls / len(ids) * 1000,
        "projected": during / arrival * 86400,
        "steady": steady,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "not_delivered": lost,
    }


def burst(stack, key, jobs, outbox, limit: int) -> dict:
    reset_day(stack, limit)
    services(stack.app).jobs.refresh()
    tag = "b" + uuid.uuid4().hex[:8]
    items = [
        {
            "job_id": jobs[i % len(jobs)],
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "email": f"ada.{i}@{tag}.example.com",
            "consent": True,
        }
        for i in range(1000)
    ]
    before = stack.api_calls()
    response = requests.post(
        stack.gateway_url + "/v1/applications/batch",
        json={"applications": items},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    response.raise_for_status()
    ids = [o["id"] for o in response.json()["items"]]
    wait_delivered(stack, outbox, ids, 300)
    values, lost = latencies(outbox, ids)
    return {"calls": stack.api_calls() - before, "p95": percentile(values, 95), "lost": lost}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.1,1,10", help="applications/s, comma list")
    parser.add_argument("--limits", default="15000,1000000", help="org daily API limits")
    parser.add_argument("--seconds", type=float, default=120.0, help="arrival time per run")
    parser.add_argument("--share", type=float, default=0.2, help="ATS_GATEWAY_API_SHARE")
    parser.add_argument("--max-wait", type=float, default=900.0, help="max wait, s (paced)")
    parser.add_argument("--modes", default="paced,fixed", help="paced and/or fixed")
    parser.add_argument("--no-burst", action="store_true", help="skip the 1,000 burst")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",")]
    limits = [int(x) for x in args.limits.split(",")]
    modes = [m for m in args.modes.split(",") if m]

    stack = Stack(
        jobs=50,
        api_share=args.share,
        delivery_max_wait_seconds=args.max_wait,
        delivery_window_seconds=2.0,
        jobs_staleness_seconds=3600,
        log_level="INFO",
    )
    base = stack.settings
    results: dict[tuple[int, float, str], dict] = {}
    burst_result = None
    try:
        stack.start_gateway()
        key = stack.api_key(["applications:write", "applications:read"])
        jobs = stack.open_jobs()[:20]
        outbox = Outbox.from_settings(stack.redis, "applications", base)
        for mode in modes:
            stack.settings = base.replace(delivery_paced=(mode == "paced"))
            stack.start_workers(1)
            for limit in limits:
                for rate in rates:
                    run = one_run(
                        stack,
                        key,
                        jobs,
                        outbox,
                        limit=limit,
                        rate=rate,
                        seconds=args.seconds,
                        max_wait=args.max_wait,
                    )
                    results[(limit, rate, mode)] = run
                    print(f"limit {limit} rate {rate}/s {mode}: {run}", flush=True)
            if mode == "paced" and not args.no_burst:
                burst_result = burst(stack, key, jobs, outbox, min(limits))
                print(f"burst of 1,000 on {min(limits)}: {burst_result}", flush=True)
            stack.stop_workers()
    finally:
        stack.close()

    rows = []
    for limit in limits:
        ceiling = int(limit * args.share)
        for rate in rates:
            cells = []
            for mode in ("paced", "fixed"):
                r = results.get((limit, rate, mode))
                if r is None:
                    cells.append("| - | - | - | - ")
                    continue
                over = " **over**" if r["steady"] > ceiling else ""
                lost = f" ({r['not_delivered']} not delivered)" if r["not_delivered"] else ""
                steady_per_1000 = r["steady"] / (rate * 86400) * 1000
                cells.append(
                    f"| {r['calls']:,} ({r['n']:,} apps){lost} | {r['per_1000']:,.0f} "
                    f"({steady_per_1000:,.0f}) | "
                    f"{r['steady']:,.0f}{over} ({r['projected']:,.0f}) | "
                    f"{r['p50']:.1f} / {r['p95']:.1f} s "
                )
            rows.append(f"| {limit:,} | {ceiling:,} | {rate:g} " + "".join(cells) + "|")
    burst_line = ""
    if burst_result is not None:
        burst_line = (
            f"\nBurst: 1,000 applications in one batch POST on the {min(limits):,} org, paced: "
            f"**{burst_result['calls']} org calls**, p95 latency {burst_result['p95']:.1f} s"
            + (f", {burst_result['lost']} not delivered" if burst_result["lost"] else "")
            + ".\n"
        )
    text = (
        f"\n## Trickle delivery and the org's API budget ({machine_line()})\n\n"
        f"`bench/trickle.py`: single applications POSTed at a steady rate for {args.seconds:.0f} s "
        "per run through gunicorn, one worker, no beat, each run a fresh day. **paced**: "
        f"ceiling = {args.share:g} x the org's daily limit, max wait {args.max_wait:.0f} s; "
        "**fixed**: the 2 s micro-batch window alone (before [13]). Calls: the sandbox's "
        "counter from the first POST until the last delivery; projected/day: calls while "
        "applications arrived after the first batch / that time x 86,400 (**over**: above the "
        "ceiling; in brackets: including the first batch, which a fresh start sends at once from "
        "a full allowance); per 1,000: all calls of the run / applications (in brackets: the "
        "steady projection / applications a day at that rate); latency: accepted -> "
        "delivered.\n\n"
        "| org limit/day | ceiling | apps/s | paced: calls | per 1,000 | projected/day | "
        "p50 / p95 | fixed 2 s: calls | per 1,000 | projected/day | p50 / p95 |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n" + burst_line
    )
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
