"""Fixtures: sandbox orgs served over real HTTP on 127.0.0.1, and authenticated sessions.

* ``org``: one seeded demo org (faults enabled) shared by the whole module set; tests that
  change it restore what they change.
* ``fresh``: a new empty org per test, for tests that change metadata, counters or faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sandbox_org import DEMO_CREDENTIALS, create_app
from sandbox_org.server import ServerHandle, start_in_thread

VERSION = "62.0"


@dataclass
class Org:
    handle: ServerHandle

    @property
    def url(self) -> str:
        return self.handle.url

    @property
    def sandbox(self) -> Any:
        return self.handle.app.extensions["sandbox"]

    def token(self, who: str = "admin") -> str:
        creds = DEMO_CREDENTIALS[who]
        r = requests.post(
            f"{self.url}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "username": creds["username"],
                "password": creds["password"] + creds["security_token"],
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def client(self, who: str = "admin") -> Api:
        return Api(self.url, self.token(who))


class Api:
    """requests.Session bound to one user and ``/services/data/v62.0``."""

    def __init__(self, url: str, token: str) -> None:
        self.root = url
        self.base = f"{url}/services/data/v{VERSION}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, timeout=30, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.session.patch(self.base + path, timeout=30, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.session.delete(self.base + path, timeout=30, **kw)

    def query(self, soql: str, **kw: Any) -> requests.Response:
        return self.get("/query", params={"q": soql}, **kw)

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        r = self.post(f"/sobjects/{sobject}", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.fixture(scope="session")
def org() -> Iterator[Org]:
    handle = start_in_thread(create_app({"seed": "demo", "faults_enabled": True}))
    try:
        yield Org(handle)
    finally:
        handle.stop()


@pytest.fixture
def fresh() -> Iterator[Org]:
    handle = start_in_thread(create_app({"faults_enabled": True}))
    try:
        yield Org(handle)
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def admin(org: Org) -> Api:
    return org.client("admin")


@pytest.fixture(scope="session")
def portal(org: Org) -> Api:
    return org.client("job_portal")


@pytest.fixture(scope="session")
def feedback(org: Org) -> Api:
    return org.client("interview_feedback")


def error_of(response: requests.Response) -> dict[str, Any]:
    """The single element of a REST error array, checked for the array shape."""
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert set(body[0]) <= {"message", "errorCode", "fields"}, body
    return body[0]
