"""Acceptance: a Pub/Sub API client from PyPI, unmodified, against the sandbox org.

pysfpubsub 0.1.2 (github bensnyde/pysfpubsub; Salesforce's Python quick-start logic) logs in
with the partner SOAP ``login()``, calls GetTopic / GetSchema over TLS, subscribes with its
semaphore-driven FetchRequests and decodes payloads with the ``avro`` package (not fastavro,
which the sandbox encodes with). Its only configuration point for trust is the module-level
``secure_channel_credentials`` (built from certifi at import): the test points it at the
sandbox's self-signed certificate instead of the public CAs (and ``REQUESTS_CA_BUNDLE`` for its
https login). Nothing else is replaced.
"""

from __future__ import annotations

import threading

import grpc
import pytest
import requests

from sandbox_org import DEMO_CREDENTIALS, create_app
from sandbox_org.server import start_in_thread

pysfpubsub = pytest.importorskip("pysfpubsub.pubsub")

JOBS = "/data/bpats__Job__ChangeEvent"


class Received(Exception):
    pass


def test_pysfpubsub_receives_and_decodes_a_job_change(monkeypatch):
    handle = start_in_thread(create_app(), tls=True, pubsub_port=0, pubsub_keepalive=0.5)
    try:
        monkeypatch.setattr(
            pysfpubsub,
            "secure_channel_credentials",
            grpc.ssl_channel_credentials(handle.cert_path.read_bytes()),
        )
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(handle.cert_path))  # its SOAP login
        creds = DEMO_CREDENTIALS["admin"]
        client = pysfpubsub.Client(
            url=handle.url,
            username=creds["username"],
            password=creds["password"] + creds["security_token"],
            grpc_host="localhost",
            grpc_port=handle.pubsub_port,
        )
        client.auth()  # SOAP login against the sandbox
        topic = client.get_topic(JOBS)
        assert topic.can_subscribe

        received: list[dict] = []
        subscribed = threading.Event()

        def callback(response, c):
            subscribed.set()
            for event in response.events:
                schema = c.get_schema_json(event.event.schema_id)
                received.append(c.decode(schema, event.event.payload))
            if received:
                raise Received
            if response.pending_num_requested == 0:
                c.release_subscription_semaphore()

        errors: list[BaseException] = []

        def run():
            try:
                client.subscribe(JOBS, "LATEST", b"", 5, callback)
            except Received:
                pass
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert subscribed.wait(10), errors  # the first (keepalive) response arrived

        session = requests.Session()
        session.verify = str(handle.cert_path)
        session.headers["Authorization"] = f"Bearer {client.session_id}"
        r = session.post(
            f"{handle.url}/services/data/v62.0/sobjects/bpats__Job__c",
            json={"bpats__Job_Title__c": "Third party"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        thread.join(10)
        assert not errors, errors
        (event,) = received
        assert event["ChangeEventHeader"]["changeType"] == "CREATE"
        assert event["ChangeEventHeader"]["recordIds"] == [r.json()["id"]]
        assert event["ChangeEventHeader"]["entityName"] == "bpats__Job__c"
        assert event["bpats__Job_Title__c"] == "Third party"
    finally:
        handle.stop()


def test_soap_login_refuses_a_wrong_password():
    handle = start_in_thread(create_app())
    try:
        r = requests.post(
            f"{handle.url}/services/Soap/u/57.0/",
            data=(
                "<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/' "
                "xmlns:urn='urn:partner.soap.sforce.com'><soapenv:Body><urn:login>"
                "<urn:username>admin@nope.example</urn:username><urn:password>wrong"
                "</urn:password></urn:login></soapenv:Body></soapenv:Envelope>"
            ),
            headers={"content-type": "text/xml", "SOAPAction": "Login"},
            timeout=10,
        )
        assert r.status_code == 500
        assert "<faultcode>sf:INVALID_LOGIN</faultcode>" in r.text
    finally:
        handle.stop()
