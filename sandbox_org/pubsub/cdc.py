"""Change Data Capture: the sandbox's event bus for record changes.

Every committed write to a tracked object (the store calls :meth:`ChangeEvents.on_commit`
once per outermost transaction, whatever API made it) becomes one change event per record, in
the Pub/Sub API's Avro shape:

* a record schema named ``<Object>ChangeEvent`` (custom objects: ``X__c`` ->
  ``X__ChangeEvent``, namespace kept) in namespace ``com.sforce.eventbus``; field 0 is the
  ``ChangeEventHeader`` record, then every non-calculated field of the object except
  ``Id``/``IsDeleted``/``SystemModstamp`` as ``["null", type]`` with ``"default": null``;
  dates are days since the epoch (int), date-times epoch milliseconds (long);
* ``changedFields``/``nulledFields``/``diffFields`` bitmap-encoded over the top-level field
  positions (``"0x..."``, bit i = ``schema.fields[i]``), as decoded by Salesforce's own
  ``python/util/ChangeEventHeaderUtility.py`` (forcedotcom/pub-sub-api);
* CREATE carries every field, UPDATE only the changed ones (unchanged fields are null),
  DELETE none, UNDELETE every field; ``GAP_*``/``GAP_OVERFLOW`` events carry the header only.

Sources: developer.salesforce.com Change Data Capture developer guide (cdc_event_fields_header,
cdc_event_fields_body, cdc_other_events_gap, cdc_other_events_overflow) and Pub/Sub API guide
(event-deserialization-considerations, event-message-durability); see
shared/reference/pubsub-cdc-wire-shapes.md. The exact ``doc`` strings and system-field order
of a real org's schema are not published; ours follow the documented shape.

Replay ids are 8-byte big-endian sequence numbers (opaque to clients). Events are kept for
``retention_seconds`` (72 h) by commit time.
"""

from __future__ import annotations

import base64
import bisect
import contextvars
import datetime as dt
import hashlib
import io
import json
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import fastavro

ALL_CHANGES = "/data/ChangeEvents"
RETENTION_SECONDS = 72 * 3600.0
CHANGE_TYPES = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
]
# Fields a change event never carries as body fields (the id travels in recordIds).
_SKIPPED = {"Id", "IsDeleted", "SystemModstamp", "LastViewedDate", "LastReferencedDate"}
_EPOCH_DAY = dt.date(1970, 1, 1)

#: The ``changeOrigin`` of the writes the current request makes (set by the REST API's entry
#: point, app.py): ``com/salesforce/api/<api>/<version>`` plus ``;client=<id>`` when the
#: caller named itself in ``Sforce-Call-Options: client=<id>``. Empty for writes made other
#: than through an API (seeding, the admin endpoints), as Salesforce leaves it empty for
#: changes not made by API apps. Source: Apex Reference, ``EventBus.ChangeEventHeader``
#: ``changeorigin`` ("com/salesforce/api/soap/49.0;client=Astro"), and the Change Data
#: Capture guide, "ChangeEventHeader Fields".
CHANGE_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("change_origin", default="")


def change_origin(api: str, version: str, call_options: str = "") -> str:
    """``com/salesforce/api/rest/60.0``, ``...;client=<id>`` when the call options name one."""
    origin = f"com/salesforce/api/{api}/{version}"
    for option in call_options.split(","):
        name, _, value = option.strip().partition("=")
        if name.strip().lower() == "client" and value.strip():
            origin += f";client={value.strip()}"
            break
    return origin


def event_name(sobject: str) -> str:
    """``Account`` -> ``AccountChangeEvent``; ``bpats__Job__c`` -> ``bpats__Job__ChangeEvent``."""
    if sobject.endswith("__c"):
        return sobject[:-1] + "ChangeEvent"
    return sobject + "ChangeEvent"


def channel_of(sobject: str) -> str:
    return f"/data/{event_name(sobject)}"


def _header_schema() -> dict[str, Any]:
    strings = {"type": "array", "items": "string"}
    return {
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": "com.sforce.eventbus",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {
                "name": "changeType",
                "type": {
                    "type": "enum",
                    "name": "ChangeType",
                    "namespace": "com.sforce.eventbus",
                    "symbols": CHANGE_TYPES,
                },
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    }


