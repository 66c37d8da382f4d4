"""Listing at the framework's own speed: `GET /v1/jobs` against `/healthz` on the same server.

    .venv/bin/python bench/listing.py [--jobs 10000] [--rounds 5] [--seconds 5]
                                      [--baseline-root DIR] [--no-write]

Starts `ats-gateway dev --jobs N` (2 gunicorn workers, as a user runs it) from this checkout
and, with `--baseline-root`, from another checkout (e.g. a `git worktree` of main) on other
ports; gives each a secret key with no practical rate limit (`1000000/second`: the limit is
still counted and checked on every request), warms the listing up, then, stack after stack,
`--rounds` times, runs `wrk` (8 connections, 2 threads) for `--seconds` on `/healthz`, on
`/v1/jobs`, and on `/healthz` again (`--mode sandwich`: the listing rate is compared with the
mean of the two healthz rates around it), or on both at once (`--mode together`: the server's
capacity is shared between the two by what each request costs). The machine is shared and its
load changes by the second, so the figure that counts is the ratio of each round; the median
ratio is reported with both rates and p99s. Appends a table to bench/RESULTS.md.
Needs `wrk` (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ats_gateway.security.keys import SECRET, KeyStore  # noqa: E402
from bench.harness import append_results, machine_line  # noqa: E402
from bench.idle_org import DevStack  # noqa: E402

HOST = "127.0.0.1"
PATHS = {"healthz": "/healthz", "listing": "/v1/jobs"}


def stack_env(stack: DevStack) -> dict[str, str]:
    env = {}
    for line in (stack.data_dir / "gateway.env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def wrk(url: str, seconds: float, headers: dict[str, str]) -> subprocess.Popen:
    argv = ["wrk", "-t2", "-c8", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return subprocess.Popen([*argv, url], stdout=subprocess.PIPE, text=True)


def wrk_result(process: subprocess.Popen) -> dict[str, float]:
    out, _ = process.communicate()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rate,
        "p99_ms": float(p99.group(1)) * scale,
        "bad": int(bad.group(1)) if bad else 0,
    }


def measure(base: str, args: argparse.Namespace, headers: dict[str, str]) -> dict[str, dict]:
    """One round on one stack: listing and healthz measured under the same load."""
    if args.mode == "together":
        # both at once: the server's capacity is shared by what each request costs
        started = {name: wrk(base + path, args.seconds, headers) for name, path in PATHS.items()}
        return {name: wrk_result(process) for name, process in started.items()}

    # sandwich: healthz, listing, healthz; the listing is compared with the mean of the two
    def one(path: str) -> dict[str, float]:
        return wrk_result(wrk(base + path, args.seconds, headers))

    before, listing, after = one(PATHS["healthz"]), one(PATHS["listing"]), one(PATHS["healthz"])
    healthz = {k: (before[k] + after[k]) / 2 for k in before}
    return {"healthz": healthz, "listing": listing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--baseline-root", default="")
    parser.add_argument("--mode", choices=["sandwich", "together"], default="sandwich")
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    stacks = [DevStack(ROOT, "this", args.port, args.jobs, {})]
    if args.baseline_root:
        root = Path(args.baseline_root).resolve()
        stacks.append(DevStack(root, "baseline", args.port + 50, args.jobs, {}))
    runs: dict[str, list[dict[str, dict[str, float]]]] = {s.label: [] for s in stacks}
    try:
        headers = {}
        for stack in stacks:
            stack.wait_ready()
            client = redis.Redis.from_url(stack_env(stack)["ATS_GATEWAY_REDIS_URL"])
            _, plaintext = KeyStore(client).create(
                kind=SECRET, name="bench", scopes=["jobs:read"], rate_limit="1000000/second"
            )
            headers[stack.label] = {"Authorization": f"Bearer {plaintext}"}
            base = f"http://{HOST}:{stack.port}"
            for _ in range(20):  # the snapshot loads into each gunicorn process
                requests.get(base + "/v1/jobs", headers=headers[stack.label], timeout=60)
            print(f"{stack.label}: ready ({stack.data_dir})", flush=True)
        for round_ in range(args.rounds):
            for stack in stacks:
                base = f"http://{HOST}:{stack.port}"
                result = measure(base, args, headers[stack.label])
                runs[stack.label].append(result)
                ratio = result["listing"]["rps"] / result["healthz"]["rps"]
                print(
                    f"round {round_ + 1} {stack.label}: healthz {result['healthz']['rps']:.0f}/s "
                    f"listing {result['listing']['rps']:.0f}/s ratio {ratio:.2f}",
                    flush=True,
                )
                time.sleep(1)
    finally:
        for stack in stacks:
            stack.stop()

    lines = [
        f"## Listing vs /healthz on the same server ({machine_line()})",
        "",
        f"`bench/listing.py --jobs {args.jobs} --rounds {args.rounds} --seconds {args.seconds:g} "
        f"--mode {args.mode}`:"
        " `ats-gateway dev` (2 gunicorn workers x 32 threads, worker, beat, events), a secret key "
        "limited to 1,000,000/second (counted and checked on every request), `wrk -t2 -c8` "
        f"{args.seconds:g} s per run on `GET /v1/jobs` (first page, {args.jobs:,} seeded jobs) "
        + (
            "and, at the same time, on `/healthz`"
            if args.mode == "together"
            else "between two runs on `/healthz` (ratio: listing / their mean)"
        )
        + f", stack after stack, {args.rounds} rounds. "
        f"Load average when it ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        "compare the ratio, taken at the same time on the same server.",
        "",
        "| stack | healthz req/s (median) | listing req/s (median) | healthz p99 ms | "
        "listing p99 ms | ratio per round | **median ratio** | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, rounds in runs.items():
        name = "this branch" if label == "this" else "baseline (main)"
        ratios = [r["listing"]["rps"] / r["healthz"]["rps"] for r in rounds]

        def med(kind: str, field: str, rounds=rounds) -> float:
            return statistics.median(r[kind][field] for r in rounds)

        bad = round(sum(r[k]["bad"] for r in rounds for k in PATHS))
        lines.append(
            f"| {name} | {med('healthz', 'rps'):,.0f} | {med('listing', 'rps'):,.0f} | "
            f"{med('healthz', 'p99_ms'):.1f} | {med('listing', 'p99_ms'):.1f} | "
            f"{', '.join(f'{x:.2f}' for x in ratios)} | **{statistics.median(ratios):.2f}** | "
            f"{bad} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
