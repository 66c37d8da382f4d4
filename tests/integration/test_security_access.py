"""API keys and scopes at the HTTP edge, on the session's real Redis.

A test blueprint has one endpoint per scope; the matrix sends every kind of key to every one.
"""

from __future__ import annotations

import math
import time
import uuid

import pytest
import redis
from flask import Blueprint, g, request
from stack import redis_commands, wait_for

from ats_gateway import create_app
from ats_gateway.extensions import services
from ats_gateway.security import (
    PUBLISHABLE,
    SCOPES,
    SECRET,
    key_store,
    public,
    require_scope,
)
from ats_gateway.security.keys import GENERATION
from ats_gateway.security.ratelimit import RedisCounters

ORIGIN = "https://careers.example.test"

ENDPOINTS = {
    "jobs:read": ("GET", "/t/jobs"),
    "applications:write": ("POST", "/t/applications"),
    "applications:read": ("GET", "/t/applications/1"),
    "feedback:issue": ("POST", "/t/feedback-links"),
    "operator": ("GET", "/t/operator"),
    "webhooks:manage": ("GET", "/t/webhooks"),
    "admin": ("GET", "/t/admin"),
}


def make_test_blueprint() -> Blueprint:
    bp = Blueprint("sec_test", __name__)

    def echo():
        return {"key": g.api_key.id, "kind": g.api_key.kind}

    bp.get("/t/jobs")(require_scope("jobs:read")(lambda: echo()))
    bp.add_url_rule(
        "/t/applications",
        "submit",
        require_scope("applications:write")(lambda: (echo(), 202)),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/t/applications/<int:ref>",
        "application",
        require_scope("applications:read")(lambda ref: {**echo(), "ref": ref}),
    )
    bp.add_url_rule(
        "/t/feedback-links",
        "feedback_link",
        require_scope("feedback:issue")(lambda: (echo(), 201)),
        methods=["POST"],
    )
    bp.add_url_rule("/t/operator", "operator", require_scope("operator")(lambda: echo()))
    bp.add_url_rule("/t/webhooks", "webhooks", require_scope("webhooks:manage")(lambda: echo()))
    bp.add_url_rule("/t/admin", "admin", require_scope("admin")(lambda: echo()))
    bp.add_url_rule(
        "/t/public",
        "public",
        public()(lambda: {"authenticated": getattr(g, "api_key", None) is not None}),
    )
    bp.add_url_rule(
        "/t/echo-json",
        "echo_json",
        require_scope("jobs:read", accepts=["application/json"])(
            lambda: {"got": request.get_json()}
        ),
        methods=["POST"],
    )
    return bp


@pytest.fixture(scope="module")
def sec_app(base_settings):
    app = create_app(
        base_settings.replace(
            rate_limit_ip_read="10000/minute",
            rate_limit_ip_submit="10000/minute",
        )
    )
    app.register_blueprint(make_test_blueprint())
    app.config["TESTING"] = True
    return app


@pytest.fixture
def http(sec_app):
    client = sec_app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.1.{uuid.uuid4().int % 250}"
    return client


@pytest.fixture(scope="module")
def keys(sec_app):
    """One key per scope (secret), one per publishable scope, and an all-browser-scopes pk."""
    store = key_store(sec_app)
    made = {}
    for scope in SCOPES:
        made[("sk", scope)] = store.create(kind=SECRET, name=f"sk {scope}", scopes=[scope])[1]
    for scope in ("jobs:read", "applications:write"):
        made[("pk", scope)] = store.create(
            kind=PUBLISHABLE, name=f"pk {scope}", scopes=[scope], origins=[ORIGIN]
        )[1]
    return made


