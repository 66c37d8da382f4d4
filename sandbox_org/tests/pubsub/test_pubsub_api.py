"""The Pub/Sub API over real gRPC: topics, schemas, replay presets, flow control, errors."""

from __future__ import annotations

import json
import queue

import fastavro
import grpc
import pytest

from sandbox_org import create_app
from sandbox_org.ids import ORG_ID
from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2

from .conftest import ALL, APPS, JOBS, KEEPALIVE, error_code

JOB = "bpats__Job__c"


def test_get_topic_for_each_change_channel(org):
    for topic in (JOBS, APPS, ALL):
        info = org.stub.GetTopic(pb2.TopicRequest(topic_name=topic), metadata=org.metadata)
        assert info.topic_name == topic
        assert info.tenant_guid == ORG_ID
        assert info.can_subscribe is True and info.can_publish is False
        assert info.rpc_id
    job = org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=org.metadata)
    app = org.stub.GetTopic(pb2.TopicRequest(topic_name=APPS), metadata=org.metadata)
    assert len(job.schema_id) == 22 and job.schema_id != app.schema_id


def test_get_schema_is_the_documented_change_event_shape_and_stable(org):
    info = org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=org.metadata)
    schema = org.stub.GetSchema(pb2.SchemaRequest(schema_id=info.schema_id), metadata=org.metadata)
    assert schema.schema_id == info.schema_id
    raw = json.loads(schema.schema_json)
    fastavro.parse_schema(raw)
    assert raw["name"] == "bpats__Job__ChangeEvent"
    assert raw["namespace"] == "com.sforce.eventbus"
    header = raw["fields"][0]
    assert header["name"] == "ChangeEventHeader" and header["type"]["type"] == "record"
    assert [f["name"] for f in header["type"]["fields"]] == [
        "entityName",
        "recordIds",
        "changeType",
        "changeOrigin",
        "transactionKey",
        "sequenceNumber",
        "commitTimestamp",
        "commitNumber",
        "commitUser",
        "nulledFields",
        "diffFields",
        "changedFields",
    ]
    body = {f["name"]: f for f in raw["fields"][1:]}
    assert "Id" not in body and "IsDeleted" not in body and "SystemModstamp" not in body
    assert body["bpats__Job_Title__c"]["type"] == ["null", "string"]
    assert body["bpats__Job_Title__c"]["default"] is None
    assert body["LastModifiedDate"]["type"] == ["null", "long"]
    assert body["bpats__Date_Posted__c"]["type"] == ["null", "int"]
    # The schema id is a fingerprint: another org with the same object has the same id.
    other = create_app().extensions["sandbox"].events.schemas[JOB]
    assert other.schema_id == info.schema_id


def test_unknown_topic_and_schema_are_not_found(org):
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetTopic(
            pb2.TopicRequest(topic_name="/data/Nope__ChangeEvent"), metadata=org.metadata
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(exc.value) == "sfdc.platform.eventbus.grpc.topic.not.found"
    assert "rpcId: " in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetSchema(pb2.SchemaRequest(schema_id="nope"), metadata=org.metadata)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    sub = org.subscribe("/data/Nope__ChangeEvent", 1)
    assert sub.next() is None
    assert sub.error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "metadata",
    [
        "bad token",
        "no metadata",
        "wrong tenant",
        "no instance url",
    ],
)
def test_bad_auth_is_unauthenticated(org, metadata):
    md = dict(org.metadata)
    if metadata == "bad token":
        md["accesstoken"] = "00D5g000004SbxR!AQnotatoken"
    elif metadata == "no metadata":
        md = {}
    elif metadata == "wrong tenant":
        md["tenantid"] = "00D000000000001AAA"
    else:
        del md["instanceurl"]
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=tuple(md.items()))
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(exc.value) == "sfdc.platform.eventbus.grpc.service.auth.error"
    call = org.stub.Subscribe(
        iter([pb2.FetchRequest(topic_name=JOBS, num_requested=1)]), metadata=tuple(md.items())
    )
    with pytest.raises(grpc.RpcError) as exc:
        list(call)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_revoked_rest_session_is_refused(org):
    org.faults({"expire_sessions": True})
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=org.metadata)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _three_jobs(org):
    return [org.create(JOB, {"bpats__Job_Title__c": f"Job {i}"}) for i in range(3)]


