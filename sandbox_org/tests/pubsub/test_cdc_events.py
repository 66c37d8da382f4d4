"""Change Data Capture: writes through the REST API produce the documented change events."""

from __future__ import annotations

import time

import grpc
import pytest

from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2

from .conftest import ALL, APPS, JOBS, error_code

JOB = "bpats__Job__c"
APP = "bpats__Job_Board_Application__c"
V = "/services/data/v62.0"


def _events(org, topic, count):
    sub = org.subscribe(topic, 100, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        return sub.events(count)
    finally:
        sub.close()


def test_rest_create_update_delete(org):
    before_ms = int(time.time() * 1000)
    rid = org.create(
        JOB,
        {
            "bpats__Job_Title__c": "Nurse",
            "bpats__City__c": "Boston",
            "bpats__Salary_Min__c": 50000,
            "bpats__Date_Posted__c": "2026-01-02",
        },
    )
    org.update(JOB, rid, {"bpats__Job_Title__c": "Head Nurse", "bpats__City__c": None})
    org.delete(JOB, rid)
    create, update, delete = _events(org, JOBS, 3)
    c, u, d = (org.decode(e) for e in (create, update, delete))

    hc = c["ChangeEventHeader"]
    assert hc["entityName"] == JOB and hc["recordIds"] == [rid]
    assert hc["changeType"] == "CREATE" and hc["changedFields"] == []
    assert hc["sequenceNumber"] == 1 and len(hc["transactionKey"]) == 36
    assert hc["commitTimestamp"] >= before_ms - 1000
    assert hc["commitUser"] == org.sandbox.users["admin"].user_id
    assert c["bpats__Job_Title__c"] == "Nurse" and c["bpats__City__c"] == "Boston"
    assert c["bpats__Salary_Min__c"] == 50000.0
    assert c["bpats__Date_Posted__c"] == 20455  # days since 1970-01-01
    assert c["CreatedDate"] >= before_ms - 1000  # DateTime as epoch milliseconds

    hu = u["ChangeEventHeader"]
    assert hu["changeType"] == "UPDATE"
    assert hu["commitNumber"] > hc["commitNumber"] and hu["transactionKey"] != hc["transactionKey"]
    assert org.field_names(update, hu["changedFields"]) == {
        "bpats__Job_Title__c",
        "bpats__City__c",
        "LastModifiedDate",
    }
    assert org.field_names(update, hu["nulledFields"]) == {"bpats__City__c"}
    assert u["bpats__Job_Title__c"] == "Head Nurse"
    assert u["bpats__Salary_Min__c"] is None  # unchanged fields are null in an UPDATE

    hd = d["ChangeEventHeader"]
    assert hd["changeType"] == "DELETE" and hd["recordIds"] == [rid]
    assert all(v is None for k, v in d.items() if k != "ChangeEventHeader")


def test_bitmap_matches_the_documented_encoding(org):
    """Salesforce's example: Fax (position 7) + LastModifiedDate (22) -> "0x400080"."""
    rid = org.create(JOB, {"bpats__Job_Title__c": "x"})
    org.update(JOB, rid, {"bpats__Job_Title__c": "y"})
    _, update = _events(org, JOBS, 2)
    raw, _ = org.schema(update.event.schema_id)
    names = [f["name"] for f in raw["fields"]]
    expected = (1 << names.index("bpats__Job_Title__c")) | (1 << names.index("LastModifiedDate"))
    assert org.decode(update)["ChangeEventHeader"]["changedFields"] == [f"0x{expected:X}"]


def test_composite_collections_are_one_transaction(org):
    r = org.rest.post(
        f"{org.url}{V}/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": JOB}, "bpats__Job_Title__c": "A"},
                {"attributes": {"type": JOB}, "bpats__Job_Title__c": "B"},
            ],
        },
        timeout=30,
    )
    assert r.status_code == 200 and all(x["success"] for x in r.json()), r.text
    a, b = (org.decode(e)["ChangeEventHeader"] for e in _events(org, JOBS, 2))
    assert a["transactionKey"] == b["transactionKey"]
    assert (a["sequenceNumber"], b["sequenceNumber"]) == (1, 2)
    assert [a["recordIds"][0], b["recordIds"][0]] == [x["id"] for x in r.json()]


def test_rolled_back_writes_emit_nothing(org):
    r = org.rest.post(
        f"{org.url}{V}/composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": JOB}, "bpats__Job_Title__c": "A"},
                {"attributes": {"type": JOB}, "bpats__Status__c": "Not a status"},
            ],
        },
        timeout=30,
    )
    assert r.status_code == 200 and not any(x["success"] for x in r.json()), r.text
    kept = org.create(JOB, {"bpats__Job_Title__c": "kept"})
    (event,) = _events(org, JOBS, 1)
    assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [kept]


