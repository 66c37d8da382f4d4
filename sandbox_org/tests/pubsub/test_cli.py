"""``python -m sandbox_org`` serves the Pub/Sub API beside REST and says where."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import grpc
import pytest

from sandbox_org.__main__ import parser, pubsub_port
from sandbox_org.ids import ORG_ID
from sandbox_org.pubsub.proto import pubsub_api_pb2 as pb2
from sandbox_org.pubsub.proto import pubsub_api_pb2_grpc as pb2_grpc

from .conftest import JOBS, token_for


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "8900"], 8901),
        (["--port", "0"], 0),
        (["--port", "8900", "--pubsub-port", "7443"], 7443),
        (["--port", "8900", "--no-pubsub"], None),
    ],
)
def test_pubsub_port_defaults_to_the_next_port(argv, expected):
    assert pubsub_port(parser().parse_args(argv)) == expected


def test_the_process_serves_pubsub_on_the_announced_port():
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox_org", "--port", "0", "--pubsub-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = target = None
        deadline = time.monotonic() + 60
        while target is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the sandbox exited before announcing its ports"
            if m := re.search(r"listening on (http://\S+)", line):
                url = m.group(1)
            if m := re.search(r"pub/sub api: (\S+) \(grpc\)", line):
                target = m.group(1)
        assert url and target
        with grpc.insecure_channel(target) as channel:
            stub = pb2_grpc.PubSubStub(channel)
            md = (("accesstoken", token_for(url)), ("instanceurl", url), ("tenantid", ORG_ID))
            info = stub.GetTopic(pb2.TopicRequest(topic_name=JOBS), metadata=md, timeout=10)
        assert info.topic_name == JOBS and info.schema_id
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_taken_port_is_an_error_not_a_shared_port(org):
    from sandbox_org.pubsub.service import start_pubsub

    with pytest.raises(OSError, match="cannot bind"):
        start_pubsub(org.sandbox, port=org.handle.pubsub_port)
