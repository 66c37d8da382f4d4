"""SQLite storage of the sandbox org's records, with an in-memory row cache.

One table holds every record as JSON (API field name -> JSON value). SQLite is the durable
copy; reads are served from a per-object cache of decoded rows, kept in step with every write
and restored from an undo log when a transaction rolls back. One connection, one re-entrant
lock: the app is served threaded, and all-or-nothing requests (composite, collections, tree)
hold the lock for their whole transaction, as a database transaction would.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sandbox_org.ids import IdFactory

_log = logging.getLogger(__name__)

Change = tuple[str, dict[str, Any] | None, dict[str, Any]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    sobject TEXT NOT NULL,
    is_deleted INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_sobject ON records (sobject);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (id TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


class Store:
    """Records by object. Every public method is thread-safe."""

    def __init__(self, path: str = ":memory:") -> None:
        self.lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self.ids = IdFactory()
        self._cache: dict[str, dict[str, dict[str, Any]]] = {}
        self._depth = 0
        self._undo: list[tuple[str, str, dict[str, Any] | None]] = []
        # Commit hooks (Change Data Capture): called with [(sobject, old, new), ...] once per
        # committed outermost transaction (or per write outside one), under the store lock.
        self.listeners: list[Callable[[list[Change]], None]] = []
        self._pending: list[Change] = []
        self._counters: dict[str, int] = dict(self._db.execute("SELECT name, value FROM counters"))
        for (rid,) in self._db.execute("SELECT id FROM records"):
            self.ids.seed(rid[:3], IdFactory.counter_of(rid) + 1)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A (nestable) transaction: everything inside commits or rolls back together."""
        with self.lock:
            self._depth += 1
            name = f"sp{self._depth}"
            mark = len(self._undo)
            pending_mark = len(self._pending)
            self._db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self._db.execute(f"ROLLBACK TO {name}")
                self._db.execute(f"RELEASE {name}")
                for sobject, rid, old in reversed(self._undo[mark:]):
                    rows = self._rows(sobject)
                    if old is None:
                        rows.pop(rid, None)
                    else:
                        rows[rid] = old
                del self._undo[mark:]
                del self._pending[pending_mark:]
                raise
            else:
                self._db.execute(f"RELEASE {name}")
                if self._depth == 1:
                    self._undo.clear()
                    self._notify()
            finally:
                self._depth -= 1

    # -- reads ----------------------------------------------------------------------------

    def _rows(self, sobject: str) -> dict[str, dict[str, Any]]:
        rows = self._cache.get(sobject)
        if rows is None:
            rows = {
                rid: json.loads(data)
                for rid, data in self._db.execute(
                    "SELECT id, data FROM records WHERE sobject = ? ORDER BY rowid", (sobject,)
                )
            }
            self._cache[sobject] = rows
        return rows

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """One row (deleted or not) by 18-char id; the returned dict must not be mutated."""
        with self.lock:
            return self._rows(sobject).get(record_id)

    def all(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """A snapshot list of the rows of one object, in insertion order."""
        with self.lock:
            rows = self._rows(sobject).values()
            if include_deleted:
                return list(rows)
            return [r for r in rows if not r["IsDeleted"]]

    def count(self, sobject: str) -> int:
        with self.lock:
            return sum(1 for r in self._rows(sobject).values() if not r["IsDeleted"])

    # -- writes ---------------------------------------------------------------------------

    def next_counter(self, name: str) -> int:
        """Next value of a named counter (auto numbers); not rolled back, as in Salesforce."""
        with self.lock:
            value = self._counters.get(name, 0) + 1
            self._counters[name] = value
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            return value

    def put(self, sobject: str, record: dict[str, Any]) -> None:
        """Insert or replace one row (the dict is owned by the store afterwards)."""
        rid = record["Id"]
        with self.lock:
            rows = self._rows(sobject)
            old = rows.get(rid)
            self._db.execute(
                "INSERT OR REPLACE INTO records (id, sobject, is_deleted, data) VALUES (?,?,?,?)",
                (rid, sobject, int(bool(record["IsDeleted"])), json.dumps(record)),
            )
            rows[rid] = record
            if self.listeners:
                self._pending.append((sobject, old, record))
            if self._depth:
                self._undo.append((sobject, rid, old))
            else:
                self._notify()

    def _notify(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            for listener in self.listeners:
                try:
                    listener(pending)
                except Exception:  # a commit hook never fails the write that committed
                    _log.exception("store commit listener failed")

    def put_many(self, sobject: str, records: list[dict[str, Any]]) -> None:
        """Bulk insert (seeding): one executemany, no undo log."""
        with self.lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO records (id, sobject, is_deleted, data) VALUES (?,?,?,?)",
                [(r["Id"], sobject, int(bool(r["IsDeleted"])), json.dumps(r)) for r in records],
            )
            self._db.execute("COMMIT")
            rows = self._rows(sobject)
            for r in records:
                rows[r["Id"]] = r

    def set_counter(self, name: str, value: int) -> None:
        with self.lock:
            self._counters[name] = value
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def put_blob(self, record_id: str, data: bytes) -> None:
        """Binary content of a ContentVersion (inside the caller's transaction)."""
        with self.lock:
            self._db.execute(
                "INSERT OR REPLACE INTO blobs (id, data) VALUES (?, ?)", (record_id, data)
            )

    def get_blob(self, record_id: str) -> bytes | None:
        with self.lock:
            row = self._db.execute("SELECT data FROM blobs WHERE id = ?", (record_id,)).fetchone()
            return bytes(row[0]) if row else None

    def is_empty(self) -> bool:
        with self.lock:
            return self._db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None
