"""What the gateway writes down and shows: no bearer credential in a log line, operational
detail only for an operator."""

from __future__ import annotations

import uuid


def test_access_log_carries_neither_link_tokens_nor_query_strings(security_stack):
    stack = security_stack
    token = "IjEyMyI." + uuid.uuid4().hex + ".secretpart"
    marker = uuid.uuid4().hex
    stack.get(f"/feedback/{token}")
    stack.get(f"/v1/feedback/{token}")
    stack.get(f"/v1/jobs?q={marker}&limit=1", headers=stack.auth(stack.pk))
    stack.get("/healthz")  # flushes nothing, but gives the log a later line to wait for
    text = stack.log_text()
    assert "/v1/jobs" in text  # the access log is on ...
    assert token not in text  # ... without the link token
    assert uuid.UUID(token.split(".")[1]).hex not in text
    assert marker not in text  # ... and without query strings


def test_readiness_detail_is_for_operators(security_stack):
    stack = security_stack
    public = stack.get("/readyz")
    assert public.status_code in (200, 503)
    body = public.json()
    assert set(body) <= {"status"}, body
    text = public.text
    assert "instance_url" not in text and "127.0.0.1" not in text
    detail = stack.get("/readyz", headers=stack.auth(stack.operator))
    assert "checks" in detail.json()


def test_metrics_are_for_operators_and_whole(security_stack):
    stack = security_stack
    assert stack.get("/metrics").status_code in (401, 403)
    for _ in range(3):
        stack.get("/healthz")
    bogus = __import__("requests").request("BREW", stack.url + "/healthz", timeout=10)
    assert bogus.status_code in (405, 501)
    first = stack.get("/metrics", headers=stack.auth(stack.operator)).text
    second = stack.get("/metrics", headers=stack.auth(stack.operator)).text

    # one view over every gunicorn worker: the same series whichever worker answers
    def series(text: str) -> set[str]:
        return {
            line.split(" ")[0]
            for line in text.splitlines()
            if line.startswith("ats_gateway_http_requests_total")
        }

    assert series(first) == series(second) or series(first) <= series(second)
    assert "BREW" not in first + second
