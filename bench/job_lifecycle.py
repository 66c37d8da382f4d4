"""What the lifecycle events ([22]) add to each snapshot path, at catalogue sizes.

    .venv/bin/python bench/job_lifecycle.py [--jobs 50000] [--no-write]

Measured against a private Redis, in-process: ``JobLifecycle.observe`` for a full reload of
``--jobs`` jobs (first: the silent baseline; then with nothing changed; then with 1% changed)
and for one change-event batch of one job; the longest single script call (how long Redis is
held, the chunking's point); beside it the baseline of the same run: hashing the records
alone (the digest cost, no Redis).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import append_results, machine_line  # noqa: E402

from ats_gateway.embedded import EmbeddedRedis  # noqa: E402
from ats_gateway.services.jobs import lifecycle as lifecycle_module  # noqa: E402
from ats_gateway.services.jobs.lifecycle import JobLifecycle, digest  # noqa: E402


def records(n: int, changed: int = 0) -> list[dict]:
    return [
        {
            "id": f"a0M{i:012d}AAA",
            "title": f"Job {i}" + (" (changed)" if i < changed else ""),
            "department": "Engineering",
            "city": "Lisbon",
            "description": "x" * 2000,
            "posted_at": "2026-11-01",
        }
        for i in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    server = EmbeddedRedis().start()
    try:
        client = redis.Redis.from_url(server.url)
        lifecycle = JobLifecycle(client)
        calls: list[float] = []
        script = lifecycle._script

        def timed(**kwargs):
            started = time.perf_counter()
            try:
                return script(**kwargs)
            finally:
                calls.append(time.perf_counter() - started)

        lifecycle._script = timed
        base = records(args.jobs)
        started = time.perf_counter()
        for record in base:
            digest(record)
        hashing = time.perf_counter() - started
        rows = []
        for name, batch, full in (
            ("full reload, first (baseline)", base, True),
            ("full reload, nothing changed", base, True),
            ("full reload, 1% changed", records(args.jobs, args.jobs // 100), True),
            ("one change event (1 job)", [{**base[7], "title": "Retitled"}], False),
        ):
            calls.clear()
            started = time.perf_counter()
            emitted = lifecycle.observe(batch, [], id_field="id", source="bench", full=full)
            rows.append((name, time.perf_counter() - started, max(calls), emitted))
    finally:
        server.stop()
    lines = [
        f"## Job lifecycle events ({machine_line()})",
        "",
        f"`bench/job_lifecycle.py`: {args.jobs:,} jobs of ~2 KB, `JobLifecycle.observe` "
        f"in chunks of {lifecycle_module.CHUNK_JOBS} jobs per script call.",
        "",
        f"* baseline, hashing the records alone (no Redis): {hashing * 1000:,.0f} ms",
    ]
    for name, total, longest, emitted in rows:
        lines.append(
            f"* {name}: {total * 1000:,.0f} ms, longest script call {longest * 1000:,.1f} ms, "
            f"{emitted:,} events"
        )
    text = "\n".join([*lines, ""])
    print(text)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
