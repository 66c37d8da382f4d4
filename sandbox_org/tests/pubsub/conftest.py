"""Fixtures: a fresh sandbox org per test, served over HTTP and its Pub/Sub API over gRPC.

``Subscription`` drives one real ``Subscribe`` call: FetchRequests go in through a queue (so a
test decides when to ask for more), responses are collected by a thread.
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import fastavro
import grpc
import pytest
import requests

from sandbox_org import DEMO_CREDENTIALS, create_app
from sandbox_org.ids import ORG_ID
from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2
from sandbox_org.pubsub.proto import pubsub_api_pb2_grpc as pb2_grpc
from sandbox_org.server import ServerHandle, start_in_thread

VERSION = "62.0"
JOBS = "/data/bpats__Job__ChangeEvent"
APPS = "/data/bpats__Job_Board_Application__ChangeEvent"
ALL = "/data/ChangeEvents"
KEEPALIVE = 0.5


class PubSubOrg:
    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.url = handle.url
        self.sandbox = handle.app.extensions["sandbox"]
        self.token = token_for(self.url)
        self.rest = requests.Session()
        self.rest.headers["Authorization"] = f"Bearer {self.token}"
        self.base = f"{self.url}/services/data/v{VERSION}"
        self.channel = grpc.insecure_channel(handle.pubsub_target)
        self.stub = pb2_grpc.PubSubStub(self.channel)
        self.metadata = (
            ("accesstoken", self.token),
            ("instanceurl", self.url),
            ("tenantid", ORG_ID),
        )
        self._schemas: dict[str, Any] = {}

    # -- REST ---------------------------------------------------------------------------------

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        r = self.rest.post(f"{self.base}/sobjects/{sobject}", json=body, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def update(self, sobject: str, rid: str, body: dict[str, Any]) -> None:
        r = self.rest.patch(f"{self.base}/sobjects/{sobject}/{rid}", json=body, timeout=30)
        assert r.status_code == 204, r.text

    def delete(self, sobject: str, rid: str) -> None:
        r = self.rest.delete(f"{self.base}/sobjects/{sobject}/{rid}", timeout=30)
        assert r.status_code == 204, r.text

    def faults(self, body: dict[str, Any]) -> dict[str, Any]:
        r = requests.post(f"{self.url}/__sandbox__/faults", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def limits(self) -> dict[str, Any]:
        return self.rest.get(f"{self.base}/limits", timeout=30).json()

    # -- Pub/Sub ------------------------------------------------------------------------------

    def schema(self, schema_id: str) -> Any:
        if schema_id not in self._schemas:
            info = self.stub.GetSchema(
                pb2.SchemaRequest(schema_id=schema_id), metadata=self.metadata
            )
            self._schemas[schema_id] = (
                json.loads(info.schema_json),
                fastavro.parse_schema(json.loads(info.schema_json)),
            )
        return self._schemas[schema_id]

    def decode(self, event: Any) -> dict[str, Any]:
        """A ConsumerEvent's payload as a dict, decoded with the writer schema from GetSchema."""
        _, parsed = self.schema(event.event.schema_id)
        return fastavro.schemaless_reader(io.BytesIO(event.event.payload), parsed)

    def field_names(self, event: Any, bitmap: list[str]) -> set[str]:
        """Decode a changedFields/nulledFields bitmap as Salesforce's ChangeEventHeaderUtility."""
        raw, _ = self.schema(event.event.schema_id)
        names = set()
        for entry in bitmap:
            assert entry.startswith("0x"), entry  # no compound fields on these objects
            bits = int(entry[2:], 16)
            names |= {f["name"] for i, f in enumerate(raw["fields"]) if bits >> i & 1}
        return names

    def subscribe(self, topic: str, num_requested: int, **first: Any) -> Subscription:
        return Subscription(self, topic, num_requested, **first)


class Subscription:
    def __init__(self, org: PubSubOrg, topic: str, num_requested: int, **first: Any) -> None:
        self.requests: queue.Queue[Any] = queue.Queue()
        self.responses: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.requests.put(pb2.FetchRequest(topic_name=topic, num_requested=num_requested, **first))
        self.call = org.stub.Subscribe(self._requests(), metadata=org.metadata)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self) -> Iterator[Any]:
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def _read(self) -> None:
        try:
            for resp in self.call:
                self.responses.put(resp)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.responses.put(None)

    def request(self, n: int, topic: str = "") -> None:
        self.requests.put(pb2.FetchRequest(topic_name=topic, num_requested=n))

    def next(self, timeout: float = 10.0) -> Any:
        """The next FetchResponse (None when the call ended); fails the test on timeout."""
        return self.responses.get(timeout=timeout)

    def events(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Collect ``count`` events from non-empty responses."""
        out: list[Any] = []
        while len(out) < count:
            resp = self.next(timeout)
            assert resp is not None, f"call ended: {self.error}"
            out.extend(resp.events)
        return out

    def close(self) -> None:
        self.call.cancel()
        self.requests.put(None)
        self.thread.join(timeout=5)


def token_for(url: str, who: str = "admin") -> str:
    creds = DEMO_CREDENTIALS[who]
    r = requests.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"] + creds["security_token"],
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def error_code(exc: grpc.RpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("error-code", "")


@pytest.fixture
def org() -> Iterator[PubSubOrg]:
    handle = start_in_thread(
        create_app({"faults_enabled": True}), pubsub_port=0, pubsub_keepalive=KEEPALIVE
    )
    o = PubSubOrg(handle)
    try:
        yield o
    finally:
        o.channel.close()
        handle.stop()
