"""Applications benchmark: org API calls per 1,000 applications, and drain time of 10,000.

    .venv/bin/python bench/applications.py [--drain 10000] [--latency-ms 200] [--no-write]

Runs a private Redis and the sandbox org on 127.0.0.1, accepts applications through the
applications service (the same code `POST /v1/applications/batch` calls), and delivers them
with the same drain the Celery worker runs (`services.delivery.drain` + the applications
deliverer). API calls are read from the sandbox's own counter (`/__sandbox__/usage`).

The naive baseline is what a one-record-per-call client does for each application: look up the
Contact by email, create it when missing, create the application (about 3 calls each).
Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ats_gateway import create_app  # noqa: E402
from ats_gateway.config import ConnectionConfig, Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess, free_port  # noqa: E402
from ats_gateway.extensions import services  # noqa: E402
from ats_gateway.salesforce.soql import literal  # noqa: E402
from ats_gateway.services.applications.runtime import (  # noqa: E402
    build_deliverer,
    build_service,
)
from ats_gateway.services.delivery import drain  # noqa: E402
from sandbox_org.seed import DEMO_USERS  # noqa: E402

SEED = ("--seed", "demo", "--jobs", "20", "--faults")
RESUME = base64.b64encode(b"Plain text resume\n" * 20).decode()


def candidates(job: str, tag: str, n: int, *, resume: bool = False) -> list[dict]:
    items = []
    for i in range(n):
        item = {
            "job_id": job,
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "email": f"ada.{i}@{tag}.example.com",
            "consent": True,
        }
        if resume:
            item["resume"] = {"filename": "cv.txt", "content_base64": RESUME}
        items.append(item)
    return items


class Bench:
    def __init__(self) -> None:
        self.redis_server = EmbeddedRedis().start()
        # The org in its own process (as a real org is), so its work does not share our GIL.
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        self.sandbox = ManagedProcess(
            "sandbox org",
            [sys.executable, "-m", "ats_gateway.cli", "sandbox", "--port", str(port), *SEED],
            cwd=ROOT,
            ready=lambda: requests.get(url + "/services/data/", timeout=1).ok,
        ).start(timeout=60)
        self.sandbox.url = url
        user = next(u for u in DEMO_USERS if u["key"] == "job_portal")
        conn = ConnectionConfig(
            name="job_portal",
            login_url=self.sandbox.url,
            client_id=user["client_id"],
            client_secret=user["client_secret"],
            username=user["username"],
            password=user["password"],
            security_token=user["security_token"],
        )
        self.settings = Settings.from_env(
            {},
            redis_url=self.redis_server.url,
            connections={
                "job_portal": conn,
                "interview_feedback": ConnectionConfig(name="interview_feedback"),
            },
        )
        self.redis = redis.Redis.from_url(self.redis_server.url)
        app = create_app(self.settings)  # the same Metadata and connections a worker has
        metadata = services(app).metadata
        self.service = build_service(self.settings, self.redis, metadata)
        self.client = services(app).connections.client("job_portal")
        self.deliverer = build_deliverer(self.settings, self.client, metadata)
        self.job = self.client.query_many(
            ["SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open' LIMIT 1"]
        )[0][0]["Id"]

    def close(self) -> None:
        self.sandbox.stop()
        self.redis_server.stop()

    def used(self) -> int:
        return requests.get(self.sandbox.url + "/__sandbox__/usage", timeout=5).json()["used"]

    def faults(self, **values) -> None:
        requests.post(self.sandbox.url + "/__sandbox__/faults", json=values, timeout=5)

    def deliver(self, items: list[dict]) -> tuple[int, float, dict]:
        """Queue `items`, drain; returns (API calls, seconds, outcomes)."""
        for start in range(0, len(items), 1000):  # the batch endpoint takes 1,000 at a time
            outcome = self.service.submit_batch(items[start : start + 1000])
            assert outcome["rejected"] == 0, outcome["items"][:3]
        before, started = self.used(), time.perf_counter()
        totals: dict[str, int] = {}
        while True:
            report = drain(self.service.outbox, self.deliverer, batch_size=1000, max_batches=100)
            for kind, n in report.outcomes.items():
                totals[kind] = totals.get(kind, 0) + n
            if report.next_run_in is None:
                break
            time.sleep(report.next_run_in)
        return self.used() - before, time.perf_counter() - started, totals

    def naive(self, items: list[dict]) -> tuple[int, float]:
        """One record per call: query the Contact, create it if missing, create the application."""
        before, started = self.used(), time.perf_counter()
        for item in items:
            soql = f"SELECT Id FROM Contact WHERE Email = {literal(item['email'])} LIMIT 1"
            found = self.client.query_page(soql).records
            contact_id = (
                found[0]["Id"]
                if found
                else self.client.create(
                    "Contact",
                    {
                        "FirstName": item["first_name"],
                        "LastName": item["last_name"],
                        "Email": item["email"],
                    },
                )
            )
            self.client.create(
                "bpats__Job_Board_Application__c",
                {
                    "bpats__Contact__c": contact_id,
                    "bpats__Job__c": item["job_id"],
                    "bpats__Email__c": item["email"],
                    "bpats__First_Name__c": item["first_name"],
                    "bpats__Last_Name__c": item["last_name"],
                },
            )
        return self.used() - before, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drain", type=int, default=10_000, help="applications to drain")
    parser.add_argument("--latency-ms", type=int, default=200, help="injected org latency")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)

    bench = Bench()
    rows: list[tuple[str, str, str]] = []
    try:
        tag = "n" + uuid.uuid4().hex[:6]
        calls, secs, outcomes = bench.deliver(candidates(bench.job, tag, 1000))
        rows.append(("1,000 new candidates", f"{calls}", f"{secs:.2f} s, {outcomes}"))

        tag = "h" + uuid.uuid4().hex[:6]
        known = [
            {"FirstName": "Ada", "LastName": f"K{i}", "Email": f"ada.{i}@{tag}.example.com"}
            for i in range(0, 1000, 2)
        ]
        bench.client.bulk_create("Contact", known)
        calls, secs, outcomes = bench.deliver(candidates(bench.job, tag, 1000))
        rows.append(("1,000, 50% existing Contacts", f"{calls}", f"{secs:.2f} s, {outcomes}"))

        tag = "r" + uuid.uuid4().hex[:6]
        calls, secs, outcomes = bench.deliver(candidates(bench.job, tag, 1000, resume=True))
        rows.append(
            ("1,000 new, each with a 360-byte resume", f"{calls}", f"{secs:.2f} s, {outcomes}")
        )

        tag = "x" + uuid.uuid4().hex[:6]
        calls, secs = bench.naive(candidates(bench.job, tag, 1000))
        rows.append(("naive one-record-per-call, 1,000 new", f"{calls}", f"{secs:.2f} s"))

        bench.faults(latency_ms=args.latency_ms)
        tag = "d" + uuid.uuid4().hex[:6]
        calls, secs, outcomes = bench.deliver(candidates(bench.job, tag, args.drain))
        bench.faults(latency_ms=0)
        drain_row = (
            f"drain {args.drain:,} queued, {args.latency_ms} ms org latency",
            f"{calls}",
            f"{secs:.2f} s ({args.drain / secs:,.0f} applications/s), {outcomes}",
        )
        rows.append(drain_row)
    finally:
        bench.close()

    header = (
        f"\n## Applications delivery ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"`bench/applications.py` on {platform.machine()}, Python {platform.python_version()}, "
        "sandbox org in its own process over HTTP (127.0.0.1), Redis embedded; delivery with the "
        "worker's drain code in this process. API calls counted by the "
        "sandbox (`/__sandbox__/usage`); one `/composite` counts as one call, as in Salesforce.\n\n"
        "| scenario | org API calls | time / outcome |\n|---|---|---|\n"
    )
    table = header + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(table)
    if not args.no_write:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