def _avro_type(ftype: str) -> str:
    if ftype == "boolean":
        return "boolean"
    if ftype == "int":
        return "int"
    if ftype in ("double", "currency", "percent"):
        return "double"
    if ftype == "date":
        return "int"
    if ftype in ("datetime", "time"):
        return "long"
    return "string"


def _doc(f: dict[str, Any]) -> str:
    name = f["name"]
    if name in ("CreatedDate", "LastModifiedDate"):
        return f"{name}:DateTime"
    if name in ("CreatedById", "LastModifiedById", "OwnerId"):
        return f"{name[:-2]}:EntityId"
    kind = {"reference": "EntityId", "datetime": "DateTime", "date": "Date"}.get(
        f["type"], f["type"].capitalize()
    )
    return f"Data:{kind}"


@dataclass
class EntitySchema:
    """One change event's Avro schema, its id, and how record values map onto it."""

    sobject: str
    schema: dict[str, Any]
    schema_json: str
    schema_id: str
    parsed: Any
    fields: list[tuple[str, str]]  # (field name, sObject field type), schema order after header

    @classmethod
    def build(cls, sobject: str, describe_fields: Iterable[dict[str, Any]]) -> EntitySchema:
        fields = [
            (f["name"], f["type"])
            for f in describe_fields
            if f["name"] not in _SKIPPED and not f.get("calculated") and f["type"] != "id"
        ]
        by_name = {f["name"]: f for f in describe_fields}
        schema = {
            "type": "record",
            "name": event_name(sobject),
            "namespace": "com.sforce.eventbus",
            "fields": [
                {
                    "name": "ChangeEventHeader",
                    "type": _header_schema(),
                    "doc": "Data:ChangeEventHeader",
                },
                *(
                    {
                        "name": name,
                        "type": ["null", _avro_type(ftype)],
                        "doc": _doc(by_name[name]),
                        "default": None,
                    }
                    for name, ftype in fields
                ),
            ],
        }
        schema_json = json.dumps(schema, separators=(",", ":"))
        digest = hashlib.sha256(schema_json.encode()).digest()[:16]
        schema_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        parsed = fastavro.parse_schema(json.loads(schema_json))
        return cls(sobject, schema, schema_json, schema_id, parsed, fields)

    def position(self, name: str) -> int:
        for i, (fname, _) in enumerate(self.fields, start=1):
            if fname == name:
                return i
        raise KeyError(name)

    def bitmap(self, names: Iterable[str]) -> list[str]:
        """Names -> ``["0x<HEX>"]`` (bit i = top-level field i), ``[]`` for no names."""
        bits = 0
        for name in names:
            bits |= 1 << self.position(name)
        return [f"0x{bits:X}"] if bits else []

    def avro_value(self, ftype: str, value: Any) -> Any:
        if value is None:
            return None
        if ftype == "date":
            return (dt.date.fromisoformat(str(value)[:10]) - _EPOCH_DAY).days
        if ftype == "datetime":
            text = str(value).replace("Z", "+00:00")
            if text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
                text = text[:-2] + ":" + text[-2:]
            return int(dt.datetime.fromisoformat(text).timestamp() * 1000)
        if ftype == "time":
            h, m, s = str(value).rstrip("Z").split(":")
            return int((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)
        if ftype in ("double", "currency", "percent"):
            return float(value)
        if ftype == "int":
            return int(value)
        if ftype == "boolean":
            return bool(value)
        return str(value)

    def encode(self, header: dict[str, Any], values: dict[str, Any]) -> bytes:
        """The bare Avro binary datum (no container header), as Pub/Sub delivers it."""
        datum: dict[str, Any] = {"ChangeEventHeader": header}
        for name, ftype in self.fields:
            datum[name] = self.avro_value(ftype, values.get(name))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.parsed, datum)
        return buf.getvalue()

    def decode(self, payload: bytes) -> dict[str, Any]:
        return fastavro.schemaless_reader(io.BytesIO(payload), self.parsed)  # type: ignore[return-value]


def replay_bytes(seq: int) -> bytes:
    return struct.pack(">Q", seq)


def replay_seq(raw: bytes) -> int | None:
    return struct.unpack(">Q", raw)[0] if len(raw) == 8 else None


@dataclass(frozen=True)
class ChangeEvent:
    seq: int
    entity: str
    event_id: str
    schema_id: str
    payload: bytes
    committed_ms: int


