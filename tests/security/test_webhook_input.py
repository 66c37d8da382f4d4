"""[21] hostile input to `POST /v1/webhooks`, against the gateway under gunicorn: answers that
were 500, and webhook URLs the SSRF filter let through (``ipaddress.is_global`` calls them
global). The send-time check of the same rule is in ``tests/webhooks/test_sender_faults.py``.
"""

from __future__ import annotations

import json

import pytest

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
