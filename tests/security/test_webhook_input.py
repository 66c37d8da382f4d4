"""[21] hostile input to `POST /v1/webhooks`, against the gateway under gunicorn: answers that
were 500, and webhook URLs the SSRF filter let through (``ipaddress.is_global`` calls them
global). The send-time check of the same rule is in ``tests/webhooks/test_sender_faults.py``.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ats_gateway.security import KeyStore

SSRF_URLS = [
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254 (the metadata service)
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "https://[64:ff9b:1::a00:1]/hook",  # local-use NAT64 prefix (RFC 8215), 10.0.0.1
    "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::]/hook",  # 6to4 of 169.254.169.254
    "https://[::127.0.0.1]/hook",  # IPv4-compatible
    "https://[::a9fe:a9fe]/hook",  # IPv4-compatible
    "https://[::ffff:0:7f00:1]/hook",  # SIIT (IPv4-translated)
    "https://[fec0::1]/hook",  # site-local
    "https://[ff02::1]/hook",  # multicast
    "https://224.0.0.1/hook",  # multicast
]


@pytest.fixture(scope="module")
def manager(security_stack) -> dict[str, str]:
    _, plain = KeyStore(security_stack.redis).create(
        kind="secret", name="webhook attacker", scopes=["webhooks:manage"]
    )
    return security_stack.auth(plain, **{"Content-Type": "application/json"})


def _post(security_stack, headers, raw: str):
    return security_stack.post("/v1/webhooks", data=raw.encode(), headers=headers)


def _assert_422(response, field: str) -> dict:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    error = response.json()["errors"][0]
    assert error["field"] == field
    return error


def test_a_lone_surrogate_in_the_url_is_422_not_500(security_stack, manager):
    # the JSON escape reaches the view as a lone surrogate (not UTF-8 encodable)
    response = _post(security_stack, manager, '{"url": "https://8.8.8.8/\\ud800"}')
    error = _assert_422(response, "url")
    assert error["code"] == "invalid_url"


@pytest.mark.parametrize(
    "events", [[["application.delivered"]], [{"type": "application.delivered"}], [1]]
)
def test_nested_or_non_string_events_are_422_not_500(security_stack, manager, events):
    body = json.dumps({"url": "https://8.8.8.8/hook", "events": events})
    error = _assert_422(_post(security_stack, manager, body), "events")
    assert error["code"] == "invalid_type"


def test_addresses_that_embed_or_are_non_public_are_refused(security_stack, manager):
    for url in SSRF_URLS:
        response = _post(security_stack, manager, json.dumps({"url": url}))
        error = _assert_422(response, "url")
        assert error["code"] == "private_address", url
    # a public address is still accepted (the rule refuses the forms, not IPv6)
    response = _post(security_stack, manager, json.dumps({"url": "https://[2606:4700::1111]/h"}))
    assert response.status_code == 201, response.text
    # [21] the only answer carrying the whsec_ secret: no cache may keep it
    assert response.json()["secret"].startswith("whsec_")
    assert response.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- hypothesis over the body

EXAMPLES = int(os.environ.get("ATS_GATEWAY_FUZZ_EXAMPLES", "40"))
# IP literals only: a host name would make the gateway ask DNS (no test needs the internet)
IP_HOSTS = st.sampled_from(
    ["8.8.8.8", "[2606:4700::1111]", "[64:ff9b::a9fe:a9fe]", "[::ffff:0:7f00:1]", "10.0.0.1"]
)
ANY_TEXT = st.text(max_size=30)  # lone surrogates included
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
URLS = st.one_of(
    ANY_TEXT,
    st.builds(lambda h, p: f"https://{h}/{p}", IP_HOSTS, ANY_TEXT),
    JSON_VALUES,
)
EVENTS = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["application.delivered", "job.closed"]) | ANY_TEXT, max_size=3),
    JSON_VALUES,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(url=URLS, events=EVENTS, extra=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2))
def test_no_webhook_registration_body_gets_a_5xx(security_stack, manager, url, events, extra):
    body = {**extra, "url": url}
    if events is not None:
        body["events"] = events
    response = _post(security_stack, manager, json.dumps(body))  # ensure_ascii: \ud800 escapes
    assert response.status_code < 500, (body, response.text[:300])
    if response.status_code == 201:
        security_stack.redis.delete(  # keep under the cap of 10 for the next examples
            *security_stack.redis.keys("ats-gateway:webhooks:*") or ["-"]
        )
    else:
        assert response.headers["Content-Type"].startswith("application/problem+json")
