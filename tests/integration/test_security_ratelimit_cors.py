"""Rate limits (fixed windows on the session's Redis) and CORS at the HTTP edge."""

from __future__ import annotations

import time
import uuid

import pytest
from flask import Blueprint, g, request

from ats_gateway import create_app
from ats_gateway.security import PUBLISHABLE, SECRET, key_store, require_scope


def make_blueprint() -> Blueprint:
    bp = Blueprint("rl_test", __name__)

    @bp.get("/rl/jobs")
    @require_scope("jobs:read")
    def jobs():
        return {"key": g.api_key.id}

    @bp.post("/rl/applications")
    @require_scope("applications:write")
    def submit():
        return {"key": g.api_key.id}, 202

    @bp.post("/rl/applications/batch")
    @require_scope("applications:write", cost=lambda: len(request.get_json()["applications"]))
    def submit_batch():
        return {"accepted": len(request.get_json()["applications"])}, 207

    return bp


@pytest.fixture(scope="module")
def rl_app(base_settings):
    app = create_app(
        base_settings.replace(
            rate_limit_ip_read="4/minute",
            rate_limit_ip_submit="2/minute",
            rate_limit_key_read="1000/minute",
            rate_limit_key_submit="1000/minute",
            cors_max_age=321,
        )
    )
    app.register_blueprint(make_blueprint())
    return app


def unique_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 251}.{(n >> 8) % 251}.{(n >> 16) % 251}"


@pytest.fixture
def http(rl_app):
    client = rl_app.test_client()
    client.environ_base["REMOTE_ADDR"] = unique_ip()
    return client


def unique_origin() -> str:
    return f"https://site-{uuid.uuid4().hex[:10]}.example.test"


def new_key(app, kind=SECRET, scopes=("jobs:read",), origins=(), rate_limit=""):
    return key_store(app).create(
        kind=kind, name="t", scopes=scopes, origins=origins, rate_limit=rate_limit
    )


def auth(plaintext, origin=None):
    headers = {"Authorization": f"Bearer {plaintext}"}
    if origin:
        headers["Origin"] = origin
    return headers


# ---------------------------------------------------------------------------- rate limits


