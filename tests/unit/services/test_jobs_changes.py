"""The pure parts of applying job changes: event values as REST has them, the fixed filter
decided locally (same conditions as the snapshot query)."""

from __future__ import annotations

import datetime as dt

from ats_gateway.services.jobs.changes import fails_filter, is_public, public_values, rest_value
from ats_gateway.services.jobs.contract import FixedCondition, JobField, JobsContract

CONTRACT = JobsContract(
    sobject="bpats__Job__c",
    fields=(
        JobField("id", "Id", "id"),
        JobField("title", "bpats__Job_Title__c", "string"),
        JobField("salary_min", "bpats__Salary_Min__c", "number"),
        JobField("posted_at", "bpats__Date_Posted__c", "date"),
        JobField("closes_at", "bpats__End_Date__c", "date"),
    ),
    fixed_filter=(
        FixedCondition("bpats__Status__c", "=", "Open"),
        FixedCondition("bpats__Post_to_Job_Board__c", "=", True),
        FixedCondition("bpats__End_Date__c", ">=", date_literal="TODAY", or_null=True),
    ),
    default_sort="id",
)
TODAY = dt.date(2026, 11, 26)
DAYS = (TODAY - dt.date(1970, 1, 1)).days


def test_event_dates_become_rest_dates():
    assert rest_value("date", DAYS) == "2026-11-26"  # days since the epoch (Pub/Sub Date)
    assert rest_value("date", DAYS * 86_400_000) == "2026-11-26"  # or epoch ms
    assert rest_value("date", "2026-11-26") == "2026-11-26"
    assert rest_value("datetime", 0) == "1970-01-01T00:00:00.000+0000"
    assert rest_value("string", None) is None


def test_public_values_maps_api_names_and_numbers():
    values = {"bpats__Job_Title__c": "Chef", "bpats__Salary_Min__c": 50000.0, "Other__c": 1}
    assert public_values(CONTRACT, values) == {"title": "Chef", "salary_min": 50000}


def test_fixed_filter_locally():
    full = {
        "bpats__Status__c": "Open",
        "bpats__Post_to_Job_Board__c": True,
        "bpats__End_Date__c": None,
    }
    assert is_public(CONTRACT, full, TODAY) is True
    assert is_public(CONTRACT, {**full, "bpats__End_Date__c": DAYS}, TODAY) is True
    assert is_public(CONTRACT, {**full, "bpats__End_Date__c": DAYS - 1}, TODAY) is False
    assert is_public(CONTRACT, {**full, "bpats__Status__c": "Closed"}, TODAY) is False
    assert is_public(CONTRACT, {"bpats__Status__c": "Open"}, TODAY) is None  # undecided
    # An UPDATE carrying only some filter fields: a failing one rules the record out.
    assert fails_filter(CONTRACT, {"bpats__Status__c": "Filled"}, TODAY)
    assert not fails_filter(CONTRACT, {"bpats__Status__c": "open"}, TODAY)  # SOQL ignores case
    assert not fails_filter(CONTRACT, {"bpats__Job_Title__c": "x"}, TODAY)


def test_jobs_past_their_end_date_leave_without_an_org_call(redis_client):
    from ats_gateway.services.jobs import JobsService, SnapshotStore
    from ats_gateway.services.jobs.changes import GoneJobs, SnapshotChanges

    def no_org():
        raise AssertionError("pruning must not call the org")

    prefix = "test:prune:"
    store = SnapshotStore(redis_client, key_prefix=prefix)
    store.clear()
    service = JobsService(
        store, contract=lambda: CONTRACT, source=no_org, query_loader=lambda args: None
    )
    ended, open_ended, today = "a0M000000000001AAA", "a0M000000000002AAA", "a0M000000000003AAA"
    store.publish(
        [
            {"id": ended, "title": "a", "closes_at": "2026-11-25"},
            {"id": open_ended, "title": "b", "closes_at": None},
            {"id": today, "title": "c", "closes_at": "2026-11-26"},
        ],
        snapshot_at=0.0,
    )
    noon = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC).timestamp()
    gone = GoneJobs(redis_client)
    gone.discard([ended])
    changes = SnapshotChanges(service, redis_client, gone=gone, clock=lambda: noon)
    report = changes.prune_expired()
    assert report.removed == 1 and report.query_calls == 0
    # One delta in the log (the removal); the full snapshot is not rewritten.
    (entry,) = store.entries("1")
    assert (entry.kind, entry.upserts, entry.removals) == ("delta", [], [ended])
    assert store.base() == "1"
    assert sorted(r["id"] for r in service.index().records()) == [open_ended, today]
    assert ended in gone and today not in gone
    assert changes.prune_expired().removed == 0  # nothing more to do, no new version
