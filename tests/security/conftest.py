"""The hostile-review stack: the gateway under gunicorn (the server is part of several
findings), the sandbox org seeded with demo jobs, a Redis database of its own, and keys.

No worker: nothing here needs delivery, and applications accepted by the attack tests stay
queued in this suite's own database.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from sandbox_stack import demo_connection
from stack import admin_client

from ats_gateway.config import PROJECT_ROOT, Settings
from ats_gateway.embedded import ManagedProcess
from ats_gateway.embedded.stack import child_env, gunicorn_argv
from ats_gateway.security import KeyStore
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.server import start_in_thread

ORIGIN = "https://careers.example.com"
#: An org job title that closes a script element ([21]): the org accepts any text.
SCRIPT_TITLE = "</script><script>alert(1)</script> & <b>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    url: str
    settings: Settings
    redis: redis.Redis
    log_path: Path
    pk: str
    sk: str
    sk_other: str
    operator: str
    job_id: str = ""
    script_job_id: str = ""  # an open job titled SCRIPT_TITLE
    origin: str = ORIGIN  # the career site the publishable key is bound to

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def auth(self, key: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **extra}

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def security_db(redis_databases) -> Iterator[str]:
    """The security stack's database of the session Redis, leased for the session (a number
    picked by hand was flushed by another module's lease under pytest-xdist's ordering)."""
    with redis_databases.lease() as url:
        yield url


@pytest.fixture(scope="session")
def security_sandbox(security_db):
    handle = start_in_thread(create_sandbox({"seed": "demo", "seed_jobs": 30}))
    client = redis.Redis.from_url(security_db)
    # Created before the gateway's first snapshot, so every test sees it.
    handle.script_job_id = admin_client(handle.url, client).create(
        "bpats__Job__c",
        {
            "Name": "Script title",
            "bpats__Job_Title__c": SCRIPT_TITLE,
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
            "bpats__Date_Posted__c": "2026-01-15",
        },
    )
    client.close()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def security_stack(base_settings, security_db, security_sandbox, tmp_path_factory) -> Stack:
    settings = base_settings.replace(
        redis_url=security_db,
        connections={
            name: demo_connection(security_sandbox.url, name)
            for name in ("job_portal", "interview_feedback")
        },
        log_format="json",
        # Visitors are told apart by X-Forwarded-For, as behind the one proxy of production.
        trusted_proxy_hops=1,
        operator_networks="",  # the attacker is on loopback too: only a key makes an operator
        form_min_fill_seconds=0,
        rate_limit_key_read="40/minute",
        rate_limit_ip_read="40/minute",
        feed_key_indeed="security-feed-key",
        indeed_apply_secret="security-indeed-secret",  # the fuzz signs its bodies with it
    )
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    store = KeyStore(client)
    _, pk = store.create(
        kind="publishable",
        name="career site",
        scopes=["jobs:read", "applications:write"],
        origins=[ORIGIN],
    )
    _, sk = store.create(
        kind="secret", name="board A", scopes=["applications:write", "applications:read"]
    )
    _, sk_other = store.create(
        kind="secret", name="board B", scopes=["applications:write", "applications:read"]
    )
    _, operator = store.create(kind="secret", name="operator", scopes=["admin"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("security-logs") / "gateway.log"
    process = ManagedProcess(
        "gateway",
        gunicorn_argv("127.0.0.1", port, workers=2),
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        ready=lambda: requests.get(url + "/healthz", timeout=1).ok,
        log_path=log_path,
    ).start(timeout=60)
    stack = Stack(url, settings, client, log_path, pk, sk, sk_other, operator)
    listing = stack.get("/v1/jobs?limit=1", headers=stack.auth(operator))
    stack.job_id = listing.json()["data"][0]["id"]
    stack.script_job_id = security_sandbox.script_job_id
    yield stack
    process.stop()
    client.flushdb()
    client.close()
