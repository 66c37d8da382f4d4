"""Idle org cost: what an `ats-gateway dev` stack with nothing happening spends on the org.

    .venv/bin/python bench/idle_org.py [--minutes 60] [--jobs 10000] [--baseline-root DIR]
                                       [--reconcile-seconds 1200] [--settle 240] [--no-write]

Starts `ats-gateway dev` as a user would (Redis, the sandbox org seeded with `--jobs` jobs,
worker, beat, events subscriber, gateway), from this checkout and, with `--baseline-root`,
from another checkout (e.g. a `git worktree` of main) at the same time on other ports, so both
see the same machine load. After `--settle` seconds (start-up loads: describes, the first
reconciliation, the demo link), every call the sandbox org receives for `--minutes` is read from
its request log and counted by kind: Describe Global, sObject describes, queries (jobs
reconciliation), composites, `/limits` probes, OAuth token logins. Nothing else talks to the
org: no listing, no application.

`--reconcile-seconds` shortens the events subscriber's full reconciliation (default 6 h) so
the hour holds a few of them; the per-day figure then counts the calls of one reconciliation
(calls made within 150 s after its log line) at the default interval and the rest as they
came: per day = (other calls / hour) x 24 + per-reconciliation calls x 4.

Appends a table to bench/RESULTS.md. Every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import append_results, machine_line  # noqa: E402

HOST = "127.0.0.1"
DEFAULT_RECONCILE = 6 * 3600
LINE = re.compile(r'\[(\d\d/\w+/\d{4} [\d:]+)\] "(?:\x1b\[[\d;]*m)?(\w+) (\S+) HTTP')


def kind_of(method: str, path: str) -> str | None:
    """What one request line of the sandbox log was, or None for non-org traffic."""
    path = path.split("?", 1)[0]
    if path == "/services/oauth2/token":
        return "token login"
    match = re.match(r"/services/data/v[\d.]+(/.*)?$", path)
    if not match:
        return None
    rest = (match.group(1) or "/").rstrip("/")
    if rest == "/sobjects":
        return "Describe Global"
    if rest.startswith("/sobjects/") and rest.endswith("/describe"):
        return "sObject describe"
    if rest.startswith(("/query", "/queryAll")):
        return "query"
    if rest.startswith("/composite"):
        return "composite"
    if rest == "/limits":
        return "limits"
    return f"{method} other"


def read_calls(log: Path, since: float) -> list[tuple[float, str]]:
    calls = []
    for line in log.read_text(errors="replace").splitlines():
        match = LINE.search(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%d/%b/%Y %H:%M:%S").timestamp()
        kind = kind_of(match.group(2), match.group(3))
        if kind and at >= since:
            calls.append((at, kind))
    return calls


def reconciliations(log: Path, since: float) -> list[float]:
    """When the events subscriber started a full reconciliation (its log lines)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if "full reconciliation" not in line:
            continue
        stamp = line[:19]
        try:
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp()
        except ValueError:
            continue
        if at >= since:
            found.append(at)
    return found