def test_earliest_replays_everything_retained(org):
    ids = _three_jobs(org)
    sub = org.subscribe(JOBS, 10, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        events = sub.events(3)
        assert [org.decode(e)["ChangeEventHeader"]["recordIds"] for e in events] == [
            [i] for i in ids
        ]
        replay = [e.replay_id for e in events]
        assert replay == sorted(replay) and len(set(replay)) == 3
    finally:
        sub.close()


def test_latest_gets_only_what_commits_after_subscribing(org):
    _three_jobs(org)
    sub = org.subscribe(JOBS, 10, replay_preset=pb2.ReplayPreset.LATEST)
    try:
        keepalive = sub.next()  # nothing new yet: an empty keepalive, events still owed
        assert list(keepalive.events) == [] and keepalive.pending_num_requested == 10
        new = org.create(JOB, {"bpats__Job_Title__c": "After"})
        (event,) = sub.events(1)
        assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [new]
    finally:
        sub.close()


def test_custom_resumes_after_the_given_replay_id(org):
    ids = _three_jobs(org)
    first = org.subscribe(JOBS, 10, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        events = first.events(3)
    finally:
        first.close()
    sub = org.subscribe(
        JOBS, 10, replay_preset=pb2.ReplayPreset.CUSTOM, replay_id=events[0].replay_id
    )
    try:
        again = sub.events(2)
        assert [org.decode(e)["ChangeEventHeader"]["recordIds"][0] for e in again] == ids[1:]
    finally:
        sub.close()


def test_flow_control_delivers_only_what_was_requested(org):
    ids = _three_jobs(org)
    sub = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        resp = sub.next()
        assert len(resp.events) == 1 and resp.pending_num_requested == 0
        assert org.decode(resp.events[0])["ChangeEventHeader"]["recordIds"] == [ids[0]]
        # Nothing is owed: no event and no keepalive until the client asks again.
        with pytest.raises(queue.Empty):
            sub.next(timeout=KEEPALIVE * 4)
        sub.request(2, topic=JOBS)
        more = sub.events(2)
        assert [org.decode(e)["ChangeEventHeader"]["recordIds"][0] for e in more] == ids[1:]
    finally:
        sub.close()


def test_outstanding_requests_are_capped_at_100(org):
    sub = org.subscribe(JOBS, 80, replay_preset=pb2.ReplayPreset.LATEST)
    try:
        sub.request(80)
        resp = sub.next()
        while resp.pending_num_requested != 100:  # the second request may land after a keepalive
            resp = sub.next()
        assert resp.pending_num_requested == 100
    finally:
        sub.close()


def test_keepalive_carries_the_latest_replay_id(org):
    _three_jobs(org)
    sub = org.subscribe(ALL, 5, replay_preset=pb2.ReplayPreset.LATEST)
    try:
        resp = sub.next()
        assert list(resp.events) == []
        assert resp.latest_replay_id == org.sandbox.events.latest_seq.to_bytes(8, "big")
        assert resp.pending_num_requested == 5 and resp.rpc_id
    finally:
        sub.close()


def test_topic_mismatch_in_a_later_request_ends_the_call(org):
    sub = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.LATEST)
    sub.request(1, topic=APPS)
    resp = sub.next()
    while resp is not None:
        resp = sub.next()
    assert sub.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(sub.error).endswith("subscription.fetch.topic.mismatch")


def test_too_old_and_invalid_replay_ids(org):
    _three_jobs(org)
    sub = org.subscribe(JOBS, 3, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        stored = sub.events(3)[0].replay_id
    finally:
        sub.close()

    def custom(replay_id: bytes) -> grpc.RpcError:
        s = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.CUSTOM, replay_id=replay_id)
        assert s.next() is None
        return s.error

    assert custom(b"\x01garbage").code() == grpc.StatusCode.INVALID_ARGUMENT
    err = custom(b"")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        error_code(err)
        == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
    )
    org.faults({"pubsub_expire": True})
    err = custom(stored)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(err) == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    # EARLIEST still works and starts after the expired events.
    later = org.create(JOB, {"bpats__Job_Title__c": "Later"})
    s = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        (event,) = s.events(1)
        assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [later]
    finally:
        s.close()


def test_events_are_retained_72_hours_by_commit_time(org):
    bus = org.sandbox.events
    _three_jobs(org)
    sub = org.subscribe(JOBS, 3, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        stored = sub.events(3)[-1].replay_id
    finally:
        sub.close()
    real = bus.clock
    bus.clock = lambda: real() + 71 * 3600
    ok = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.CUSTOM, replay_id=stored)
    try:
        assert list(ok.next().events) == []  # still valid: a keepalive, not an error
    finally:
        ok.close()
    bus.clock = lambda: real() + 73 * 3600
    old = org.subscribe(JOBS, 1, replay_preset=pb2.ReplayPreset.CUSTOM, replay_id=stored)
    assert old.next() is None
    assert old.error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_pubsub_down_ends_open_streams_and_refuses_new_ones(org):
    sub = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.LATEST)
    sub.next()  # the stream is open (a keepalive arrived)
    org.faults({"pubsub_down": True})
    resp = sub.next()
    while resp is not None:
        resp = sub.next()
    assert sub.error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_code(sub.error) == "sfdc.platform.eventbus.grpc.service.unavailable"
    with pytest.raises(grpc.RpcError) as exc:
        org.stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=org.metadata)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    org.faults({"pubsub_down": False})
    job = org.create(JOB, {"bpats__Job_Title__c": "Back"})
    again = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        (event,) = again.events(1)
        assert org.decode(event)["ChangeEventHeader"]["recordIds"] == [job]
    finally:
        again.close()


def test_drop_streams_ends_open_calls_once(org):
    sub = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.LATEST)
    sub.next()
    org.faults({"pubsub_drop_streams": True})
    resp = sub.next()
    while resp is not None:
        resp = sub.next()
    assert sub.error.code() == grpc.StatusCode.UNAVAILABLE
    fine = org.subscribe(JOBS, 5, replay_preset=pb2.ReplayPreset.LATEST)
    try:
        assert fine.next() is not None
    finally:
        fine.close()
