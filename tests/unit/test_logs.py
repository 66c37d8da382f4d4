"""Secrets and candidate data never reach a log line, whatever shape they arrive in."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ats_gateway.logs import configure_logging, redact

SECRETS = [
    "hunter2-password",
    "s3cr3t-client-secret",
    "SECTOKEN123",
    "00D50000000IZ3Z!AQgAQH0Yd9M51BU_rayzAdmZ6NmT3pXZBgzkc3JTwDOGBl8BP2AREOiZzL_A2zg7etH81kTuuQ",
    "sk_live_0123456789abcdefghij",
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl",
    "jane.doe@example.com",
]


@pytest.mark.parametrize(
    "message,args",
    [
        ("token response %s", ({"access_token": SECRETS[3], "instance_url": "https://x"},)),
        ("login %s", ("grant_type=password&username=u&password=hunter2-password",)),
        ("headers %r", ({"Authorization": f"Bearer {SECRETS[3]}"},)),
        ("key used: %s", (SECRETS[4],)),
        ("assertion %s", (SECRETS[5],)),
        ("client_secret=%s security_token=%s", ("s3cr3t-client-secret", "SECTOKEN123")),
        ("applicant %s applied", ("jane.doe@example.com",)),
        ('json body {"password": "hunter2-password"}', ()),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_redacted_in_every_format(message, args, fmt):
    stream = io.StringIO()
    configure_logging(fmt, "INFO", stream)
    try:
        logging.getLogger("ats_gateway.test").info(message, *args)
    finally:
        configure_logging("text", "INFO")
    output = stream.getvalue()
    assert output.strip(), "nothing was logged"
    for secret in SECRETS:
        assert secret not in output
        assert "hunter2" not in output
    if fmt == "json":
        json.loads(output.splitlines()[0])


def test_exception_text_and_extra_fields_are_redacted():
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        try:
            raise ValueError("bad login password=hunter2-password")
        except ValueError:
            logging.getLogger("x").exception("failed", extra={"email": "jane.doe@example.com"})
    finally:
        configure_logging("text", "INFO")
    record = json.loads(stream.getvalue())
    assert "hunter2" not in json.dumps(record)
    assert record["email"] == "[EMAIL]"
    assert "ValueError" in record["exc_info"]


def test_redact_keeps_ordinary_text():
    assert redact("delivered 200 applications in 3 calls") == (
        "delivered 200 applications in 3 calls"
    )


def test_gunicorn_access_log_lines_lose_feed_tokens():
    """gunicorn's access logger has its own handlers; feed URLs carry `?token=` ([16])."""
    configure_logging("text", "INFO", io.StringIO())
    stream = io.StringIO()
    access = logging.getLogger("gunicorn.access")
    handler = logging.StreamHandler(stream)
    access.addHandler(handler)
    try:
        access.info(
            '%(h)s "%(r)s" %(s)s',
            {
                "h": "127.0.0.1",
                "r": "GET /feeds/indeed.xml?token=s3cr3t-feed-key HTTP/1.1",
                "s": 200,
            },
        )
    finally:
        access.removeHandler(handler)
    line = stream.getvalue()
    assert "s3cr3t-feed-key" not in line
    assert "GET /feeds/indeed.xml?token=[REDACTED]" in line
