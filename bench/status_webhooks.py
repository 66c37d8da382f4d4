"""From a recruiter's change in the org to the job board's webhook endpoint ([12] + [17]).

The whole path, every part real: the sandbox org (REST and its Pub/Sub API), the `ats-gateway
events` subscriber process, Redis, a Celery worker and beat (the status sweep, every
``webhook_status_poll_seconds``), and a receiver process on 127.0.0.1. N applications are
submitted and delivered; then each one's status is changed in the org, one every second, and
the time from the org's answer to the update until the receiver has the signed
``application.status_changed`` is measured. Two sweep intervals run side by side in the same
run (1 s, the default, and 5 s). There is no older baseline: before [12] and [17] an org
change never reached the gateway, and a board could only poll.

    .venv/bin/python bench/status_webhooks.py [--changes 20] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import append_results, machine_line, percentile  # noqa: E402
from stack import admin_client, gateway_settings, open_job_ids, running_beat  # noqa: E402
from webhooks.harness import Receiver  # noqa: E402

from ats_gateway import create_app  # noqa: E402
from ats_gateway.config import PROJECT_ROOT, Settings  # noqa: E402
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess  # noqa: E402
from ats_gateway.embedded.stack import child_env, start_worker  # noqa: E402
from ats_gateway.extensions import services  # noqa: E402
from ats_gateway.security import KeyStore  # noqa: E402
from sandbox_org.app import create_app as create_sandbox  # noqa: E402
from sandbox_org.server import start_in_thread  # noqa: E402


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run(poll_seconds: float, changes: int, redis_url: str, sandbox, logs: Path) -> list[float]:
    base = Settings.from_env({}, env="test", secret_key="bench-" + uuid.uuid4().hex)
    settings = gateway_settings(
        base,
        redis_url=redis_url,
        sandbox=sandbox,
        connections=("job_portal",),
        pubsub_endpoint=sandbox.pubsub_target,
        pubsub_tls=False,
        delivery_window_seconds=0.3,
        api_calls_per_day=10_000_000,
        webhook_status_poll_seconds=poll_seconds,
        log_format="text",
    )
    app = create_app(settings)
    store = services(app).redis
    store.flushdb()
    worker = start_worker(settings, app.extensions["celery"], logs)
    beat = running_beat(settings, logs)
    events = ManagedProcess(
        "events",
        [sys.executable, "-m", "ats_gateway.cli", "events"],
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        log_path=logs / f"events-{poll_seconds}.log",
    ).start()
    receiver = Receiver(logs / f"received-{poll_seconds}.jsonl").start()
    try:
        wait(lambda: store.hget("ats-gateway:events:state", "mode") == b"stream", 60, "stream")
        _, key = KeyStore(store).create(
            kind="secret",
            name="bench board",
            scopes=["applications:write", "applications:read", "webhooks:manage"],
        )
        headers = {"Authorization": f"Bearer {key}"}
        http = app.test_client()
        made = http.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["application.status_changed"]},
            headers=headers,
        )
        assert made.status_code == 201, made.get_json()
        admin = admin_client(sandbox.url, store)
        job = open_job_ids(admin)[0]
        ids = []
        for n in range(changes):
            accepted = http.post(
                "/v1/applications",
                json={
                    "job_id": job,
                    "first_name": "Ada",
                    "last_name": f"Bench {n}",
                    "email": f"ada.{uuid.uuid4().hex[:10]}@bench.example.com",
                    "consent": True,
                },
                headers=headers,
            )
            ids.append(accepted.get_json()["id"])

        def record(app_id: str) -> dict:
            return http.get(f"/v1/applications/{app_id}", headers=headers).get_json()

        org_ids = {
            i: wait(lambda i=i: record(i).get("salesforce_id"), 120, "delivery") for i in ids
        }

        def arrived(app_id: str) -> bool:
            for line in receiver.requests():
                if json.loads(line["body"])["data"].get("application_id") == app_id:
                    return True
            return False

        latencies = []
        for app_id in ids:
            admin.update(
                "bpats__Job_Board_Application__c",
                org_ids[app_id],
                {"bpats__Status__c": "In Review"},
            )
            changed = time.monotonic()
            wait(lambda app_id=app_id: arrived(app_id), 60, "the webhook")
            latencies.append(time.monotonic() - changed)
            time.sleep(1.0)
        return latencies
    finally:
        receiver.stop()
        events.stop()
        beat.stop()
        worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    server = EmbeddedRedis().start()
    sandbox = start_in_thread(
        create_sandbox({"seed": "demo", "seed_jobs": 20}), pubsub_port=0, pubsub_keepalive=1.0
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-status-webhooks-"))
    rows = []
    try:
        for db, poll in ((1, 1.0), (2, 5.0)):
            found = run(poll, args.changes, server.url.rsplit("/", 1)[0] + f"/{db}", sandbox, logs)
            rows.append((poll, found))
    finally:
        sandbox.stop()
        server.stop()
    lines = [
        f"## Org status change to the board's webhook ({machine_line()})",
        "",
        f"`bench/status_webhooks.py --changes {args.changes}`: one application's status changed "
        "in the sandbox org every second; time from the org's answer to the update until the "
        "receiver process has the signed `application.status_changed` (change event -> "
        "subscriber -> status stream -> beat sweep -> worker -> receiver).",
        "",
        "| status sweep every | changes | p50 s | p95 s | max s |",
        "|---|---|---|---|---|",
    ]
    for poll, found in rows:
        lines.append(
            f"| {poll:g} s | {len(found)} | {percentile(found, 50):.2f} | "
            f"{percentile(found, 95):.2f} | {max(found):.2f} |"
        )
    lines += ["", "Target (issue [17]): within 10 s. No earlier baseline: before [12]/[17] none."]
    text = "\n".join(lines) + "\n"
    print(text)
    append_results(text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
