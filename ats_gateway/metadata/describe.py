"""Describe results: a typed view over one sObject describe, the offline snapshots, and the
small protocol a describe source (the Salesforce client, or anything else) implements.

A *fetcher* is ``fetch(sobject, if_modified_since=None) -> dict | NOT_MODIFIED``: one
``GET /sobjects/{sobject}/describe`` with ``If-Modified-Since`` (an HTTP date) when given,
answering the describe dict, or :data:`NOT_MODIFIED` on ``304``. It raises on failure (any
exception: the cache keeps serving what it has).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol


class _NotModified:
    """The answer of a fetcher when the org says ``304 Not Modified``."""

    _instance: _NotModified | None = None

    def __new__(cls) -> _NotModified:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_MODIFIED"

    def __bool__(self) -> bool:
        return False


NOT_MODIFIED = _NotModified()


class DescribeFetcher(Protocol):
    def __call__(
        self, sobject: str, if_modified_since: str | None = None
    ) -> dict[str, Any] | _NotModified: ...


class ContractError(Exception):
    """A resource contract disagrees with itself or with the describe (raised at start)."""


def http_date(moment: datetime | None = None) -> str:
    """`Wed, 03 Jul 2013 19:43:31 GMT`, the form `If-Modified-Since` takes."""
    return format_datetime((moment or datetime.now(UTC)).astimezone(UTC), usegmt=True)


def describe_version(describe: Mapping[str, Any]) -> str:
    """A short stable digest of a describe: schemas built from it are memoized by this."""
    canonical = json.dumps(describe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FieldDescribe:
    """One entry of `fields[]` in a describe, with the attributes validation needs."""

    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw.get(key)

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def type(self) -> str:
        return str(self.raw.get("type") or "string")

    @property
    def label(self) -> str:
        return str(self.raw.get("label") or self.name)

    @property
    def length(self) -> int:
        return int(self.raw.get("length") or 0)

    @property
    def precision(self) -> int:
        return int(self.raw.get("precision") or 0)

    @property
    def scale(self) -> int:
        return int(self.raw.get("scale") or 0)

    @property
    def digits(self) -> int:
        return int(self.raw.get("digits") or 0)

    @property
    def createable(self) -> bool:
        return bool(self.raw.get("createable"))

    @property
    def nillable(self) -> bool:
        return bool(self.raw.get("nillable", True))

    @property
    def defaulted_on_create(self) -> bool:
        return bool(self.raw.get("defaultedOnCreate"))

    @property
    def restricted_picklist(self) -> bool:
        return bool(self.raw.get("restrictedPicklist"))

    @property
    def filterable(self) -> bool:
        return bool(self.raw.get("filterable"))

    @property
    def sortable(self) -> bool:
        return bool(self.raw.get("sortable"))

    @property
    def html(self) -> bool:
        return bool(self.raw.get("htmlFormatted"))

    @property
    def reference_to(self) -> tuple[str, ...]:
        return tuple(self.raw.get("referenceTo") or ())

    @property
    def active_values(self) -> list[str]:
        """Active picklist values, in the org's order."""
        return [
            str(v["value"]) for v in self.raw.get("picklistValues") or () if v.get("active", True)
        ]

    @property
    def required_on_create(self) -> bool:
        """What Salesforce insists on at insert: createable, not nillable, no default."""
        return self.createable and not self.nillable and not self.defaulted_on_create


@dataclass(frozen=True)
class ObjectDescribe:
    """A whole sObject describe with case-insensitive field lookup (API names are)."""

    raw: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def version(self) -> str:
        return describe_version(self.raw)

    def flag(self, name: str) -> bool:
        return bool(self.raw.get(name))

    def __iter__(self) -> Iterator[FieldDescribe]:
        for raw in self.raw.get("fields") or ():
            yield FieldDescribe(raw)

    def field(self, api_name: str) -> FieldDescribe | None:
        wanted = api_name.lower()
        for raw in self.raw.get("fields") or ():
            if str(raw.get("name", "")).lower() == wanted:
                return FieldDescribe(raw)
        return None

    def __contains__(self, api_name: object) -> bool:
        return isinstance(api_name, str) and self.field(api_name) is not None


# --------------------------------------------------------------------------- snapshots


def snapshot_path(schemas_dir: str | Path, sobject: str) -> Path:
    return Path(schemas_dir) / "objects" / f"{sobject}.json"


def load_snapshot(schemas_dir: str | Path, sobject: str) -> dict[str, Any]:
    """The describe snapshot shipped in `schemas/objects/` (the offline fallback).

    The one reader of snapshot files; :class:`SnapshotDescribes` caches it per object."""
    path = snapshot_path(schemas_dir, sobject)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"no describe snapshot for {sobject} at {path}") from None


class SnapshotDescribes:
    """Describe snapshots by object name, each read once; ``None`` for an object without one.

    A callable the Salesforce clients' allow-lists take as ``describes``, so they can follow
    relationship paths and subqueries in SOQL without asking the org."""

    def __init__(self, schemas_dir: str | Path) -> None:
        self.schemas_dir = Path(schemas_dir)
        self._cache: dict[str, dict[str, Any] | None] = {}

    def __call__(self, sobject: str) -> dict[str, Any] | None:
        if sobject not in self._cache:
            try:
                self._cache[sobject] = load_snapshot(self.schemas_dir, sobject)
            except ContractError:
                self._cache[sobject] = None
        return self._cache[sobject]


def dump_snapshot(describe: Mapping[str, Any]) -> str:
    """Stable formatting for snapshots: the org's key and field order (which is stable),
    2-space indent, UTF-8, trailing newline (the sandbox writes its snapshots the same way), so
    a diff after `ats-gateway schemas pull` shows only what changed."""
    return json.dumps(describe, indent=2, ensure_ascii=False) + "\n"


def write_snapshot(schemas_dir: str | Path, describe: Mapping[str, Any]) -> Path:
    path = snapshot_path(schemas_dir, describe["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dump_snapshot(describe), encoding="utf-8")
    tmp.replace(path)
    return path