def test_composite_graph_and_batch_writes_emit_events(org):
    job = org.create(JOB, {"bpats__Job_Title__c": "Base"})
    graph = {
        "graphs": [
            {
                "graphId": "g1",
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{V}/sobjects/{JOB}",
                        "referenceId": "j",
                        "body": {"bpats__Job_Title__c": "Graph"},
                    },
                    {
                        "method": "PATCH",
                        "url": f"{V}/sobjects/{JOB}/{job}",
                        "referenceId": "u",
                        "body": {"bpats__Job_Title__c": "Graph edit"},
                    },
                ],
            }
        ]
    }
    r = org.rest.post(f"{org.url}{V}/composite/graph", json=graph, timeout=30)
    assert r.status_code == 200 and r.json()["graphs"][0]["isSuccessful"], r.text
    batch = {
        "batchRequests": [
            {
                "method": "PATCH",
                "url": f"v62.0/sobjects/{JOB}/{job}",
                "richInput": {"bpats__City__c": "Oslo"},
            }
        ]
    }
    r = org.rest.post(f"{org.url}{V}/composite/batch", json=batch, timeout=30)
    assert r.status_code == 200 and not r.json()["hasErrors"], r.text
    events = [org.decode(e) for e in _events(org, JOBS, 4)]
    kinds = [(e["ChangeEventHeader"]["changeType"], e["bpats__Job_Title__c"]) for e in events]
    assert kinds == [
        ("CREATE", "Base"),
        ("CREATE", "Graph"),
        ("UPDATE", "Graph edit"),
        ("UPDATE", None),
    ]
    assert events[3]["bpats__City__c"] == "Oslo"


def _application(org):
    job = org.create(JOB, {"bpats__Job_Title__c": "Applied"})
    contact = org.create("Contact", {"LastName": "Doe"})
    app = org.create(
        APP,
        {
            "bpats__Contact__c": contact,
            "bpats__Job__c": job,
            "bpats__Email__c": "a@example.com",
            "bpats__First_Name__c": "A",
            "bpats__Last_Name__c": "Doe",
        },
    )
    return job, app


def test_application_changes_and_the_all_changes_channel(org):
    job, app = _application(org)
    org.update(APP, app, {"bpats__Phone__c": "555"})
    events = _events(org, APPS, 2)
    headers = [org.decode(e)["ChangeEventHeader"] for e in events]
    assert [(h["entityName"], h["changeType"]) for h in headers] == [
        (APP, "CREATE"),
        (APP, "UPDATE"),
    ]
    assert "bpats__Phone__c" in org.field_names(events[1], headers[1]["changedFields"])
    everything = _events(org, ALL, 3)
    assert [org.decode(e)["ChangeEventHeader"]["recordIds"][0] for e in everything] == [
        job,
        app,
        app,
    ]
    assert events[0].event.schema_id != everything[0].event.schema_id


def test_gap_and_overflow_events_on_demand(org):
    rid = org.create(JOB, {"bpats__Job_Title__c": "g"})
    out = org.faults(
        {"pubsub_emit": {"entity": JOB, "changeType": "GAP_UPDATE", "recordIds": [rid]}}
    )
    assert out["pubsub"]["emitted_replay_id"]
    org.faults({"pubsub_emit": {"entity": JOB, "changeType": "GAP_OVERFLOW"}})
    _, gap, overflow = (org.decode(e) for e in _events(org, JOBS, 3))
    assert gap["ChangeEventHeader"]["changeType"] == "GAP_UPDATE"
    assert gap["ChangeEventHeader"]["recordIds"] == [rid]
    assert overflow["ChangeEventHeader"]["changeType"] == "GAP_OVERFLOW"
    assert overflow["ChangeEventHeader"]["recordIds"] == []
    assert all(v is None for k, v in gap.items() if k != "ChangeEventHeader")
    r = org.rest.post(
        f"{org.url}/__sandbox__/faults",
        json={"pubsub_emit": {"entity": JOB, "changeType": "CREATE"}},
    )
    assert r.status_code == 400


def test_disabled_cdc_has_no_channel_and_no_events(org):
    org.faults({"pubsub_cdc": {JOB: False}})
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=org.metadata)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    sub = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.EARLIEST)
    assert sub.next() is None
    assert sub.error.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(sub.error) == "sfdc.platform.eventbus.grpc.topic.not.found"
    org.create(JOB, {"bpats__Job_Title__c": "untracked"})
    _, app = _application(org)
    (event,) = _events(org, ALL, 1)  # only the application: jobs emit nothing while disabled
    assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [app]
    org.faults({"pubsub_cdc": {JOB: True}})
    tracked = org.create(JOB, {"bpats__Job_Title__c": "tracked"})
    (event,) = _events(org, JOBS, 1)
    assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [tracked]


def test_delivered_events_count_in_limits(org):
    before = org.limits()["DailyDeliveredPlatformEvents"]
    assert before == {"Max": 50000, "Remaining": 50000}
    for i in range(3):
        org.create(JOB, {"bpats__Job_Title__c": f"L{i}"})
    _events(org, JOBS, 3)
    _events(org, ALL, 3)  # every subscriber's delivery counts
    assert org.limits()["DailyDeliveredPlatformEvents"] == {"Max": 50000, "Remaining": 49994}
    org.faults({"pubsub_delivery_limit": 6})
    sub = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.EARLIEST)
    assert sub.next() is None
    assert error_code(sub.error) == "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"


def test_seeding_and_untracked_objects_emit_nothing(org):
    org.create("Contact", {"LastName": "Nobody"})
    assert org.sandbox.events.latest_seq == 0


def test_undelete_carries_every_field(org):
    """No REST resource undeletes (SOAP/Apex do); the store's commit hook sees it all the same."""
    rid = org.create(JOB, {"bpats__Job_Title__c": "Back again", "bpats__City__c": "Rome"})
    org.delete(JOB, rid)
    store = org.sandbox.store
    with store.transaction():
        store.put(JOB, dict(store.get(JOB, rid), IsDeleted=False))
    *_, undelete = (org.decode(e) for e in _events(org, JOBS, 3))
    assert undelete["ChangeEventHeader"]["changeType"] == "UNDELETE"
    assert undelete["bpats__Job_Title__c"] == "Back again" and undelete["bpats__City__c"] == "Rome"
