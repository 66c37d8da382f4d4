"""Helpers of the fault suite (fixtures are in conftest.py, built from tests/stack.py).

The stack: a private Redis (restartable), the sandbox org with faults on, a real Celery worker
process, and the gateway app (in process, or under gunicorn where a test kills it).

Every test submits applications with its own email tag, injects a fault, and then calls
:func:`assert_exactly_once`: every accepted (202) application is in the org exactly once (read
back from the org, never from our own records), its status says so, and nothing is left in the
queue or the dead-letter queue.

``ATS_GATEWAY_SOAK=1`` (``make soak``) runs the long form: more applications, longer outages,
repeated kills. The short form stays within the ``make test`` budget.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import stack as shared

from ats_gateway.config import Settings
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.services.delivery import Outbox

APPLICATION = "bpats__Job_Board_Application__c"
SOAK = os.environ.get("ATS_GATEWAY_SOAK", "") not in ("", "0")
SETTLED = ("delivered", "duplicate", "failed")


def scale(short: int, soak: int) -> int:
    """A size for the short form (``make test``) or the long form (``make soak``)."""
    return soak if SOAK else short


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1):
    return shared.wait_for(predicate, timeout, interval, what)


@dataclass
class Stack:
    """One gateway deployment for the fault suite; tests swap processes in and out of it."""

    settings: Settings
    app: Any
    redis_server: EmbeddedRedis
    redis: redis.Redis
    outbox: Outbox
    sandbox: Any
    admin: SalesforceClient
    headers: dict[str, str]
    jobs: list[str]
    log_dir: Path
    worker: ManagedProcess | None = None
    beat: ManagedProcess | None = None
    extra: list[ManagedProcess] = field(default_factory=list)

    # ------------------------------------------------------------------ processes

    def start_worker(self) -> ManagedProcess:
        self.worker = shared.running_worker(self.settings, self.app, self.log_dir)
        return self.worker

    def start_beat(self) -> ManagedProcess:
        """Celery beat with the app's schedule, as a deployment runs it."""
        self.beat = shared.running_beat(self.settings, self.log_dir)
        return self.beat

    def start_gateway(self, port: int, workers: int = 2) -> ManagedProcess:
        """The gateway as production runs it: gunicorn (wsgi:app) with these settings."""
        process = shared.running_gunicorn(self.settings, self.log_dir, port=port, workers=workers)
        self.extra.append(process)
        return process

    # ------------------------------------------------------------------ the org

    def faults(self, **settings: Any) -> dict:
        return shared.set_faults(self.sandbox, **settings)

    def clear_faults(self) -> None:
        shared.clear_sandbox(self.sandbox, usage=True)

    def api_calls(self) -> int:
        return shared.api_calls(self.sandbox)

    def org_rows(self, soql: str) -> list[dict]:
        return [r for page in self.admin.query(soql).pages() for r in page.records]

    # ------------------------------------------------------------------ submitting

    def candidate(self, tag: str, i: int, job: int = 0, **extra: Any) -> dict:
        return {
            "job_id": self.jobs[job % len(self.jobs)],
            "first_name": "Ada",
            "last_name": f"Lovelace {i}",
            "email": f"ada.{i}@{tag}.example.com",
            "consent": True,
            "source": "Job Board",
            **extra,
        }

    def submit_batch(self, items: list[dict], client: Any = None) -> dict[str, str]:
        """POST /v1/applications/batch; returns accepted id -> email (every item must pass)."""
        http = client or self.app.test_client()
        response = http.post(
            "/v1/applications/batch", json={"applications": items}, headers=self.headers
        )
        assert response.status_code == 207, response.get_data(as_text=True)[:500]
        body = response.json
        assert body["rejected"] == 0, body
        return {o["id"]: items[o["index"]]["email"] for o in body["items"]}


class Supervisor:
    """Restarts the stack's worker (and beat) whenever it exits, as systemd (Restart=always) or
    Kubernetes would. Counts the worker's restarts."""

    def __init__(self, stack: Stack, interval: float = 0.5) -> None:
        self.stack = stack
        self.interval = interval
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            worker = self.stack.worker
            if worker is not None and not worker.alive():
                worker.stop()  # reap it and close its log
                self.stack.start_worker()
                self.restarts += 1
            beat = self.stack.beat
            if beat is not None and not beat.alive():
                beat.stop()
                self.stack.start_beat()

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)


# --------------------------------------------------------------------------- invariants


def wait_settled(stack: Stack, ids: Iterable[str], timeout: float) -> dict[str, dict]:
    """Wait until no id is queued or delivering; returns every final status record."""
    ids = list(ids)
    final: dict[str, dict] = {}

    def done() -> bool:
        for application_id in ids:
            if application_id not in final:
                record = stack.outbox.get(application_id)
                if record and record["status"] in SETTLED:
                    final[application_id] = record
        return len(final) == len(ids)

    try:
        wait_for(done, timeout, f"{len(ids)} applications to settle ({len(final)} so far)", 0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnose(stack)}") from None
    return final


