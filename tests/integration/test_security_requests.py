"""Request limits (413, 415, JSON depth, header size) and browser-submit abuse protection."""

from __future__ import annotations

import io
import time
import uuid

import pytest
from flask import Blueprint, g, request

from ats_gateway import create_app
from ats_gateway.security import (
    PUBLISHABLE,
    SECRET,
    accepts,
    enforce_browser_submission,
    issue_form_token,
    key_store,
    public,
    require_scope,
    set_captcha_verifier,
)

ORIGIN = "https://apply.example.test"
MAX_BODY = 2048


def make_blueprint() -> Blueprint:
    bp = Blueprint("req_test", __name__)

    @bp.post("/r/apply")
    @require_scope("applications:write", accepts=("application/json", "multipart/form-data"))
    def apply():
        raw = request.get_json() if request.is_json else request.form.to_dict()
        data = enforce_browser_submission(raw)
        return {"fields": sorted(data)}, 202

    @bp.post("/r/json")
    @require_scope("jobs:read")
    def json_only():
        return {"got": request.get_json()}

    @bp.post("/r/public")
    @public(budget="submit")
    def public_post():
        return {"got": request.get_json()}

    @bp.post("/r/text-above")
    @accepts("text/plain")
    @require_scope("jobs:read")
    def text_above():
        return {"got": request.get_data(as_text=True)}

    @bp.post("/r/text-below")
    @public()
    @accepts("text/plain")
    def text_below():
        return {"got": request.get_data(as_text=True)}

    @bp.post("/r/undeclared")
    def undeclared():
        return {"got": request.get_json()}

    return bp


def build_app(settings):
    app = create_app(settings)
    app.register_blueprint(make_blueprint())
    return app


@pytest.fixture(scope="module")
def req_app(base_settings):
    return build_app(
        base_settings.replace(
            max_body_bytes=MAX_BODY,
            max_json_depth=8,
            max_header_bytes=4096,
            rate_limit_ip_submit="10000/minute",
            rate_limit_ip_read="10000/minute",
        )
    )


@pytest.fixture
def http(req_app):
    client = req_app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return client


@pytest.fixture(scope="module")
def pk(req_app):
    return key_store(req_app).create(
        kind=PUBLISHABLE, name="career site", scopes=["applications:write"], origins=[ORIGIN]
    )


@pytest.fixture(scope="module")
def sk(req_app):
    return key_store(req_app).create(
        kind=SECRET, name="job board", scopes=["applications:write", "jobs:read"]
    )


def browser(plaintext):
    return {"Authorization": f"Bearer {plaintext}", "Origin": ORIGIN}


def server(plaintext):
    return {"Authorization": f"Bearer {plaintext}"}


