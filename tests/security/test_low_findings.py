"""The review's low findings: each a small hole, each closed at its root."""

from __future__ import annotations

import uuid

import pytest
import requests
from sandbox_stack import admin_client


def _browser(stack, ip: str) -> dict[str, str]:
    return stack.auth(stack.pk, Origin=stack.origin, **{"X-Forwarded-For": ip})


def test_a_honeypot_sent_as_a_file_part_still_catches_the_bot(security_stack):
    stack = security_stack
    ip = "203.0.113.60"
    token = stack.get("/v1/form-token", headers=_browser(stack, ip)).json()["form_token"]
    fields = {
        "job_id": stack.job_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{uuid.uuid4().hex}@security.example.com",
        "consent": "true",
        "form_token": token,
    }
    r = stack.post(
        "/v1/applications",
        data=fields,
        files={"homepage": ("spam.txt", b"http://spam.example.com")},
        headers=_browser(stack, ip),
    )
    assert r.status_code == 400, r.text[:300]
    assert r.json()["reason"] == "honeypot"


def test_a_draft_holds_only_this_interviews_topics(security_stack, security_sandbox):
    stack = security_stack
    admin = admin_client(security_sandbox.url, stack.redis)
    interview = admin.query_many(
        ["SELECT Id FROM bpats__Interview__c WHERE bpats__Status__c = 'Scheduled' LIMIT 1"]
    )[0][0]
    issued = stack.post(
        f"/v1/interviews/{interview['Id']}/feedback-links",
        json={"interviewer_email": f"i-{uuid.uuid4().hex[:8]}@client.example.com"},
        headers=stack.auth(stack.operator),
    )
    assert issued.status_code == 201, issued.text[:300]
    token = issued.json()["token"]
    r = requests.put(
        f"{stack.url}/v1/feedback/{token}/draft",
        json={"topics": [{"topic_id": "a0Z000000000000AAA", "comments": "not in the template"}]},
        timeout=10,
    )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["errors"][0]["code"] == "unknown_topic"


@pytest.mark.parametrize("field", ["interviewer_email", "job_title", "expires_in"])
def test_feedback_link_issuing_refuses_a_list_for_a_string(security_stack, security_sandbox, field):
    # A guard rather than a red-first test: the issuing input is a strict marshmallow schema
    # since [11]; the review saw a list stringified into the link.
    stack = security_stack
    admin = admin_client(security_sandbox.url, stack.redis)
    interview = admin.query_many(
        ["SELECT Id FROM bpats__Interview__c WHERE bpats__Status__c = 'Scheduled' LIMIT 1"]
    )[0][0]
    body = {"interviewer_email": f"i-{uuid.uuid4().hex[:8]}@client.example.com"}
    body[field] = ["a@client.example.com", "7d"]
    r = stack.post(
        f"/v1/interviews/{interview['Id']}/feedback-links",
        json=body,
        headers=stack.auth(stack.operator),
    )
    assert r.status_code == 422, r.text[:300]
    assert any(e["field"] == field for e in r.json()["errors"])
