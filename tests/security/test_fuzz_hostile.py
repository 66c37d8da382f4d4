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
    # [21]: the surfaces [16] and [17] added
    ("GET", "/v1/receipts/IjEi.abc.def"),
    ("GET", "/v1/receipts/%00%1b%0d%0a"),
    ("POST", "/v1/boards/indeed/applications"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/jobs/a0J000000000001AAA/jobposting"),
    ("GET", "/feeds/indeed.xml"),
    ("GET", "/jobs/sitemap.xml"),
]
PARAMS = ["limit", "sort", "q", "cursor", "fields", "department", "posted_after", "token"]

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
    key=st.sampled_from(["pk", "sk", "operator", "none"]),
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


# Indeed Apply past its signature: hypothesis bodies signed with the board's secret, so the
# parser and intake see them (an unsigned body stops at the 401 above).
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
indeed_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "job": st.one_of(
            json_values, st.fixed_dictionaries({}, optional={"jobId": st.one_of(text, json_values)})
        ),
        "applicant": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "fullName": st.one_of(text, json_values),
                    "email": st.one_of(st.emails(), text, json_values),
                    "phoneNumber": st.one_of(text, json_values),
                    "coverletter": st.one_of(text, json_values),
                    "resume": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "file": st.one_of(
                                    json_values,
                                    st.fixed_dictionaries(
                                        {},
                                        optional={
                                            "data": st.one_of(
                                                text,
                                                st.binary(max_size=64).map(
                                                    lambda b: (
                                                        __import__("base64").b64encode(b).decode()
                                                    )
                                                ),
                                            ),
                                            "fileName": text,
                                            "contentType": text,
                                        },
                                    ),
                                )
                            },
                        ),
                    ),
                },
            ),
        ),
    },
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=indeed_bodies, known_job=st.booleans())
def test_no_signed_indeed_apply_body_gets_a_5xx(security_stack, payload, known_job):
    import json

    from ats_gateway.services.applications import indeed

    stack = security_stack
    if known_job and isinstance(payload.get("job"), dict):
        payload["job"]["jobId"] = stack.job_id
    body = json.dumps(payload).encode()
    r = requests.post(
        stack.url + "/v1/boards/indeed/applications",
        data=body,
        headers={
            "Content-Type": "application/json",
            indeed.SIGNATURE_HEADER: indeed.sign(stack.settings.indeed_apply_secret, body),
            "X-Forwarded-For": "198.18.0.10",
        },
        timeout=30,
    )
    assert r.status_code < 500, (payload, r.text[:300])
    if r.status_code >= 400:
        assert r.headers.get("Content-Type", "").startswith("application/problem+json"), r.text[
            :200
        ]


# Resume parsers on hostile bytes ([21]: pypdf and lxml now read them): whatever the bytes,
# a resume is accepted or refused with a reason, never an exception (a 500 at intake).
MAGICS = [b"%PDF-1.7\n", b"PK\x03\x04", b"{\\rt1", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b""]


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(
    magic=st.sampled_from(MAGICS),
    middle=st.binary(max_size=400),
    tokens=st.lists(
        st.sampled_from(
            [
                b"1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n",
                b"2 0 obj << /S /J#61vaScript /JS (x) >> endobj\n",
                b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 9 >>stream\nx\x9c",
                b"xref\n0 3\n0000000000 65535 f \n",
                b"trailer << /Root 1 0 R /Size 3 >>\nstartxref\n9\n%%EOF",
                b"<details open ontoggle=x>",
                b"\\object\\objemb",
                b"<Relationships><Relationship TargetMode='External'/>",
            ]
        ),
        max_size=6,
    ),
)
def test_no_resume_bytes_raise(magic, middle, tokens):
    from ats_gateway.services.applications.resume import ResumeRejected, check_resume

    data = magic + middle + b"".join(tokens)
    try:
        resume = check_resume(
            data, "cv", max_bytes=1_000_000, allowed=("pdf", "doc", "docx", "rtf", "txt")
        )
    except ResumeRejected as exc:
        assert exc.code in {"empty", "unsupported_type", "unsafe_content"}, exc.code
    else:
        assert resume.filename == f"cv.{resume.kind}"