def assert_problem(response, status, type_=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    if type_:
        assert response.json["type"] == type_


def minted(app, key, *, age: float) -> str:
    """A form token issued `age` seconds ago for `key` (as if the page had been open)."""
    with app.test_request_context():
        g.api_key = key
        return issue_form_token(issued_at=time.time() - age)


# ---------------------------------------------------------------------------- request limits


def test_declared_body_too_large_is_413(http, sk):
    body = b'{"a": "' + b"x" * MAX_BODY + b'"}'
    response = http.post(
        "/r/json", data=body, content_type="application/json", headers=server(sk[1])
    )
    assert_problem(response, 413, "/problems/payload-too-large")


@pytest.mark.parametrize("path", ["/r/json", "/r/undeclared"])
def test_chunked_body_too_large_is_413(http, sk, path):
    body = b'{"a": "' + b"x" * (MAX_BODY * 2) + b'"}'
    response = http.post(
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**server(sk[1]), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413, "/problems/payload-too-large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_unaccepted_content_type_is_415(http, sk, content_type):
    response = http.post("/r/json", data="a=1", content_type=content_type, headers=server(sk[1]))
    assert_problem(response, 415, "/problems/unsupported-media-type")
    assert response.headers["Accept"] == "application/json"
    assert response.json["accepted"] == ["application/json"]


@pytest.mark.parametrize("path", ["/r/text-above", "/r/text-below"])
def test_accepts_decorator_in_either_order(http, sk, path):
    ok = http.post(path, data="hello", content_type="text/plain", headers=server(sk[1]))
    assert ok.status_code == 200
    assert ok.json["got"] == "hello"
    refused = http.post(path, json={"a": 1}, headers=server(sk[1]))
    assert_problem(refused, 415)
    assert refused.headers["Accept"] == "text/plain"


def test_multipart_is_accepted_where_declared(http, sk):
    response = http.post(
        "/r/apply",
        data={"first_name": "Ada", "resume": (io.BytesIO(b"%PDF-1.4"), "cv.pdf")},
        content_type="multipart/form-data",
        headers=server(sk[1]),
    )
    assert response.status_code == 202
    assert response.json["fields"] == ["first_name"]


@pytest.mark.parametrize("path", ["/r/json", "/r/public", "/r/undeclared"])
def test_too_deep_json_is_400_before_parsing(http, sk, path):
    small = "[" * 9 + "]" * 9
    response = http.post(path, data=small, content_type="application/json", headers=server(sk[1]))
    assert_problem(response, 400, "/problems/bad-request")
    assert response.json["reason"] == "json_too_deep"
    ok = "[" * 8 + "]" * 8
    response = http.post(path, data=ok, content_type="application/json", headers=server(sk[1]))
    assert response.status_code == 200


def test_json_deep_enough_to_crash_a_parser_is_400(base_settings):
    # 100,000 levels would end in RecursionError (a 500) inside json.loads
    app = build_app(base_settings)
    body = "[" * 100_000 + "]" * 100_000
    response = app.test_client().post("/r/undeclared", data=body, content_type="application/json")
    assert_problem(response, 400, "/problems/bad-request")
    assert response.json["reason"] == "json_too_deep"


def test_chunked_body_within_the_limit_arrives_whole(http, sk):
    body = b'{"a": "' + b"x" * (MAX_BODY - 20) + b'"}'
    response = http.post(
        "/r/json",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**server(sk[1]), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    assert response.json["got"]["a"] == "x" * (MAX_BODY - 20)


def test_malformed_json_is_400(http, sk):
    response = http.post(
        "/r/json", data='{"a": ', content_type="application/json", headers=server(sk[1])
    )
    assert_problem(response, 400, "/problems/bad-request")
    assert response.json["reason"] == "invalid_json"


def test_oversized_headers_are_431(http, sk):
    response = http.get("/healthz", headers={"X-Padding": "x" * 5000})
    assert_problem(response, 431, "/problems/request-header-fields-too-large")
    assert http.get("/healthz", headers={"X-Padding": "x" * 100}).status_code == 200


def test_limits_come_before_authentication(http):
    response = http.post("/r/json", data="x", content_type="text/plain")
    assert_problem(response, 415)


# ---------------------------------------------------------------------------- abuse protection


def test_form_token_endpoint_serves_the_rules(http, pk, req_app):
    response = http.get("/v1/form-token", headers=browser(pk[1]))
    assert response.status_code == 200
    body = response.json
    assert body["honeypot_field"] == "homepage"
    assert body["min_fill_seconds"] == req_app.config["SETTINGS"].form_min_fill_seconds
    assert body["form_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_human_paced_browser_submit_is_accepted(http, pk, req_app):
    token = minted(req_app, pk[0], age=10)
    response = http.post(
        "/r/apply",
        json={"first_name": "Ada", "homepage": "", "form_token": token},
        headers=browser(pk[1]),
    )
    assert response.status_code == 202
    assert response.json["fields"] == ["first_name"]  # anti-abuse fields are stripped


def test_token_in_header_works_too(http, pk, req_app):
    token = minted(req_app, pk[0], age=10)
    response = http.post(
        "/r/apply", json={"first_name": "Ada"}, headers={**browser(pk[1]), "X-Form-Token": token}
    )
    assert response.status_code == 202


def test_honeypot_filled_is_rejected(http, pk, req_app):
    token = minted(req_app, pk[0], age=10)
    response = http.post(
        "/r/apply",
        json={"first_name": "Bot", "homepage": "http://spam.example", "form_token": token},
        headers=browser(pk[1]),
    )
    assert_problem(response, 400, "/problems/submission-rejected")
    assert response.json["reason"] == "honeypot"


def test_form_sent_faster_than_the_minimum_fill_time_is_rejected(http, pk):
    token = http.get("/v1/form-token", headers=browser(pk[1])).json["form_token"]
    response = http.post(
        "/r/apply", json={"first_name": "Bot", "form_token": token}, headers=browser(pk[1])
    )
    assert_problem(response, 400, "/problems/submission-rejected")
    assert response.json["reason"] == "too_fast"


def test_missing_forged_foreign_and_expired_tokens_are_rejected(http, pk, req_app):
    other, _ = key_store(req_app).create(
        kind=PUBLISHABLE, name="other site", scopes=["applications:write"], origins=[ORIGIN]
    )
    max_age = req_app.config["SETTINGS"].form_token_max_age
    good = minted(req_app, pk[0], age=10)
    cases = {
        None: "form_token_missing",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"): "form_token_invalid",
        minted(req_app, other, age=10): "form_token_invalid",
        minted(req_app, pk[0], age=max_age + 5): "form_token_expired",
    }
    for token, reason in cases.items():
        body = {"first_name": "X"} | ({"form_token": token} if token else {})
        response = http.post("/r/apply", json=body, headers=browser(pk[1]))
        assert_problem(response, 400, "/problems/submission-rejected")
        assert response.json["reason"] == reason, token


def test_one_token_serves_a_few_resubmits_not_a_campaign(http, pk, req_app):
    token = minted(req_app, pk[0], age=10)
    statuses = [
        http.post(
            "/r/apply", json={"first_name": "X", "form_token": token}, headers=browser(pk[1])
        ).status_code
        for _ in range(7)
    ]
    assert statuses == [202] * 5 + [400] * 2


def test_server_to_server_submits_skip_browser_checks(http, sk):
    response = http.post(
        "/r/apply", json={"first_name": "Ada", "homepage": "x"}, headers=server(sk[1])
    )
    assert response.status_code == 202
    assert response.json["fields"] == ["first_name"]


class ExpectToken:
    """A CAPTCHA verifier plug-in (what a deployment would wire to its CAPTCHA service)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str]] = []

    def verify(self, token, *, remote_ip):
        self.seen.append((token, remote_ip))
        return token == "solved"


def test_captcha_verifier_hook(base_settings):
    app = build_app(base_settings.replace(rate_limit_ip_submit="10000/minute"))
    verifier = ExpectToken()
    set_captcha_verifier(app, verifier)
    key, plaintext = key_store(app).create(
        kind=PUBLISHABLE, name="captcha site", scopes=["applications:write"], origins=[ORIGIN]
    )
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = "10.77.0.1"
    token = minted(app, key, age=10)
    refused = http.post("/r/apply", json={"form_token": token}, headers=browser(plaintext))
    assert_problem(refused, 400, "/problems/submission-rejected")
    assert refused.json["reason"] == "captcha_failed"
    accepted = http.post(
        "/r/apply",
        json={"form_token": token, "captcha_token": "solved", "first_name": "Ada"},
        headers=browser(plaintext),
    )
    assert accepted.status_code == 202
    assert accepted.json["fields"] == ["first_name"]
    assert verifier.seen == [(None, "10.77.0.1"), ("solved", "10.77.0.1")]
