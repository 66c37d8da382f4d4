"""Hypothesis over every public endpoint with what the review threw at them: nesting depth,
repeated parameters, hostile `Origin` and `Host`, odd bodies. The only rule: never a 5xx, and
every error is problem+json. (schemathesis covers the documented shapes in tests/fuzz.)"""

from __future__ import annotations

import os

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("ATS_GATEWAY_FUZZ_EXAMPLES", "40"))

ENDPOINTS = [
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/facets"),
    ("GET", "/v1/jobs/a0J000000000001AAA"),
    ("GET", "/v1/form-token"),
    ("GET", "/v1/schemas/application"),
    ("GET", "/v1/applications/abc"),
    ("POST", "/v1/applications"),
    ("POST", "/v1/applications/batch"),
    ("GET", "/v1/feedback/IjEi.abc.def"),
    ("POST", "/v1/feedback/IjEi.abc.def"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
PARAMS = ["limit", "sort", "q", "cursor", "fields", "department", "posted_after"]

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
origins = st.one_of(
    st.just("http://a:x"),
    st.just("http://[::1"),
    st.builds(lambda h, p: f"https://{h}:{p}", st.from_regex(r"[a-z]{1,8}", fullmatch=True), text),
    text,
)
hosts = st.one_of(st.just("evil.example.com"), st.from_regex(r"[a-z0-9.:\-]{1,30}", fullmatch=True))
bodies = st.one_of(
    st.integers(1, 6000).map(lambda n: b"[" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=200),
    st.just(b'{"job_id": ["x"], "first_name": {"a": 1}}'),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    query=st.lists(st.tuples(st.sampled_from(PARAMS), text), max_size=6),
    origin=st.one_of(st.none(), origins),
    host=st.one_of(st.none(), hosts),
    body=bodies,
    key=st.sampled_from(["pk", "sk", "none"]),
)
def test_no_hostile_request_gets_a_5xx(security_stack, endpoint, query, origin, host, body, key):
    stack = security_stack
    method, path = endpoint
    headers = {"Content-Type": "application/json", "X-Forwarded-For": "198.18.0.9"}
    if key != "none":
        headers["Authorization"] = f"Bearer {getattr(stack, key)}"
    # As raw UTF-8 bytes: what a hostile client puts on the wire, not what `requests` allows.
    if origin is not None:
        headers["Origin"] = origin.encode()
    if host is not None:
        headers["Host"] = host.encode()
    try:
        r = requests.request(
            method,
            stack.url + path,
            params=query,
            data=body if method == "POST" else None,
            headers=headers,
            timeout=30,
            allow_redirects=False,
        )
    except (requests.exceptions.InvalidHeader, ValueError):
        return  # the client library refused to send it (CR/LF in a header): nothing was sent
    assert r.status_code < 500, (method, path, query, origin, host, body[:80], r.text[:300])
    if r.status_code >= 400:
        assert r.headers.get("Content-Type", "").startswith("application/problem+json"), r.text[
            :200
        ]
