"""The pure rules of the sender, table-driven: which addresses a webhook may reach, and how a
``Retry-After`` header is read. (The same rules end to end: tests/security/test_webhook_input.py
and tests/webhooks/test_sender_faults.py.)"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from ats_gateway.services.webhooks.egress import Target, address_allowed
from ats_gateway.services.webhooks.sender import retry_after
from ats_gateway.services.webhooks.transport import (
    Connection,
    DeadlineExceeded,
    SendFailed,
    host_header,
)
from webhooks.harness import Receiver, free_port


@pytest.mark.parametrize(
    "address, allowed",
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("2002:808:808::1", True),  # 6to4 of a public address
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b:1::808:808", False),  # local-use NAT64 prefix: refused whole
        ("2002:7f00:1::", False),
        ("2002:a9fe:a9fe::", False),
        ("::127.0.0.1", False),
        ("::a9fe:a9fe", False),
        ("::ffff:0:7f00:1", False),
        ("::ffff:10.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("fec0::1", False),
        ("ff02::1", False),
        ("ff0e::1", False),  # global-scope multicast
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("fd00::1", False),
        ("::1", False),
    ],
)
def test_address_rule(address, allowed):
    assert address_allowed(ipaddress.ip_address(address)) is allowed


def test_retry_after_reads_seconds_and_http_dates():
    now = 1_800_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after(" 7 ", now) == 7.0
    when = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after(when, now) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert retry_after(past, now) == 0.0
    for junk in (None, "", "soon", "-5", "1.5", "\u0661\u0662"):
        assert retry_after(junk, now) is None


def test_host_header_brackets_ipv6_and_drops_default_ports():
    assert host_header(Target("http", "::1", 8080, "::1", "/")) == "[::1]:8080"
    assert host_header(Target("https", "2606:4700::1111", 443, "2606:4700::1111", "/")) == (
        "[2606:4700::1111]"
    )
    assert host_header(Target("https", "hooks.example.com", 443, "203.0.113.9", "/")) == (
        "hooks.example.com"
    )


def test_a_connection_tries_each_checked_address_in_turn(tmp_path):
    """A dual-stack receiver seen from a host where the first address does not answer: the
    next checked address is tried within the same deadline (a real receiver process)."""
    receiver = Receiver(tmp_path / "r.jsonl").start()  # listens on 127.0.0.1 only
    try:
        target = Target("http", "127.0.0.1", receiver.port, "::1", "/hook", ("127.0.0.1",))
        connection = Connection(target, connect_timeout=2.0)
        answer = connection.post([], b"{}", time.monotonic() + 5)
        connection.close()
        assert answer.status == 200
        assert len(receiver.requests()) == 1
        # with no address answering, the failure is a failed connect, not a hang
        lonely = Target("http", "127.0.0.1", free_port(), "127.0.0.1", "/hook")
        with pytest.raises(SendFailed):
            Connection(lonely, connect_timeout=2.0).post([], b"{}", time.monotonic() + 5)
    finally:
        receiver.stop()


@pytest.mark.timeout(60)
def test_a_receiver_dripping_its_tls_handshake_costs_one_deadline():
    """After the TCP accept, a TLS record header announcing 16 KiB, then a byte every 0.2 s
    (an hour's worth): the attempt ends at its deadline (CPython bounds a whole handshake by
    the socket timeout, which the connection sets to what is left of the deadline). Were it a
    per-read timeout, this test would hang until pytest-timeout fails it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"\x16\x03\x03\x40\x00")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"\x02")
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        target = Target("https", "127.0.0.1", port, "127.0.0.1", "/hook")
        with pytest.raises(DeadlineExceeded):
            Connection(target, connect_timeout=2.0).post([], b"{}", time.monotonic() + 2.0)
    finally:
        stop.set()
        listener.close()
        thread.join(5)
