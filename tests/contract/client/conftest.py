"""Fixtures for the Salesforce client's contract tests.

* ``sf_redis_server`` (``.url``): a Redis database of the client tests' own for the session
  (leased from the shared stack, tests/stack.py); ``sf_redis``: a client on it, flushed per test.
* ``rsps``: ``responses.RequestsMock(assert_all_requests_are_fired=True)``.
* ``sf``: a job_portal client on recorded responses (its first call logs in).
* ``org``: the backend the behavioural tests run against, parametrized over ``recorded``
  (literal wire shapes registered with ``responses``) and ``sandbox`` (the sandbox org over
  HTTP on a free 127.0.0.1 port). Tests call ``org.expect(...)`` with the recorded answer;
  against the sandbox that is a no-op and the emulator answers for itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import responses
from sf_fakes import RecordedOrg, SandboxOrg, expect_login, sandbox_users, settings
from stack import running_sandbox

from ats_gateway.salesforce import SalesforceClient


@pytest.fixture(scope="session")
def sf_redis_server(redis_databases) -> Iterator[SimpleNamespace]:
    with redis_databases.lease() as url:
        yield SimpleNamespace(url=url)


@pytest.fixture
def sf_redis(sf_redis_server) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(sf_redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sf(sf_redis, rsps) -> Iterator[SalesforceClient]:
    """A job_portal client against recorded responses; the first call logs in."""
    expect_login(rsps)
    client = SalesforceClient(settings(), sf_redis)
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_handle() -> Iterator[Any]:
    """The sandbox org (demo seed, faults switchable) on a free port for the session."""
    with running_sandbox(seed="demo", seed_jobs=20, faults_enabled=True) as handle:
        yield handle


@pytest.fixture(params=["recorded", "sandbox"])
def org(request, sf_redis) -> Iterator[RecordedOrg | SandboxOrg]:
    if request.param == "recorded":
        with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
            yield RecordedOrg(mock, sf_redis)
        return
    handle = request.getfixturevalue("sandbox_handle")
    yield SandboxOrg(handle, sf_redis, sandbox_users())
