"""Session harness: a private Redis, a real Celery worker process, the gateway app.

Everything binds to 127.0.0.1 on free ports and is stopped at the end, so two runs can go side
by side. A guard fails any test that opens a connection beyond the local machine.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid

import pytest
import redis

from ats_gateway import create_app
from ats_gateway.config import Settings
from ats_gateway.embedded import EmbeddedRedis, ManagedProcess
from ats_gateway.embedded.stack import start_worker

# --------------------------------------------------------------------------- network guard

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkAccessError(AssertionError):
    pass


def _guarded_connect(self, address):
    if not _is_local(address):
        raise NetworkAccessError(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        raise NetworkAccessError(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
    return _real_connect_ex(self, address)


@pytest.fixture(scope="session", autouse=True)
def _no_network_beyond_localhost():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> EmbeddedRedis:
    server = EmbeddedRedis(data_dir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# --------------------------------------------------------------------------- gateway


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
    )


@pytest.fixture(scope="session")
def app(base_settings):
    application = create_app(base_settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def celery_app(app):
    return app.extensions["celery"]


@pytest.fixture(scope="session")
def celery_worker(base_settings, celery_app, tmp_path_factory) -> ManagedProcess:
    process = start_worker(base_settings, celery_app, tmp_path_factory.mktemp("worker-logs"))
    yield process
    process.stop()