def call(http, method, path, key=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if method == "POST":
        kwargs.setdefault("json", {})
    return http.open(path, method=method, headers=headers, **kwargs)


MATRIX = [
    (kind, key_scope, endpoint_scope)
    for kind, key_scopes in (("sk", SCOPES), ("pk", ("jobs:read", "applications:write")))
    for key_scope in key_scopes
    for endpoint_scope in SCOPES
]


@pytest.mark.parametrize("kind,key_scope,endpoint_scope", MATRIX)
def test_scope_matrix(http, keys, kind, key_scope, endpoint_scope):
    method, path = ENDPOINTS[endpoint_scope]
    headers = {"Origin": ORIGIN} if kind == "pk" else {}
    response = call(http, method, path, keys[(kind, key_scope)], headers=headers)
    allowed = key_scope == endpoint_scope or key_scope == "admin"
    if allowed:
        assert response.status_code in (200, 201, 202), response.json
        assert response.json["kind"] == (PUBLISHABLE if kind == "pk" else SECRET)
    else:
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert response.json["type"] == "/problems/forbidden"
        assert response.json["required_scope"] == endpoint_scope


@pytest.mark.parametrize("endpoint_scope", SCOPES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer sk_nosuchkey1_" + "x" * 43, "Bearer garbage"],
)
def test_missing_or_unknown_key_is_401_with_challenge(http, endpoint_scope, authorization):
    method, path = ENDPOINTS[endpoint_scope]
    headers = {"Authorization": authorization} if authorization else {}
    response = call(http, method, path, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["type"] == "/problems/unauthorized"


def test_revoked_key_is_401_at_once(http, sec_app):
    store = key_store(sec_app)
    key, plaintext = store.create(kind=SECRET, name="soon revoked", scopes=["jobs:read"])
    assert call(http, "GET", "/t/jobs", plaintext).status_code == 200
    store.revoke(key.id)
    response = call(http, "GET", "/t/jobs", plaintext)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_key_is_read_once_per_process_limits_still_count_every_request(http, sec_app, redis_url):
    """[18] A listing's checks without a round trip each: the key's hash is read once per
    process, the key generation comes from the process's tracked copy (Redis tells it of a
    change), and a read limit with plenty left is spent from counts reserved ahead. Every
    request is still counted, once, in order, and Redis holds at least every count."""
    store = key_store(sec_app)
    key, plaintext = store.create(
        kind=SECRET, name="cached", scopes=["jobs:read"], rate_limit="100000/minute"
    )
    n = 60
    remaining = []
    tracked = services(sec_app).tracked
    tracked.get(GENERATION)  # its first use in this process opens the tracking connection
    wait_for(lambda: tracked.tracking, 10, what="the tracking connection")
    with redis_commands(redis_url) as seen:
        for _ in range(n):
            response = call(http, "GET", "/t/jobs", plaintext)
            assert response.status_code == 200
            remaining.append(int(response.headers["RateLimit-Remaining"]))
        time.sleep(0.2)
    mine = [c for c in seen if any(key.id in part for part in c)]
    assert [c[0].upper() for c in mine].count("HGETALL") == 1
    scripts = [c[0].upper() for c in mine].count("EVALSHA")
    # the first request of the window counts alone, then up to LEASE_MAX at once
    assert 2 <= scripts <= 1 + math.ceil((n - 1) / 2), scripts
    # (commands a script runs show in lower case)
    generation_reads = [c for c in seen if c[0] == "GET" and GENERATION in c[-1]]
    # the key's first lookup reads it with the hash, the tracked copy once: not per request
    assert len(generation_reads) <= 2, generation_reads
    # every request counted once, in order: the limit's remaining falls by one each time
    assert remaining == [100000 - i for i in range(1, n + 1)]
    counters = [k for k in redis.Redis.from_url(redis_url).scan_iter(match=f"LIMITS:*{key.id}*")]
    assert len(counters) == 1
    held = int(redis.Redis.from_url(redis_url).get(counters[0]))
    assert n <= held <= n + RedisCounters.LEASE_MAX


def test_two_limits_of_one_key_reserve_independently(http, sec_app, redis_url):
    """A key under a tight and a loose limit: the tight one counts each request in Redis, the
    loose one is still counted ahead, and neither throws away counts it holds when the other
    needs a round trip (which would spend the loose budget 64 times too fast)."""
    store = key_store(sec_app)
    key, plaintext = store.create(
        kind=SECRET, name="two limits", scopes=["jobs:read"], rate_limit="300/minute;500000/day"
    )
    n = 100
    remaining = []
    for _ in range(n):
        response = call(http, "GET", "/t/jobs", plaintext)
        assert response.status_code == 200
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [300 - i for i in range(1, n + 1)]  # the tighter limit reports
    client = redis.Redis.from_url(redis_url)
    counts = {k.decode(): int(client.get(k)) for k in client.scan_iter(match=f"LIMITS:*{key.id}*")}
    assert len(counts) == 2
    minute = next(v for k, v in counts.items() if "/300/" in k)
    day = next(v for k, v in counts.items() if "/500000/" in k)
    assert minute == n
    assert n <= day <= n + RedisCounters.LEASE_MAX, counts


def test_a_limit_near_its_end_counts_each_request_in_redis(http, sec_app, redis_url):
    """Reserving ahead never lets a window admit more than its limit: with little left, each
    request counts in Redis, and the one past the limit is refused."""
    store = key_store(sec_app)
    key, plaintext = store.create(
        kind=SECRET, name="tight", scopes=["jobs:read"], rate_limit="300/minute"
    )
    codes = [call(http, "GET", "/t/jobs", plaintext).status_code for _ in range(301)]
    assert codes == [200] * 300 + [429]
    counters = [k for k in redis.Redis.from_url(redis_url).scan_iter(match=f"LIMITS:*{key.id}*")]
    assert int(redis.Redis.from_url(redis_url).get(counters[0])) == 301


def test_publishable_key_from_a_foreign_origin_is_403(http, keys):
    key = keys[("pk", "jobs:read")]
    response = call(http, "GET", "/t/jobs", key, headers={"Origin": "https://evil.example.test"})
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert "origin" in response.json["detail"]
    assert "Access-Control-Allow-Origin" not in response.headers
    # the bound origin, also spelled differently, is fine
    ok = call(http, "GET", "/t/jobs", key, headers={"Origin": ORIGIN.upper() + ":443"})
    assert ok.status_code == 200


def test_publishable_key_without_origin_is_accepted(http, keys):
    # a non-browser client can forge any Origin anyway; see the module docstring
    assert call(http, "GET", "/t/jobs", keys[("pk", "jobs:read")]).status_code == 200


def test_view_sees_the_key(http, keys, sec_app):
    response = call(http, "GET", "/t/applications/7", keys[("sk", "applications:read")])
    assert response.status_code == 200
    assert response.json["ref"] == 7
    stored = key_store(sec_app).get(response.json["key"])
    assert stored is not None and "applications:read" in stored.scopes


def test_public_endpoint_needs_no_key(http):
    response = http.get("/t/public")
    assert response.status_code == 200
    assert response.json == {"authenticated": False}


def test_undeclared_endpoints_are_untouched(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers


def test_key_store_unreachable_is_503(base_settings):
    from ats_gateway.embedded import free_port

    app = create_app(base_settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    app.register_blueprint(make_test_blueprint())
    response = app.test_client().get(
        "/t/jobs", headers={"Authorization": "Bearer sk_abcdabcd_" + "x" * 43}
    )
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert app.test_client().get("/readyz").json["checks"]["key_store"]["status"] == "fail"
    # keyless endpoints still need Redis to count: fail closed, as a problem
    public_response = app.test_client().get("/t/public")
    assert public_response.status_code == 503
    assert public_response.mimetype == "application/problem+json"


def test_readyz_names_the_key_store(client):
    body = client.get("/readyz").json
    assert body["checks"]["key_store"]["status"] == "ok"
    assert "active_publishable" in body["checks"]["key_store"]


def test_unknown_scope_in_a_declaration_fails_at_import():
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("jobs:write")
