"""[22] Two behaviours of a real org the sandbox lacked: change events made through the API
carry ``changeOrigin`` (``com/salesforce/api/rest/62.0``, with ``;client=<id>`` when the call
named its client in ``Sforce-Call-Options``), and a Subscribe stream owed no events is closed
by the server ``pubsub_idle_close_seconds`` after its last FetchResponse (Salesforce: 60 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sandbox_org import create_app
from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2
from sandbox_org.server import start_in_thread

from .conftest import JOBS, KEEPALIVE, PubSubOrg, Subscription

JOB = "bpats__Job__c"
IDLE = 0.5


@pytest.fixture
def idle_org() -> Iterator[PubSubOrg]:
    handle = start_in_thread(
        create_app({"pubsub_idle_close_seconds": IDLE}),
        pubsub_port=0,
        pubsub_keepalive=KEEPALIVE,
    )
    o = PubSubOrg(handle)
    try:
        yield o
    finally:
        o.channel.close()
        handle.stop()


def test_api_changes_carry_their_change_origin(org):
    plain = org.create(JOB, {"bpats__Job_Title__c": "Nurse"})
    r = org.rest.patch(
        f"{org.base}/sobjects/{JOB}/{plain}",
        json={"bpats__Job_Title__c": "Head Nurse"},
        headers={"Sforce-Call-Options": "client=AtsGateway, defaultNamespace=bpats"},
        timeout=30,
    )
    assert r.status_code == 204, r.text
    r = org.rest.post(
        f"{org.base}/composite/sobjects",
        json={"allOrNone": True, "records": [{"attributes": {"type": JOB}, "Name": "Two"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sub = org.subscribe(JOBS, 10, replay_preset=pb2.ReplayPreset.EARLIEST)
    try:
        events = [org.decode(e)["ChangeEventHeader"] for e in sub.events(3)]
    finally:
        sub.close()
    assert [h["changeOrigin"] for h in events] == [
        "com/salesforce/api/rest/62.0",
        "com/salesforce/api/rest/62.0;client=AtsGateway",
        "com/salesforce/api/rest/62.0",
    ]


def _subscribed(org: PubSubOrg, n: int) -> Subscription:
    """A subscription from LATEST that the server holds: its first keepalive (sent while events
    are owed) says so. An event made before that falls before LATEST and never comes (seen
    once in CI: the stream then waited for it, keepalive after keepalive, for 300 s)."""
    sub = org.subscribe(JOBS, n)
    ready = sub.next()
    assert ready is not None and not ready.events, sub.error
    return sub


def _first_event(sub: Subscription):
    response = sub.next()
    while response is not None and not response.events:  # keepalives until the event
        response = sub.next()
    return response


def test_a_stream_owed_nothing_is_closed_after_the_idle_time(idle_org):
    org = idle_org
    sub = _subscribed(org, 1)
    org.create(JOB, {"bpats__Job_Title__c": "Nurse"})
    first = _first_event(sub)
    assert first is not None and len(first.events) == 1 and first.pending_num_requested == 0
    # Nothing owed and no FetchRequest: the server ends the call (status OK, no error).
    assert sub.next(timeout=IDLE * 20) is None
    assert sub.error is None
    sub.close()


def test_a_stream_that_keeps_asking_stays_open(idle_org):
    org = idle_org
    sub = _subscribed(org, 1)
    try:
        org.create(JOB, {"bpats__Job_Title__c": "Nurse"})
        first = _first_event(sub)
        assert first is not None and len(first.events) == 1
        sub.request(5)  # within the idle time: events are owed again
        # Owed events keep it open past the idle time: keepalives (empty responses) arrive.
        deadline = time.monotonic() + IDLE * 4
        while time.monotonic() < deadline:
            response = sub.next(timeout=IDLE * 20)
            assert response is not None, f"closed: {sub.error}"
            assert not response.events and response.pending_num_requested == 5
        org.create(JOB, {"bpats__Job_Title__c": "Second"})
        while True:  # a keepalive may be in flight before the event
            response = sub.next()
            assert response is not None
            if response.events:
                break
        assert len(response.events) == 1
    finally:
        sub.close()
