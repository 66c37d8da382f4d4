"""Session harness: the stack fixtures of tests/stack.py (a private Redis, the gateway app,
real Celery workers, the sandbox org; see that module's docstring) and a guard that fails any
test opening a connection beyond the local machine.

Everything binds to 127.0.0.1 on free ports and is stopped at the end, so two runs can go side
by side.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["stack"]

# Property tests share two cores with real worker, gateway and org processes (and, under
# pytest-xdist, with other runners): how fast examples are generated says nothing about the
# code under test, so the too_slow health check and per-example deadlines are off.
settings.register_profile(
    "shared-cores", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
settings.load_profile("shared-cores")

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
