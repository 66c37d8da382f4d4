"""Webhook delivery throughput: events per second through one sender (one worker's drain of
one endpoint's queue: claim, sign, POST with keep-alive within a batch, settle) to a local
receiver process, against the baseline measured in the same run: one signed
``requests.post`` per event on a new connection, nothing stored (no retries, no DLQ).

    .venv/bin/python bench/webhooks.py [--events 2000] [--no-write]

Not measured here: p95 from an org status change to the receiver (needs [12]'s change-event
subscriber, not on this branch).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import append_results, machine_line  # noqa: E402
from webhooks.harness import Receiver  # noqa: E402

from ats_gateway.config import Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis  # noqa: E402
from ats_gateway.services.delivery import Outbox, drain  # noqa: E402
from ats_gateway.services.webhooks import build_webhooks, event_id  # noqa: E402
from ats_gateway.services.webhooks.signing import headers as sign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    server = EmbeddedRedis().start()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    receiver = Receiver(log_dir / "received.jsonl").start()
    try:
        client = redis.Redis.from_url(server.url)
        settings = Settings.from_env({}, env="test", redis_url=server.url, secret_key="bench")
        hooks = build_webhooks(settings, client, Outbox(client, "applications", fsync=False))
        endpoint = hooks.registry.create("key:bench", receiver.url, ["job.closed"])
        queue = hooks.queue(endpoint.id)
        sender = hooks.sender(endpoint)

        started = time.perf_counter()
        for n in range(args.events):
            hooks.publisher.on_job_closed(f"a0J{n:012d}", 1767225600.0 + n)
        publish_s = time.perf_counter() - started
        started = time.perf_counter()
        while queue.counts()["queued"]:
            drain(queue, sender, batch_size=args.batch, max_seconds=600)
        ours_s = time.perf_counter() - started
        assert sender.sent == args.events, sender.sent

        body = '{"type":"job.closed","data":{}}'
        started = time.perf_counter()
        for n in range(args.events):
            message = event_id("baseline", str(n))
            requests.post(
                receiver.url,
                data=body,
                headers={**sign(endpoint.secret, message, body, time.time())},
                timeout=5,
            ).raise_for_status()
        naive_s = time.perf_counter() - started
        received = len(receiver.requests())
    finally:
        receiver.stop()
        server.stop()
    assert received == 2 * args.events, received
    ours, naive = args.events / ours_s, args.events / naive_s
    text = "\n".join(
        [
            f"## Webhooks ({machine_line()})",
            "",
            f"`bench/webhooks.py`: {args.events} `job.closed` events to one endpoint, a local "
            "receiver process (ThreadingHTTPServer, answers 200), one sender in-process, "
            f"batches of {args.batch}.",
            "",
            f"* enqueue (fan-out into the endpoint's queue): {args.events / publish_s:,.0f} "
            "events/s",
            f"* signed delivery through the queue (claim, sign, POST, settle): **{ours:,.0f} "
            "events/s**",
            f"* baseline, one signed `requests.post` per event, nothing stored: {naive:,.0f} "
            "events/s",
            "",
        ]
    )
    print(text)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
