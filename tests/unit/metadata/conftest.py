"""Helpers for the metadata unit tests: an in-memory org that answers describes (with
If-Modified-Since), and a Metadata built over the repository's contracts and snapshots."""

from __future__ import annotations

import copy
import json
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.metadata import NOT_MODIFIED, build_metadata
from ats_gateway.metadata.cache import DescribeCache
from ats_gateway.metadata.contracts import load_connections, load_contracts, load_permission_sets
from ats_gateway.metadata.service import Metadata

SCHEMAS = PROJECT_ROOT / "ats_gateway" / "schemas"


def snapshot(sobject: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / "objects" / f"{sobject}.json").read_text())


class FakeOrg:
    """Describes as an org would serve them: 304 when unchanged since If-Modified-Since.

    `calls` records (sobject, if_modified_since) of every describe request."""

    def __init__(self) -> None:
        self.describes: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, float] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.clock = time.time() - 3600  # the org's clock: last change an hour ago
        self.down = False
        self.hidden: set[str] = set()

    def describe(self, sobject: str) -> dict[str, Any]:
        if sobject not in self.describes:
            self.describes[sobject] = snapshot(sobject)
            self.modified[sobject] = self.clock
        return self.describes[sobject]

    def change_field(self, sobject: str, field: str, **changes: Any) -> None:
        """Like an admin editing a field in Setup: bumps the object's modification time."""
        describe = self.describe(sobject)
        for f in describe["fields"]:
            if f["name"] == field:
                add = changes.pop("add_values", [])
                deactivate = changes.pop("deactivate_values", [])
                for value in add:
                    f["picklistValues"].append(
                        {
                            "active": True,
                            "defaultValue": False,
                            "label": value,
                            "validFor": None,
                            "value": value,
                        }
                    )
                for v in f["picklistValues"]:
                    if v["value"] in deactivate:
                        v["active"] = False
                f.update(changes)
        self.clock = time.time()
        self.modified[sobject] = self.clock

    def set_flag(self, sobject: str, flag: str, value: bool) -> None:
        self.describe(sobject)[flag] = value
        self.clock = time.time()
        self.modified[sobject] = self.clock

    def fetcher(self, sobject: str, if_modified_since: str | None = None) -> Any:
        self.calls.append((sobject, if_modified_since))
        if self.down:
            raise ConnectionError("org unreachable")
        if sobject in self.hidden:
            raise LookupError("NotFound: The requested resource does not exist")
        describe = self.describe(sobject)
        if if_modified_since:
            since = parsedate_to_datetime(if_modified_since).timestamp()
            if self.modified[sobject] <= since:
                return NOT_MODIFIED
        return copy.deepcopy(describe)


def with_global_check(org: FakeOrg):
    """A fetcher that also answers "did anything change since?" in one call, like
    `GET /sobjects` with If-Modified-Since."""
    probes: list[str] = []

    def fetch(sobject: str, if_modified_since: str | None = None) -> Any:
        return org.fetcher(sobject, if_modified_since)

    def any_changed(if_modified_since: str) -> bool:
        probes.append(if_modified_since)
        if org.down:
            raise ConnectionError("org unreachable")
        since = parsedate_to_datetime(if_modified_since).timestamp()
        return any(t > since for t in org.modified.values())

    fetch.any_changed = any_changed  # type: ignore[attr-defined]
    fetch.probes = probes  # type: ignore[attr-defined]
    return fetch


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_metadata(
    fetchers: dict[str, Any] | None = None,
    *,
    redis_client: Any = None,
    local_ttl: float = 0.0,
    schemas_dir: Path = SCHEMAS,
) -> Metadata:
    cache = DescribeCache(redis_client, schemas_dir, fetchers or {}, local_ttl=local_ttl)
    return Metadata(
        load_contracts(schemas_dir),
        cache,
        connections=load_connections(schemas_dir),
        permission_sets=load_permission_sets(schemas_dir),
        public_url="http://gateway.test",
    )


@pytest.fixture
def metadata() -> Metadata:
    """Offline: every describe from the snapshots."""
    md = make_metadata()
    md.check()
    return md


@pytest.fixture
def org() -> FakeOrg:
    return FakeOrg()


@pytest.fixture
def online(org: FakeOrg) -> Metadata:
    """Both connections served by the fake org (the org's clock drives If-Modified-Since)."""
    md = make_metadata({"job_portal": org.fetcher, "interview_feedback": org.fetcher})
    md.check()
    return md


__all__ = ["Clock", "FakeOrg", "build_metadata", "make_metadata", "snapshot"]