def test_per_key_limit_headers_then_429(http, rl_app):
    _, plaintext = new_key(rl_app, rate_limit="3/minute")
    remaining = []
    for _ in range(3):
        response = http.get("/rl/jobs", headers=auth(plaintext))
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert "3;w=60" in response.headers["RateLimit-Policy"]
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
        assert "Retry-After" not in response.headers
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    refused = http.get("/rl/jobs", headers=auth(plaintext))
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "/problems/rate-limited"
    assert refused.json["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_reads_and_submits_have_separate_budgets(http, rl_app):
    _, plaintext = new_key(
        rl_app, scopes=("jobs:read", "applications:write"), rate_limit="1/minute"
    )
    assert http.get("/rl/jobs", headers=auth(plaintext)).status_code == 200
    assert http.get("/rl/jobs", headers=auth(plaintext)).status_code == 429
    assert http.post("/rl/applications", json={}, headers=auth(plaintext)).status_code == 202
    assert http.post("/rl/applications", json={}, headers=auth(plaintext)).status_code == 429


def test_a_batch_costs_its_size(http, rl_app):
    _, plaintext = new_key(rl_app, scopes=("applications:write",), rate_limit="5/minute")

    def batch(size):
        body = {"applications": [{}] * size}
        return http.post("/rl/applications/batch", json=body, headers=auth(plaintext))

    first = batch(3)
    assert first.status_code == 207
    assert first.headers["RateLimit-Remaining"] == "2"
    refused = batch(3)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    # a refused request spends nothing ([15]): the two left are still there
    rest = batch(2)
    assert rest.status_code == 207
    assert rest.headers["RateLimit-Remaining"] == "0"


def test_budget_is_per_key(http, rl_app):
    _, first = new_key(rl_app, rate_limit="1/minute")
    _, second = new_key(rl_app, rate_limit="1/minute")
    assert http.get("/rl/jobs", headers=auth(first)).status_code == 200
    assert http.get("/rl/jobs", headers=auth(first)).status_code == 429
    assert http.get("/rl/jobs", headers=auth(second)).status_code == 200


def test_per_ip_submit_budget_for_browser_keys(http, rl_app):
    origin = unique_origin()
    _, pk = new_key(rl_app, PUBLISHABLE, ("applications:write",), (origin,))
    statuses = [
        http.post("/rl/applications", json={}, headers=auth(pk, origin)).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]
    # another client IP has its own budget
    http.environ_base["REMOTE_ADDR"] = unique_ip()
    assert http.post("/rl/applications", json={}, headers=auth(pk, origin)).status_code == 202


def test_secret_keys_are_not_limited_per_ip(http, rl_app):
    _, sk = new_key(rl_app, scopes=("applications:write",))
    statuses = {
        http.post("/rl/applications", json={}, headers=auth(sk)).status_code for _ in range(5)
    }
    assert statuses == {202}


def test_failed_authentication_counts_against_the_ip(http):
    statuses = [
        http.get("/rl/jobs", headers={"Authorization": "Bearer nope"}).status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 401, 429]


def test_counters_live_in_redis_and_are_shared_between_apps(rl_app, base_settings, redis_client):
    _, plaintext = new_key(rl_app, rate_limit="2/minute")
    other = create_app(base_settings)
    other.register_blueprint(make_blueprint())
    a, b = rl_app.test_client(), other.test_client()
    assert a.get("/rl/jobs", headers=auth(plaintext)).status_code == 200
    assert b.get("/rl/jobs", headers=auth(plaintext)).status_code == 200
    assert a.get("/rl/jobs", headers=auth(plaintext)).status_code == 429
    assert any(b"ats" in k for k in redis_client.scan_iter(match="LIMITS:*", count=1000))


# ---------------------------------------------------------------------------- CORS


def preflight(http, path, origin, method="GET", headers="authorization"):
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_preflight_allowed_for_an_origin_bound_to_an_active_key(http, rl_app):
    origin = unique_origin()
    new_key(rl_app, PUBLISHABLE, ("jobs:read",), (origin,))
    response = preflight(http, "/rl/jobs", origin)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Max-Age"] == "321"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in response.headers.get("Vary", "")
    assert "RateLimit-Limit" not in response.headers  # preflights are not rate limited


def test_preflight_refused_for_unknown_origin_wrong_scope_and_revoked_key(http, rl_app):
    assert "Access-Control-Allow-Origin" not in preflight(http, "/rl/jobs", unique_origin()).headers

    origin = unique_origin()
    key, _ = new_key(rl_app, PUBLISHABLE, ("jobs:read",), (origin,))
    # the origin's key may read jobs but not submit applications
    refused = preflight(http, "/rl/applications", origin, method="POST", headers="content-type")
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Origin" in preflight(http, "/rl/jobs", origin).headers
    key_store(rl_app).revoke(key.id)
    assert "Access-Control-Allow-Origin" not in preflight(http, "/rl/jobs", origin).headers


def test_preflight_for_a_secret_key_origin_is_refused(http, rl_app):
    # secret keys carry no origins; a header that is not allowed is not echoed either
    origin = unique_origin()
    new_key(rl_app, PUBLISHABLE, ("jobs:read",), (origin,))
    response = preflight(http, "/rl/jobs", origin, headers="authorization, x-evil")
    assert "x-evil" not in response.headers["Access-Control-Allow-Headers"].lower()


def test_actual_request_gets_cors_only_for_its_own_bound_origin(http, rl_app):
    origin = unique_origin()
    _, pk = new_key(rl_app, PUBLISHABLE, ("jobs:read",), (origin,))
    response = http.get("/rl/jobs", headers=auth(pk, origin))
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "RateLimit-Remaining" in exposed and "Retry-After" in exposed
    assert "Access-Control-Allow-Credentials" not in response.headers

    # an origin bound to another key: 403 and no CORS header
    other_origin = unique_origin()
    new_key(rl_app, PUBLISHABLE, ("jobs:read",), (other_origin,))
    foreign = http.get("/rl/jobs", headers=auth(pk, other_origin))
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign.headers


def test_secret_key_responses_carry_no_cors(http, rl_app):
    _, sk = new_key(rl_app)
    response = http.get("/rl/jobs", headers=auth(sk, unique_origin()))
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_client_ip_behind_trusted_proxies(base_settings):
    app = create_app(base_settings.replace(trusted_proxy_hops=1, rate_limit_ip_read="1/minute"))
    app.register_blueprint(make_blueprint())
    http = app.test_client()
    first, second = unique_ip(), unique_ip()

    def get(forwarded_for):
        return http.get(
            "/rl/jobs",
            headers={"Authorization": "Bearer nope", "X-Forwarded-For": forwarded_for},
        ).status_code

    # the proxy appends the real client; anything the client put before it is ignored
    assert get(f"203.0.113.9, {first}") == 401
    assert get(f"198.51.100.7, {first}") == 429
    assert get(second) == 401
