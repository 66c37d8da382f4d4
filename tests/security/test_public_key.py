"""What the publishable key (readable on every career page) may do, cost and learn.

Findings of the adversarial review, each through the real HTTP stack (gunicorn)."""

from __future__ import annotations

import json
import uuid

import pytest


def _job(stack) -> str:
    return stack.job_id


def _candidate(job: str, tag: str) -> dict:
    return {
        "job_id": job,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{tag}@security.example.com",
        "consent": True,
    }


def _browser(stack, ip: str) -> dict[str, str]:
    return stack.auth(stack.pk, Origin=stack.origin, **{"X-Forwarded-For": ip})


def _form_token(stack, ip: str) -> str:
    r = stack.get("/v1/form-token", headers=_browser(stack, ip))
    assert r.status_code == 200, r.text[:300]
    return r.json()["form_token"]


def test_batch_is_for_server_keys_only(security_stack):
    stack = security_stack
    job = _job(stack)
    items = [_candidate(job, uuid.uuid4().hex) for _ in range(3)]
    r = stack.post(
        "/v1/applications/batch",
        json={"applications": items},
        headers=_browser(stack, "198.51.100.2"),
    )
    assert r.status_code == 403, r.text[:300]
    assert "secret" in r.json()["detail"]
    # and a server key may still use it
    r = stack.post(
        "/v1/applications/batch", json={"applications": items}, headers=stack.auth(stack.sk)
    )
    assert r.status_code == 207, r.text[:300]


def test_one_visitor_cannot_drain_the_career_sites_read_budget(security_stack):
    stack = security_stack
    limit = int(stack.settings.rate_limit_key_read.split("/")[0])
    noisy = "203.0.113.7"
    statuses = [
        stack.get("/v1/jobs?limit=1", headers=_browser(stack, noisy)).status_code
        for _ in range(limit + 2)
    ]
    assert 429 in statuses  # the noisy visitor is limited ...
    r = stack.get("/v1/jobs?limit=1", headers=_browser(stack, "203.0.113.8"))
    assert r.status_code == 200, r.text[:300]  # ... and nobody else is


def test_refused_before_validation_spends_no_submit_budget(security_stack):
    stack = security_stack
    ip = "203.0.113.20"
    job = _job(stack)
    limit = int(stack.settings.rate_limit_ip_submit.split("/")[0])
    for _ in range(limit + 2):
        r = stack.post(
            "/v1/applications", json=_candidate(job, uuid.uuid4().hex), headers=_browser(stack, ip)
        )  # no form token: refused before validation
        assert r.status_code == 400, r.text[:300]
    body = {**_candidate(job, uuid.uuid4().hex), "form_token": _form_token(stack, ip)}
    r = stack.post("/v1/applications", json=body, headers=_browser(stack, ip))
    assert r.status_code == 202, r.text[:300]


def test_conflict_tells_a_browser_nothing_but_already_applied(security_stack):
    stack = security_stack
    job = _job(stack)
    tag = uuid.uuid4().hex
    ip = "203.0.113.30"
    first = stack.post(
        "/v1/applications",
        json={**_candidate(job, tag), "form_token": _form_token(stack, ip)},
        headers=_browser(stack, ip),
    )
    assert first.status_code == 202, first.text[:300]
    again = stack.post(
        "/v1/applications",
        json={**_candidate(job, tag), "form_token": _form_token(stack, ip)},
        headers=_browser(stack, ip),
    )
    assert again.status_code == 409, again.text[:300]
    text = again.text
    assert first.json()["id"] not in text
    assert "existing_application" not in again.json()
    assert "salesforce_id" not in text


def test_a_board_reads_only_its_own_applications(security_stack):
    stack = security_stack
    job = _job(stack)
    r = stack.post(
        "/v1/applications", json=_candidate(job, uuid.uuid4().hex), headers=stack.auth(stack.sk)
    )
    assert r.status_code == 202, r.text[:300]
    application_id = r.json()["id"]
    own = stack.get(f"/v1/applications/{application_id}", headers=stack.auth(stack.sk))
    assert own.status_code == 200
    other = stack.get(f"/v1/applications/{application_id}", headers=stack.auth(stack.sk_other))
    assert other.status_code == 404, other.text[:300]
    assert other.json() == {**other.json(), "status": 404}
    assert "delivered" not in other.text and "queued" not in other.text
    # the operator (admin) still sees everything
    admin = stack.get(f"/v1/applications/{application_id}", headers=stack.auth(stack.operator))
    assert admin.status_code == 200


@pytest.mark.parametrize("field_count", [550])
def test_unknown_fields_answer_a_bounded_error(security_stack, field_count):
    stack = security_stack
    junk = {f"j{i}": "x" for i in range(field_count)}
    items = [{**_candidate("a0000000000000AAA", str(i)), **junk} for i in range(1000)]
    payload = json.dumps({"applications": items}).encode()
    assert 7_000_000 < len(payload) < 8_000_000
    r = stack.post(
        "/v1/applications/batch",
        data=payload,
        headers=stack.auth(stack.sk, **{"Content-Type": "application/json"}),
        timeout=60,
    )
    assert r.status_code in (207, 422), r.text[:300]
    assert len(r.content) < 1_000_000, len(r.content)