@dataclass
class Allocation:
    """``DailyDeliveredPlatformEvents``: events delivered to subscribers (one per client)."""

    limit: int = 50_000
    delivered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, n: int) -> bool:
        with self._lock:
            if self.delivered + n > self.limit:
                return False
            self.delivered += n
            return True

    def set(self, *, delivered: int | None = None, limit: int | None = None) -> None:
        with self._lock:
            if delivered is not None:
                self.delivered = int(delivered)
            if limit is not None:
                self.limit = int(limit)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"Max": self.limit, "Remaining": max(0, self.limit - self.delivered)}


class ChangeEvents:
    """The org's change event bus: publish on commit, retain, replay, wait for news.

    ``entities`` maps tracked sObject -> describe fields. Thread-safe; subscribers wait on
    :attr:`cond` (notified on every new event and on every fault change).
    """

    def __init__(
        self,
        entities: dict[str, list[dict[str, Any]]],
        *,
        clock: Callable[[], float] = time.time,
        delivery_limit: int = 50_000,
    ) -> None:
        self.schemas = {name: EntitySchema.build(name, fs) for name, fs in entities.items()}
        self.by_schema_id = {s.schema_id: s for s in self.schemas.values()}
        self.enabled = dict.fromkeys(self.schemas, True)
        self.clock = clock
        self.retention_seconds = RETENTION_SECONDS
        self.allocation = Allocation(delivery_limit)
        self.cond = threading.Condition()
        self._events: list[ChangeEvent] = []
        self._last_seq = 0
        self._floor = 1  # the oldest replay position still retained (seq of first kept event)
        self._commit_number = 1_100_670_000_000
        self.down = False  # fault: the Pub/Sub service is unavailable
        self.generation = 0  # bumped by faults that must end every open stream

    # -- topics -------------------------------------------------------------------------

    def topics(self) -> dict[str, str | None]:
        """Channel -> entity (None: every tracked entity), only channels currently served."""
        out: dict[str, str | None] = {}
        for name, on in self.enabled.items():
            if on:
                out[channel_of(name)] = name
        if out:
            out[ALL_CHANGES] = None
        return out

    def matches(self, topic_entity: str | None, event: ChangeEvent) -> bool:
        if not self.enabled.get(event.entity, False):
            return False
        return topic_entity is None or topic_entity == event.entity

    # -- publishing ---------------------------------------------------------------------

    def on_commit(self, changes: list[tuple[str, dict[str, Any] | None, dict[str, Any]]]) -> None:
        """The store's commit hook: (sobject, old row or None, new row) per write, in order."""
        tracked = [c for c in changes if c[0] in self.schemas and self.enabled.get(c[0])]
        if not tracked:
            return
        txn = str(uuid.uuid4())
        now_ms = int(self.clock() * 1000)
        origin = CHANGE_ORIGIN.get()
        events = []
        for seqno, (sobject, old, new) in enumerate(tracked, start=1):
            events.append(self._change(sobject, old, new, txn, seqno, now_ms, origin))
        self._append(events, now_ms)

    def _change(
        self,
        sobject: str,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        txn: str,
        seqno: int,
        now_ms: int,
        origin: str = "",
    ) -> tuple[str, bytes]:
        es = self.schemas[sobject]
        names = [n for n, _ in es.fields]
        changed: list[str] = []
        nulled: list[str] = []
        if old is None or (old.get("IsDeleted") and not new.get("IsDeleted")):
            change_type = "CREATE" if old is None else "UNDELETE"
            values = dict(new)
        elif new.get("IsDeleted") and not old.get("IsDeleted"):
            change_type, values = "DELETE", {}
        else:
            change_type = "UPDATE"
            changed = [n for n in names if old.get(n) != new.get(n)]
            nulled = [n for n in changed if new.get(n) is None]
            values = {n: new.get(n) for n in changed}
        header = self._header(
            sobject,
            [new["Id"]],
            change_type,
            txn,
            seqno,
            now_ms,
            new.get("LastModifiedById") or "",
            nulled=es.bitmap(nulled),
            changed=es.bitmap(changed),
            origin=origin,
        )
        return sobject, es.encode(header, values)

    def _header(
        self,
        sobject: str,
        record_ids: list[str],
        change_type: str,
        txn: str,
        seqno: int,
        now_ms: int,
        user: str,
        *,
        nulled: list[str] | None = None,
        changed: list[str] | None = None,
        origin: str = "",
    ) -> dict[str, Any]:
        with self.cond:
            self._commit_number += 1
        return {
            "entityName": sobject,
            "recordIds": record_ids,
            "changeType": change_type,
            "changeOrigin": origin,
            "transactionKey": txn,
            "sequenceNumber": seqno,
            "commitTimestamp": now_ms,
            "commitNumber": self._commit_number,
            "commitUser": user,
            "nulledFields": nulled or [],
            "diffFields": [],
            "changedFields": changed or [],
        }

    def emit_gap(
        self, sobject: str, change_type: str, record_ids: list[str] | None = None, user: str = ""
    ) -> int:
        """A header-only ``GAP_*`` or ``GAP_OVERFLOW`` event (overflow: no recordIds)."""
        if sobject not in self.schemas:
            raise KeyError(sobject)
        if change_type not in CHANGE_TYPES or not change_type.startswith("GAP_"):
            raise ValueError(change_type)
        ids = [] if change_type == "GAP_OVERFLOW" else list(record_ids or [])
        now_ms = int(self.clock() * 1000)
        header = self._header(sobject, ids, change_type, str(uuid.uuid4()), 1, now_ms, user)
        return self._append([(sobject, self.schemas[sobject].encode(header, {}))], now_ms)

    def _append(self, events: list[tuple[str, bytes]], now_ms: int) -> int:
        with self.cond:
            for sobject, payload in events:
                self._last_seq += 1
                self._events.append(
                    ChangeEvent(
                        self._last_seq,
                        sobject,
                        str(uuid.uuid4()),
                        self.schemas[sobject].schema_id,
                        payload,
                        now_ms,
                    )
                )
            self._purge_locked()
            self.cond.notify_all()
            return self._last_seq

    # -- retention and replay -------------------------------------------------------------

    def _purge_locked(self) -> None:
        cutoff = (self.clock() - self.retention_seconds) * 1000
        drop = 0
        while drop < len(self._events) and self._events[drop].committed_ms < cutoff:
            drop += 1
        if drop:
            self._floor = self._events[drop - 1].seq + 1
            del self._events[:drop]

    def expire_all(self) -> None:
        """Fault: every event so far leaves retention; every replay id issued so far is too old."""
        with self.cond:
            self._floor = self._last_seq + 1
            self._events.clear()
            self.cond.notify_all()

    @property
    def latest_seq(self) -> int:
        with self.cond:
            return self._last_seq

    def start_position(self, preset: int, replay_id: bytes) -> int:
        """The seq after which to deliver; ``ValueError('corrupted'|'missing')`` if invalid.

        preset: 0 LATEST, 1 EARLIEST, 2 CUSTOM (eventbus.v1.ReplayPreset).
        """
        with self.cond:
            self._purge_locked()
            if preset == 1:
                return self._floor - 1
            if preset == 2:
                if not replay_id:
                    raise ValueError("missing")
                seq = replay_seq(replay_id)
                if seq is None or seq < self._floor or seq > self._last_seq:
                    raise ValueError("corrupted")
                return seq
            return self._last_seq

    def after(
        self, seq: int, topic_entity: str | None, limit: int
    ) -> tuple[list[ChangeEvent], int]:
        """Up to ``limit`` retained events after ``seq`` on the topic, oldest first, and the
        position reached (the last event returned, or the tip when all were scanned)."""
        with self.cond:
            if limit <= 0:
                return [], seq
            out = []
            start = bisect.bisect_right(self._events, seq, key=lambda e: e.seq)
            for ev in self._events[start:]:
                if self.matches(topic_entity, ev):
                    out.append(ev)
                    if len(out) >= limit:
                        return out, ev.seq
            return out, max(seq, self._last_seq)

    def has_after(self, seq: int) -> bool:
        with self.cond:
            return self._last_seq > seq


def tracked_entities(objects: dict[str, Any], names: Iterable[str]) -> dict[str, list[dict]]:
    """Describe fields of each named object present in ``objects`` (name -> ObjectSchema)."""
    return {n: objects[n].describe["fields"] for n in names if n in objects}
