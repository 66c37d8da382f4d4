"""SOQL over the store: the engine's RecordSource, and query paging with locators.

A query runs once; its records are kept under a query locator and served in batches of
``batchSize`` (default 2,000, 200..2,000 via ``Sforce-Query-Options``), each page naming the
next as ``/services/data/vNN.N/query/<locator>-<offset>`` (salesforce-wire-shapes.md §3;
queryAll pages also say ``/query/``). Locators expire after 15 minutes of inactivity, and a
user keeps at most ``MAX_CURSORS`` open; an unknown one is ``INVALID_QUERY_LOCATOR``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sandbox_org.dml import BLOB_MARKER
from sandbox_org.errors import SfError
from sandbox_org.schema import Perms, Schema
from sandbox_org.store import Store

DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_BATCH = 2000
CURSOR_TTL = 15 * 60
MAX_CURSORS = 200
_BATCH_RE = re.compile(r"batchsize\s*=\s*(\d+)", re.IGNORECASE)


class StoreSource:
    """The SOQL engine's view of the org, as one user sees it."""

    def __init__(self, schema: Schema, store: Store, perms: Perms, version: str) -> None:
        self._schema = schema
        self._store = store
        self._perms = perms
        self._version = version

    def describe(self, sobject: str) -> dict | None:
        return self._schema.describe_for(sobject, self._perms, self._version)

    def records(self, sobject: str, *, include_deleted: bool) -> Iterable[dict]:
        rows = self._store.all(sobject, include_deleted=include_deleted)
        if sobject == "ContentVersion":
            return [self._file_row(r) for r in rows]
        return rows

    def record(self, sobject: str, record_id: str) -> dict | None:
        row = self._store.get(sobject, record_id)
        if row is not None and sobject == "ContentVersion":
            return self._file_row(row)
        return row

    def _file_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("VersionData") == BLOB_MARKER:
            url = f"/services/data/v{self._version}/sobjects/ContentVersion/{row['Id']}/VersionData"
            return dict(row, VersionData=url)
        return row


def batch_size(header: str | None) -> int:
    """The batch size a ``Sforce-Query-Options`` header asks for, clamped to 200..2000."""
    if not header:
        return DEFAULT_BATCH
    m = _BATCH_RE.search(header)
    if not m:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(m.group(1))))


@dataclass
class Cursor:
    records: list[dict[str, Any]]
    total: int
    batch: int
    owner: str
    touched: float


class Cursors:
    """Open query locators (thread-safe, LRU-bounded, expiring)."""

    def __init__(self, new_id: Any) -> None:
        self._new_id = new_id
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Cursor] = OrderedDict()

    def page(
        self,
        records: list[dict[str, Any]],
        total: int,
        *,
        batch: int,
        owner: str,
        version: str,
        is_count: bool = False,
    ) -> dict[str, Any]:
        if is_count or len(records) <= batch:
            return {"totalSize": total, "done": True, "records": records}
        locator = self._new_id("01g")
        cursor = Cursor(records=records, total=total, batch=batch, owner=owner, touched=0.0)
        self._remember(locator, cursor)
        return self._slice(locator, cursor, 0, version)

    def next_page(self, locator_path: str, *, owner: str, version: str) -> dict[str, Any]:
        locator, _, offset_text = locator_path.partition("-")
        with self._lock:
            cursor = self._open.get(locator)
            if cursor is not None and time.monotonic() - cursor.touched > CURSOR_TTL:
                del self._open[locator]
                cursor = None
        if cursor is None or cursor.owner != owner or not offset_text.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(offset_text)
        if offset > len(cursor.records):
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self._remember(locator, cursor)
        return self._slice(locator, cursor, offset, version)

    def _remember(self, locator: str, cursor: Cursor) -> None:
        with self._lock:
            cursor.touched = time.monotonic()
            self._open[locator] = cursor
            self._open.move_to_end(locator)
            while len(self._open) > MAX_CURSORS:
                self._open.popitem(last=False)

    def _slice(self, locator: str, cursor: Cursor, offset: int, version: str) -> dict[str, Any]:
        end = offset + cursor.batch
        page: dict[str, Any] = {"totalSize": cursor.total}
        if end < len(cursor.records):
            page["done"] = False
            page["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        else:
            page["done"] = True
            with self._lock:
                self._open.pop(locator, None)
        page["records"] = cursor.records[offset:end]
        return page
