"""`make bench`: run every benchmark in one go; each appends its table to bench/RESULTS.md.

    .venv/bin/python -m bench [--quick] [--no-write] [--only applications,...,trickle]

Each script runs in its own process (its own Redis, sandbox org and gateway on 127.0.0.1, all
stopped when it ends) and prints a comparison measured in the same run:

    applications.py   org calls per 1,000 applications vs one-record-per-call delivery; drain
                      time of 10,000 queued with 200 ms org latency      (applications helper)
    jobs_listing.py   GET /v1/jobs from the snapshot vs one SOQL query per request (jobs helper)
    drain.py          drain throughput, 0/200/1000 ms org latency x 1/2/4 worker processes, vs
                      naive delivery at the same latency; peak memory of gateway and workers
    load.py           2 minutes of mixed traffic: error rate, latency percentiles, org calls
    status_webhooks.py  org status change -> board webhook (change events, sweep), p50/p95 ([17])
    feeds.py          Indeed / LinkedIn feeds and sitemap of 10,000 jobs: build time, cached
                      serve time and 304, vs building per request                  ([16])
    freshness.py      job snapshot: org calls idle and change-to-visible latency with change
                      events vs today's periodic full reload vs delta polling
    scale.py          10,000 / 50,000 / 100,000 jobs x 1 and 10 org edits/s: listing and q
                      req/s and p99 quiet and under edits, change->visible, RSS per process,
                      feed builds, vs main before [18]                               ([18])
    trickle.py        steady trickles (0.1/1/10 applications/s) on 15,000 and 1,000,000-call
                      orgs: org calls, projected calls/day, latency, paced vs fixed 2 s window

A missing or failing script is reported and the others still run; the exit status is non-zero
if any failed. `--quick` runs smaller sizes (a smoke test of the runner, a few minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import append_results, machine_line  # noqa: E402

# name -> (full arguments, quick arguments, time limit in seconds)
BENCHES: dict[str, tuple[list[str], list[str], int]] = {
    "applications": ([], ["--drain", "2000"], 420),
    "jobs_listing": ([], ["--jobs", "2000", "--requests", "1000", "--seconds", "10"], 420),
    "drain": (
        [],
        ["--applications", "1000", "--latencies", "0,200", "--workers", "1,2", "--naive", "5"],
        600,
    ),
    "load": (["--seconds", "120"], ["--seconds", "20"], 420),
    "freshness": ([], ["--jobs", "1000", "--idle-seconds", "20", "--changes", "5"], 1500),
    "webhooks": ([], ["--events", "300"], 300),
    "status_webhooks": ([], ["--changes", "5"], 600),
    "feeds": ([], ["--jobs", "2000", "--requests", "50"], 600),
    "trickle": ([], ["--seconds", "20", "--rates", "1", "--max-wait", "30"], 3600),
    "scale": (
        ["--sizes", "10000,50000,100000", "--rates", "1,10", "--seconds", "30"],
        ["--sizes", "2000", "--seconds", "3", "--edit-seconds", "15"],
        7200,
    ),
}


def run(name: str, args: list[str], limit: int) -> tuple[str, float]:
    script = HERE / f"{name}.py"
    if not script.exists():
        return "missing", 0.0
    print(f"\n=== bench/{name}.py {' '.join(args)}", flush=True)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, str(script), *args], cwd=HERE.parent, timeout=limit
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {limit} s", time.monotonic() - started
    elapsed = time.monotonic() - started
    return ("ok" if result.returncode == 0 else f"exit {result.returncode}"), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--only", default="", help="comma list of benchmarks to run")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    write = not args.no_write
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    append_results(
        f"\n# make bench{' --quick' if args.quick else ''}: {machine_line()}\n"
        f"\nBenchmarks: {', '.join(names)}; each section below comes from its script.\n",
        write,
    )
    outcomes = []
    started = time.monotonic()
    for name in names:
        full, quick, limit = BENCHES[name]
        extra = ["--no-write"] if args.no_write else []
        status, elapsed = run(name, [*(quick if args.quick else full), *extra], limit)
        outcomes.append((name, status, elapsed))
    total = time.monotonic() - started
    summary = "\n".join(f"| {n}.py | {s} | {e:.0f} s |" for n, s, e in outcomes)
    append_results(
        f"\n`make bench` finished in {total / 60:.1f} min:\n\n| benchmark | outcome | time |\n"
        f"|---|---|---|\n{summary}\n",
        write,
    )
    return 0 if all(s == "ok" for _, s, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
