"""Validation as strict as the org's: what the org would refuse later is refused at intake."""

from __future__ import annotations

import uuid

import pytest


def _job(stack) -> str:
    return stack.job_id


def _submit(stack, **fields):
    body = {
        "job_id": _job(stack),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{uuid.uuid4().hex}@security.example.com",
        "consent": True,
        **fields,
    }
    return stack.post("/v1/applications", json=body, headers=stack.auth(stack.sk))


@pytest.mark.parametrize(
    "email",
    [
        "ada@exämple.com",  # internationalized domain
        "adä@example.com",  # internationalized local part
        "ada@[127.0.0.1]",  # IP literal
        "ada@localhost",  # no dot in the domain
        "ada..l@example.com",
    ],
)
def test_emails_the_org_refuses_are_refused_at_intake(security_stack, email):
    r = _submit(security_stack, email=email)
    assert r.status_code == 422, r.text[:300]
    assert any(e["field"] == "email" for e in r.json()["errors"])


@pytest.mark.parametrize(
    "value", ["Ada\x00", "Ada\x1b[31m", "Ada\r\nBcc: x", "Ada\u202e", "\ud800"]
)
def test_control_characters_in_text_are_refused(security_stack, value):
    r = _submit(security_stack, first_name=value)
    assert r.status_code in (400, 422), r.text[:300]
    if r.status_code == 422:
        assert any(e["field"] == "first_name" for e in r.json()["errors"])


def test_ordinary_unicode_names_still_pass(security_stack):
    r = _submit(security_stack, first_name="Zoë", last_name="Ñúñez-O'Brien")
    assert r.status_code == 202, r.text[:300]
