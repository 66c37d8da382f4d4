"""Freshness and idle cost of the job snapshot: change events vs today's periodic full reload.

One run, one stack (private Redis, the sandbox org with N jobs in its own process serving REST
and the Pub/Sub API, the gateway under gunicorn, a Celery worker and beat), three phases:

1. **full reload** (today, no subscriber): beat reloads the snapshot on its schedule
   (``jobs_staleness_seconds`` 60 -> a beat every 30 s);
2. **events**: `ats-gateway events` runs (beat keeps running and stands down);
3. **delta polling**: the sandbox's Pub/Sub endpoint is made unavailable, the subscriber polls
   (``events_poll_seconds``, default 30 s).

In each phase: org API calls (the sandbox's usage counter) over an idle window with nothing
changing, extrapolated to an hour and a day (the window is minutes long: an extrapolation,
said so in the table); and K title edits committed at random moments over a spread, each timed
from the moment the org answered the update until ``GET /v1/jobs?q=<tag>`` shows the new title
(polled every 100 ms through the gateway): p50 / p95 / max.

The events phase's daily figure adds 4 full reconciliations a day (default 6 h) at the number
of calls one reconciliation takes, measured when the subscriber starts.

    python bench/freshness.py [--jobs 10000] [--idle-seconds 180] [--changes 20] [--no-write]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    HOST,
    ROOT,
    Stack,
    append_results,
    machine_line,
    percentile,
    wait_for,
)

from ats_gateway.embedded import ManagedProcess
from ats_gateway.embedded.stack import beat_argv, child_env
from ats_gateway.salesforce import ConnectionSettings, Grants, SalesforceClient
from sandbox_org.seed import DEMO_USERS

STATE_KEY = "ats-gateway:events:state"


def state(r: redis.Redis) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(STATE_KEY).items()}


class Probe:
    """Title edits in the org, and when the gateway shows them."""

    def __init__(self, stack: Stack, key: str, jobs: list[str]) -> None:
        self.stack = stack
        user = DEMO_USERS["admin"]
        self.admin = SalesforceClient(
            ConnectionSettings(
                name="admin",
                login_url=stack.sandbox_url,
                client_id=user["client_id"],
                client_secret=user["client_secret"],
                username=user["username"],
                password=user["password"],
                security_token=user["security_token"],
                grants=Grants.everything(),
            ),
            stack.redis,
        )
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.jobs = jobs

    def visible(self, tag: str) -> dict[str, str]:
        response = self.http.get(
            f"{self.stack.gateway_url}/v1/jobs",
            params={"q": tag, "limit": 100, "fields": "id,title"},
            timeout=10,
        )
        response.raise_for_status()
        return {j["id"]: j["title"] for j in response.json()["data"]}

    def latencies(self, count: int, spread: float, timeout: float) -> list[float]:
        """Edit ``count`` public jobs at random moments over ``spread`` seconds."""
        tag = "fresh" + uuid.uuid4().hex[:8]
        picks = random.sample(self.jobs, count)
        start = time.monotonic()
        due = sorted(start + random.uniform(0, spread) for _ in picks)
        plan = list(zip(due, picks, strict=True))
        committed: dict[str, tuple[float, str]] = {}
        seen: dict[str, float] = {}
        deadline = start + spread + timeout
        while len(seen) < count:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"{count - len(seen)} changes not visible in {timeout} s")
            while plan and plan[0][0] <= now:
                _, job = plan.pop(0)
                title = f"{tag} {job}"
                self.admin.update("bpats__Job__c", job, {"bpats__Job_Title__c": title})
                committed[job] = (time.monotonic(), title)
            if committed:
                shown = self.visible(tag)
                at = time.monotonic()
                for job, (_t, title) in committed.items():
                    if job not in seen and shown.get(job) == title:
                        seen[job] = at
            time.sleep(0.1)
        return [seen[j] - committed[j][0] for j in committed]


def idle_calls(stack: Stack, seconds: float) -> int:
    before = stack.api_calls()
    time.sleep(seconds)
    return stack.api_calls() - before


def row(name: str, calls: int, seconds: float, extra_day: float, lat: list[float]) -> str:
    per_hour = calls * 3600 / seconds
    per_day = per_hour * 24 + extra_day
    return (
        f"| {name} | {calls} in {seconds:.0f} s | {per_hour:,.0f} | {per_day:,.0f} | "
        f"{percentile(lat, 50):.2f} | {percentile(lat, 95):.2f} | {max(lat):.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=180.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    stack = Stack(jobs=args.jobs, jobs_staleness_seconds=60, log_level="INFO")
    events: ManagedProcess | None = None
    beat: ManagedProcess | None = None
    try:
        port = int(stack.sandbox_url.rsplit(":", 1)[1])
        stack.settings = stack.settings.replace(
            pubsub_endpoint=f"{HOST}:{port + 1}", pubsub_tls=False
        )
        store = redis.Redis.from_url(stack.settings.redis_url)
        stack.start_gateway(workers=2, threads=4)
        stack.start_workers(1)
        beat = ManagedProcess(
            "beat",
            beat_argv(str(stack.log_dir / "celerybeat-schedule")),
            env=child_env(stack.settings),
            cwd=ROOT,
            log_path=stack.log_dir / "beat.log",
        ).start()
        key = stack.api_key(["jobs:read"])
        jobs = stack.open_jobs()
        probe = Probe(stack, key, jobs)
        wait_for(lambda: probe.visible("a") is not None, 120, "the first snapshot")
        print(f"{len(jobs)} public jobs of {args.jobs}", flush=True)
        results = []

        # 1. today: the periodic full reload
        calls = idle_calls(stack, args.idle_seconds)
        lat = probe.latencies(args.changes, 60.0, 180.0)
        results.append(row("full reload (beat, today)", calls, args.idle_seconds, 0, lat))
        print(results[-1], flush=True)

        # 2. change events
        before = stack.api_calls()
        events = ManagedProcess(
            "events",
            [sys.executable, "-m", "ats_gateway.cli", "events"],
            env=child_env(stack.settings),
            cwd=ROOT,
            log_path=stack.log_dir / "events.log",
        ).start()
        wait_for(lambda: state(store).get("mode") == "stream", 120, "the stream")
        reconcile_calls = stack.api_calls() - before
        time.sleep(2)  # let beat's next tick see the subscriber
        calls = idle_calls(stack, args.idle_seconds)
        lat = probe.latencies(args.changes, 20.0, 60.0)
        results.append(row("change events", calls, args.idle_seconds, 4 * reconcile_calls, lat))
        print(results[-1], flush=True)

        # 3. delta polling (the Pub/Sub endpoint unavailable)
        stack.faults(pubsub_down=True)
        wait_for(lambda: state(store).get("mode") == "polling", 60, "polling mode")
        calls = idle_calls(stack, args.idle_seconds)
        poll = stack.settings.events_poll_seconds
        lat = probe.latencies(args.changes, 2 * poll, 3 * poll)
        results.append(row(f"delta polling (every {poll:.0f} s)", calls, args.idle_seconds, 0, lat))
        print(results[-1], flush=True)
        stack.faults(pubsub_down=False)
        reconciliations = int(state(store).get("reconciliations") or 0)
    finally:
        for process in (events, beat):
            if process is not None:
                process.stop()
        stack.close()

    table = "\n".join(results)
    append_results(
        f"\n## freshness.py: {machine_line()}\n\n"
        f"{args.jobs:,} jobs seeded, {len(jobs):,} public. Idle: nothing changes for "
        f"{args.idle_seconds:.0f} s; per hour and per day are **extrapolated** from that "
        f"window. The events row's day adds 4 reconciliations (default every 6 h) at "
        f"{reconcile_calls} calls each (measured at the subscriber's start). Latency: "
        f"{args.changes} title edits per mode at random moments, from the org's answer to "
        f"the update until `GET /v1/jobs?q=` shows the new title (100 ms polling).\n\n"
        "| mode | org calls idle | calls/hour | calls/day | p50 s | p95 s | max s |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{table}\n\nFull reconciliations during the events and polling phases: "
        f"{reconciliations} (the start one only).\n",
        not args.no_write,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