class DevStack:
    def __init__(self, root: Path, label: str, port: int, jobs: int, env: dict[str, str]):
        self.root, self.label, self.port = root, label, port
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"idle-{label}-"))
        child_env = {**os.environ, **env, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
        self.out = open(self.data_dir / "dev.out", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "ats_gateway.cli", "dev", "--port", str(port)),
                *("--sandbox-port", str(port + 10), "--data-dir", str(self.data_dir)),
                *("--jobs", str(jobs)),
            ],
            cwd=root,
            env=child_env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label}: dev exited; see {self.data_dir / 'dev.out'}")
            if "Ctrl-C stops everything" in (self.data_dir / "dev.out").read_text():
                return
            time.sleep(1)
        raise RuntimeError(f"{self.label}: not ready after {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.out.close()


def summarize(stack: DevStack, start: float, end: float) -> dict:
    calls = [c for c in read_calls(stack.logs / "sandbox.log", start) if c[0] <= end]
    recs = [r for r in reconciliations(stack.logs / "events.log", start) if r <= end]
    hours = (end - start) / 3600
    by_kind = Counter(kind for _, kind in calls)
    # calls within 150 s after a reconciliation started belong to it (the revalidation follows
    # at the next beat check, at most a minute after it ends); the median reconciliation
    # counts, so the first one after a start (which may re-describe what the start-up fetched
    # less than the If-Modified-Since margin after the org's metadata time) does not stand in
    # for all
    windows = [[i for i, c in enumerate(calls) if r <= c[0] <= r + 150] for r in recs]
    in_rec = {i for window in windows for i in window}
    per_rec = statistics.median(len(w) for w in windows) if windows else 0.0
    other = len(calls) - len(in_rec)
    per_day = other / hours * 24 + per_rec * (86400 / DEFAULT_RECONCILE)
    return {
        "calls": len(calls),
        "by_kind": dict(sorted(by_kind.items())),
        "reconciliations": len(recs),
        "per_reconciliation": per_rec,
        "each_reconciliation": [len(w) for w in windows],
        "other_per_hour": other / hours,
        "per_day": per_day,
        "hours": hours,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--settle", type=float, default=240)
    parser.add_argument("--reconcile-seconds", type=float, default=1200)
    parser.add_argument("--baseline-root", default="")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--from-logs", default="", help="label=DATA_DIR,...: summarize again")
    parser.add_argument("--start", type=float, default=0.0, help="with --from-logs: epoch")
    args = parser.parse_args()

    if args.from_logs:
        # summarize a finished run again from its stacks' logs (label=data dir, ...)
        start, end = args.start, args.start + args.minutes * 60
        results = {}
        for item in args.from_logs.split(","):
            label, _, data_dir = item.partition("=")
            logged = SimpleNamespace(logs=Path(data_dir) / "logs")
            results[label] = summarize(logged, start, end)  # type: ignore[arg-type]
        return report(args, results)
    env = {"ATS_GATEWAY_EVENTS_RECONCILE_SECONDS": str(args.reconcile_seconds)}
    stacks = [DevStack(ROOT, "this", args.port, args.jobs, env)]
    if args.baseline_root:
        stacks.append(
            DevStack(Path(args.baseline_root).resolve(), "baseline", args.port + 50, args.jobs, env)
        )
    try:
        for stack in stacks:
            stack.wait_ready()
            print(f"{stack.label}: ready ({stack.data_dir})", flush=True)
        time.sleep(args.settle)
        start = time.time()
        print(f"measuring {args.minutes:g} min from {datetime.now(UTC):%H:%M:%S} UTC", flush=True)
        deadline = start + args.minutes * 60
        while time.time() < deadline:
            time.sleep(min(300, max(1, deadline - time.time())))
            for stack in stacks:
                s = summarize(stack, start, time.time())
                print(f"  {stack.label}: {s['calls']} calls so far {s['by_kind']}", flush=True)
        end = time.time()
        results = {stack.label: summarize(stack, start, end) for stack in stacks}
        for stack in stacks:
            requests.get(f"http://{HOST}:{stack.port}/healthz", timeout=5).raise_for_status()
    finally:
        for stack in stacks:
            stack.stop()

    return report(args, results)


def report(args: argparse.Namespace, results: dict[str, dict]) -> int:
    kinds = sorted({k for r in results.values() for k in r["by_kind"]})
    lines = [
        f"## Idle org cost, one hour ({machine_line()})",
        "",
        f"`bench/idle_org.py --minutes {args.minutes:g} --jobs {args.jobs}`: `ats-gateway dev` "
        f"(worker, beat, events subscriber, gateway; {args.jobs:,} seeded jobs) left alone "
        f"after {args.settle:g} s of start-up; every request the sandbox org received, from its "
        f"request log. Full reconciliation every {args.reconcile_seconds:g} s for the "
        "measurement (default 6 h); per day = other calls/hour x 24 + calls per "
        "reconciliation x 4 (the median reconciliation; each listed). Both stacks ran side by "
        "side on the same (shared, loaded) machine.",
        "",
        "| stack | minutes | calls | " + " | ".join(kinds) + " | reconciliations | "
        "calls per reconciliation (each) | other calls/hour | **per day (6 h reconciliation)** |",
        "|---|---|---|" + "---|" * len(kinds) + "---|---|---|---|",
    ]
    for label, r in results.items():
        name = "this branch" if label == "this" else "baseline (main)"
        cells = " | ".join(str(r["by_kind"].get(k, 0)) for k in kinds)
        lines.append(
            f"| {name} | {r['hours'] * 60:.0f} | {r['calls']} | {cells} | {r['reconciliations']} "
            f"| {r['per_reconciliation']:.0f} ({', '.join(map(str, r['each_reconciliation']))}) "
            f"| {r['other_per_hour']:.1f} | "
            f"**{r['per_day']:.0f}** |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