def diagnose(stack: Stack) -> str:
    """What a failed wait should show: the queue, the drain schedule, the worker and its log."""
    marker = stack.outbox.prefix + "scheduled"
    worker = stack.worker
    lines = [
        f"outbox counts: {stack.outbox.counts()}",
        f"next due in: {(stack.outbox.next_due() or 0) - time.time():.1f}s",
        f"drain scheduled marker: {stack.redis.get(marker)!r} ttl {stack.redis.pttl(marker)} ms",
        f"worker alive: {worker.alive() if worker else None}",
    ]
    if worker is not None and worker.log_path and worker.log_path.exists():
        tail = worker.log_path.read_text(errors="replace").splitlines()[-15:]
        lines += [f"worker log {worker.log_path}:", *tail]
    return "\n".join(lines)


def assert_exactly_once(
    stack: Stack, accepted: dict[str, str], tag: str, *, timeout: float = 60.0
) -> dict[str, dict]:
    """The suite's invariant, checked against the org after a fault.

    ``accepted`` maps every id the gateway answered 202 for to its email (all with ``tag``).
    Every one is delivered, the org holds exactly one application and one Contact per email
    (and nothing for an email that was never accepted), each status names the org's record,
    and the queue, the in-flight set and the dead-letter queue hold nothing of this test.
    """
    final = wait_settled(stack, accepted, timeout)
    statuses = Counter(r["status"] for r in final.values())
    assert statuses == {"delivered": len(accepted)}, statuses
    rows = stack.org_rows(
        f"SELECT Id, bpats__Email__c, bpats__Contact__c FROM {APPLICATION} "
        f"WHERE bpats__Email__c LIKE '%@{tag}.example.com'"
    )
    per_email = Counter(r["bpats__Email__c"].lower() for r in rows)
    duplicates = {e: n for e, n in per_email.items() if n > 1}
    assert not duplicates, f"applications in the org more than once: {duplicates}"
    assert set(per_email) == {e.lower() for e in accepted.values()}
    by_id = {r["Id"]: r for r in rows}
    for application_id, record in final.items():
        org = by_id.get(record["result"]["salesforce_id"])
        assert org is not None, f"{application_id}: status names a record the org does not have"
        assert org["bpats__Email__c"].lower() == accepted[application_id].lower()
        assert org["bpats__Contact__c"] == record["result"]["contact_id"]
        assert not record["has_payload"], "candidate data stayed in Redis after delivery"
    contacts = stack.org_rows(f"SELECT Email FROM Contact WHERE Email LIKE '%@{tag}.example.com'")
    per_contact = Counter(c["Email"].lower() for c in contacts)
    assert set(per_contact.values()) == {1}, "a Contact was created twice"
    assert_queue_empty(stack, accepted)
    return final


def assert_queue_empty(stack: Stack, ids: Iterable[str]) -> None:
    """None of ``ids`` is queued, in flight or dead-lettered."""
    ids = set(ids)
    for key in (stack.outbox.ready_key, stack.outbox.inflight_key, stack.outbox.dlq_key):
        left = ids & {m.decode() for m in stack.redis.zrange(key, 0, -1)}
        assert not left, f"{len(left)} of this test's applications left in {key}"


def new_tag(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------- workers


class SwappedWorkers:
    """Replace the stack's worker by ``count`` workers with changed settings (a shorter read
    timeout, a lease shorter than a batch, no heartbeat...); the stack's own worker comes back
    on exit."""

    def __init__(self, stack: Stack, count: int = 1, **changes: Any) -> None:
        self.stack = stack
        self.count = count
        self.settings = stack.settings.replace(**changes)
        self.workers: list[ManagedProcess] = []

    def __enter__(self) -> SwappedWorkers:
        if self.stack.worker is not None:
            self.stack.worker.stop()
        self.workers = [
            shared.running_worker(self.settings, self.stack.app, self.stack.log_dir)
            for _ in range(self.count)
        ]
        self.stack.worker = self.workers[0]
        return self

    def lost_leases(self) -> int:
        """Settles fenced off (the batch was taken over), from the workers' drain logs."""
        total = 0
        for worker in self.workers:
            if worker.log_path and worker.log_path.exists():
                for line in worker.log_path.read_text(errors="replace").splitlines():
                    if " drain: " in line and "lost leases " in line:
                        total += int(line.rsplit("lost leases ", 1)[1].split()[0].rstrip(","))
        return total

    def __exit__(self, *exc: object) -> None:
        # A supervisor may have replaced a killed worker meanwhile: stop that one too.
        others = [self.stack.worker] if self.stack.worker not in self.workers else []
        for worker in [*self.workers, *others]:
            if worker is not None:
                worker.stop()
        self.stack.start_worker()


def org_contacts(stack: Stack, tag: str) -> Counter:
    contacts = stack.org_rows(f"SELECT Email FROM Contact WHERE Email LIKE '%@{tag}.example.com'")
    return Counter(c["Email"].lower() for c in contacts)
