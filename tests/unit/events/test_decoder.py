"""Decoding change events: Avro payloads written with fastavro here, bitmaps as documented."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import fastavro
import pytest

from ats_gateway.events.decoder import SchemaCache, decode, decode_all, decode_bitmap, encode_bitmap

HEADER = {
    "name": "ChangeEventHeader",
    "type": {
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": {"type": "array", "items": "string"}},
            {
                "name": "changeType",
                "type": {
                    "type": "enum",
                    "name": "ChangeType",
                    "symbols": [
                        "CREATE",
                        "UPDATE",
                        "DELETE",
                        "UNDELETE",
                        "GAP_CREATE",
                        "GAP_UPDATE",
                        "GAP_DELETE",
                        "GAP_UNDELETE",
                        "GAP_OVERFLOW",
                    ],
                },
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
            {"name": "diffFields", "type": {"type": "array", "items": "string"}},
            {"name": "changedFields", "type": {"type": "array", "items": "string"}},
        ],
    },
}


def optional(name: str, kind) -> dict:
    return {"name": name, "type": ["null", kind], "default": None}


JOB_SCHEMA = {
    "type": "record",
    "name": "bpats__Job__ChangeEvent",
    "namespace": "com.sforce.eventbus",
    "fields": [
        HEADER,
        optional("Name", "string"),
        optional("LastModifiedDate", "long"),
        optional("bpats__Job_Title__c", "string"),
        optional("bpats__Status__c", "string"),
        optional("bpats__End_Date__c", "int"),
        optional("bpats__Post_to_Job_Board__c", "boolean"),
        optional("bpats__Salary_Min__c", "double"),
        optional(
            "Address",
            {
                "type": "record",
                "name": "Address",
                "fields": [
                    optional("Street", "string"),
                    optional("City", "string"),
                    optional("Country", "string"),
                ],
            },
        ),
    ],
}


def header(change_type="UPDATE", changed=(), nulled=(), ids=("a0M000000000001AAA",)) -> dict:
    return {
        "entityName": "bpats__Job__c",
        "recordIds": list(ids),
        "changeType": change_type,
        "changeOrigin": "com/salesforce/api/rest/62.0",
        "transactionKey": "00006bec-ce66-0611-9018-30a98446c9f2",
        "sequenceNumber": 1,
        "commitTimestamp": 1_790_000_000_123,
        "commitNumber": 1,
        "commitUser": "005000000000001AAA",
        "nulledFields": list(nulled),
        "diffFields": [],
        "changedFields": list(changed),
    }


def payload(schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    full = {f["name"]: None for f in schema["fields"]}
    full.update(record)
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), full)
    return out.getvalue()


@pytest.fixture
def cache() -> SchemaCache:
    fetched = []

    def fetch(schema_id: str) -> str:
        fetched.append(schema_id)
        return json.dumps(JOB_SCHEMA)

    found = SchemaCache(fetch)
    found.fetched = fetched
    return found


def test_documented_bitmap_examples():
    """The guide's example: 0x650004E0 -> top-level positions 5,6,7,10,24,26,29,30."""
    schema = {"fields": [{"name": f"f{i}", "type": "string"} for i in range(31)]}
    assert decode_bitmap(schema, ["0x650004E0"]) == [f"f{i}" for i in (5, 6, 7, 10, 24, 26, 29, 30)]
    # The CDC guide's UPDATE example: 0x400080 = Fax (7) and LastModifiedDate (22).
    assert decode_bitmap(schema, ["0x400080"]) == ["f7", "f22"]


def test_nested_compound_bitmap():
    names = decode_bitmap(JOB_SCHEMA, ["0x8", "8-0x06"])
    assert names == ["bpats__Job_Title__c", "Address.City", "Address.Country"]


def test_update_carries_only_changed_and_nulled_fields(cache):
    changed = encode_bitmap(JOB_SCHEMA, ["bpats__Job_Title__c", "LastModifiedDate"])
    nulled = encode_bitmap(JOB_SCHEMA, ["bpats__Salary_Min__c"])
    raw = payload(
        JOB_SCHEMA,
        {
            "ChangeEventHeader": header(changed=changed, nulled=nulled),
            "bpats__Job_Title__c": "Staff Engineer",
            "LastModifiedDate": 1_790_000_000_000,
        },
    )
    event = decode(cache.get("s1"), raw, replay_id=b"\x00\x01")
    assert event.change_type == "UPDATE"
    assert event.entity == "bpats__Job__c"
    assert event.record_ids == ("a0M000000000001AAA",)
    assert event.commit_user == "005000000000001AAA"
    assert event.commit_timestamp == 1_790_000_000_123
    assert event.changed_fields == ("LastModifiedDate", "bpats__Job_Title__c")
    # Unchanged fields are null in an UPDATE payload and must not be taken for values.
    assert event.carried() == {
        "LastModifiedDate": 1_790_000_000_000,
        "bpats__Job_Title__c": "Staff Engineer",
        "bpats__Salary_Min__c": None,
    }


def test_create_carries_everything_and_gaps_nothing(cache):
    raw = payload(
        JOB_SCHEMA,
        {
            "ChangeEventHeader": header("CREATE"),
            "bpats__Job_Title__c": "New",
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
        },
    )
    created = decode(cache.get("s1"), raw)
    assert created.carried()["bpats__Status__c"] == "Open"
    assert created.carried()["bpats__End_Date__c"] is None
    gap = decode(cache.get("s1"), payload(JOB_SCHEMA, {"ChangeEventHeader": header("GAP_UPDATE")}))
    assert gap.is_gap and not gap.is_overflow and gap.carried() == {}
    overflow = decode(
        cache.get("s1"), payload(JOB_SCHEMA, {"ChangeEventHeader": header("GAP_OVERFLOW", ids=())})
    )
    assert overflow.is_overflow and overflow.record_ids == ()


def test_schema_fetched_once_per_id(cache):
    raw = payload(JOB_SCHEMA, {"ChangeEventHeader": header("DELETE")})
    consumer = [
        SimpleNamespace(event=SimpleNamespace(schema_id="s1", payload=raw), replay_id=bytes([0, i]))
        for i in range(3)
    ]
    events = decode_all(cache, consumer)
    assert [e.replay_id for e in events] == [b"\x00\x00", b"\x00\x01", b"\x00\x02"]
    assert cache.fetched == ["s1"]
