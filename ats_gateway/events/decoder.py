"""Change events off the Pub/Sub API: Avro payloads -> :class:`ChangeEvent`.

A ``ConsumerEvent`` carries ``event.schema_id`` and ``event.payload``, the bare Avro binary datum
(no container header) written with that schema; the schema itself comes from ``GetSchema`` and
is cached by id (:class:`SchemaCache`). Decoding is fastavro's ``schemaless_reader``.

``ChangeEventHeader.changedFields`` / ``nulledFields`` / ``diffFields`` are bitmaps over the
schema's top-level field positions (element 0, ``"0x..."``) plus ``"<parentPos>-0x..."`` entries
for the components of compound fields, as documented in "Event Deserialization Considerations"
(developer.salesforce.com/docs/platform/pub-sub-api/guide/event-deserialization-considerations)
and implemented by Salesforce's ``python/util/ChangeEventHeaderUtility.py`` (pub-sub-api repo).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastavro

HEADER = "ChangeEventHeader"
GAP_TYPES = frozenset({"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE"})
OVERFLOW = "GAP_OVERFLOW"


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded change event (API names; values as the event carries them)."""

    entity: str  # e.g. bpats__Job__c
    change_type: str  # CREATE UPDATE DELETE UNDELETE GAP_* GAP_OVERFLOW
    record_ids: tuple[str, ...]
    changed_fields: tuple[str, ...]  # decoded names (top level; compound as Parent.Child)
    nulled_fields: tuple[str, ...]
    diff_fields: tuple[str, ...]
    values: Mapping[str, Any]  # every non-header field of the payload
    commit_user: str = ""
    commit_timestamp: int = 0  # epoch ms
    transaction_key: str = ""
    sequence_number: int = 0
    change_origin: str = ""
    replay_id: bytes = b""
    field_types: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_gap(self) -> bool:
        return self.change_type in GAP_TYPES

    @property
    def is_overflow(self) -> bool:
        return self.change_type == OVERFLOW

    def carried(self) -> dict[str, Any]:
        """The field values this event really says something about.

        CREATE / UNDELETE carry the whole record. UPDATE carries only what changed (every
        other field is null in the payload even when the record has a value); fields set to
        null are listed in ``nulledFields``. Diff-encoded text is not a value: left out.
        """
        if self.change_type in ("CREATE", "UNDELETE"):
            return {k: v for k, v in self.values.items() if k not in self.diff_fields}
        if self.change_type != "UPDATE":
            return {}
        names = [n.split(".", 1)[0] for n in (*self.changed_fields, *self.nulled_fields)]
        out = {}
        for name in names:
            if name in self.values and name not in self.diff_fields:
                out[name] = None if name in self.nulled_fields else self.values[name]
        return out


def _unwrap(schema: Any) -> Any:
    """The value schema of an optional union ([null, X], [string, X], [null, string, X])."""
    if isinstance(schema, list):
        names = [s if isinstance(s, str) else s.get("type") for s in schema]
        if len(schema) == 2 and names[0] in ("null", "string"):
            return schema[1]
        if len(schema) == 3 and names[0] == "null" and names[1] == "string":
            return schema[2]
    return schema


def _bits(hex_text: str) -> list[int]:
    value = int(hex_text[2:] if hex_text.lower().startswith("0x") else hex_text, 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def decode_bitmap(schema: Mapping[str, Any], entries: Sequence[str]) -> list[str]:
    """Field names of a ``changedFields``-style bitmap list against the event's schema."""
    fields = schema["fields"]
    names: list[str] = []
    for entry in entries or ():
        if entry.lower().startswith("0x"):
            names += [fields[i]["name"] for i in _bits(entry) if i < len(fields)]
            continue
        parent, _, child_map = entry.partition("-")
        if not parent.isdigit() or not child_map:
            continue
        position = int(parent)
        if position >= len(fields):
            continue
        nested = _unwrap(fields[position]["type"])
        if not isinstance(nested, dict) or nested.get("type") != "record":
            continue
        children = nested["fields"]
        prefix = fields[position]["name"]
        names += [f"{prefix}.{children[i]['name']}" for i in _bits(child_map) if i < len(children)]
    return list(dict.fromkeys(names))


def _doc_types(schema: Mapping[str, Any]) -> dict[str, str]:
    """Top-level field -> its value type name (``long``, ``int``, ``string``, ``record``...)."""
    out = {}
    for f in schema["fields"]:
        t = _unwrap(f["type"])
        out[f["name"]] = t.get("type", "record") if isinstance(t, dict) else str(t)
    return out


@dataclass
class Schema:
    schema_id: str
    raw: dict[str, Any]
    parsed: Any
    types: dict[str, str]


class SchemaCache:
    """Writer schemas by id, fetched once each with ``fetch(schema_id) -> schema_json``."""

    def __init__(self, fetch: Callable[[str], str]) -> None:
        self._fetch = fetch
        self._schemas: dict[str, Schema] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, schema_id: str) -> Schema:
        found = self._schemas.get(schema_id)
        if found is None:
            with self._lock:
                found = self._schemas.get(schema_id)
                if found is None:
                    found = self.add(schema_id, self._fetch(schema_id))
                    self.fetches += 1
        return found

    def add(self, schema_id: str, schema_json: str) -> Schema:
        """Parse and keep one schema (also: seed the cache in tests)."""
        raw = json.loads(schema_json)
        parsed = fastavro.parse_schema(raw, _write_hint=False)
        schema = self._schemas[schema_id] = Schema(schema_id, raw, parsed, _doc_types(raw))
        return schema


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # an Avro enum decodes to its symbol; be lenient
        return str(next(iter(value.values()), ""))
    return str(value)


def decode(schema: Schema, payload: bytes, *, replay_id: bytes = b"") -> ChangeEvent:
    """One change event from its Avro payload and writer schema."""
    record = fastavro.schemaless_reader(io.BytesIO(payload), schema.parsed, None)
    header = record.get(HEADER) or {}
    values = {k: v for k, v in record.items() if k != HEADER}
    return ChangeEvent(
        entity=_text(header.get("entityName")),
        change_type=_text(header.get("changeType")),
        record_ids=tuple(header.get("recordIds") or ()),
        changed_fields=tuple(decode_bitmap(schema.raw, header.get("changedFields") or [])),
        nulled_fields=tuple(decode_bitmap(schema.raw, header.get("nulledFields") or [])),
        diff_fields=tuple(decode_bitmap(schema.raw, header.get("diffFields") or [])),
        values=values,
        commit_user=_text(header.get("commitUser")),
        commit_timestamp=int(header.get("commitTimestamp") or 0),
        transaction_key=_text(header.get("transactionKey")),
        sequence_number=int(header.get("sequenceNumber") or 0),
        change_origin=_text(header.get("changeOrigin")),
        replay_id=replay_id,
        field_types=schema.types,
    )


def decode_all(cache: SchemaCache, events: Iterable[Any]) -> list[ChangeEvent]:
    """Decode the ``ConsumerEvent`` messages of one ``FetchResponse``."""
    return [
        decode(cache.get(e.event.schema_id), e.event.payload, replay_id=bytes(e.replay_id))
        for e in events
    ]


def encode_bitmap(schema: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The inverse of :func:`decode_bitmap` for top-level names (tests, benchmarks)."""
    positions = {f["name"]: i for i, f in enumerate(schema["fields"])}
    value = 0
    for name in names:
        value |= 1 << positions[name]
    return [f"0x{value:X}"] if value else []
