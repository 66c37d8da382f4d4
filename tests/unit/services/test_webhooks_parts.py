"""Webhook parts without I/O: signatures, the retry budget, the URL rules."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook

from ats_gateway.services.webhooks import max_attempts, signing
from ats_gateway.services.webhooks.egress import RefusedURL, check_url, resolve


def test_signature_matches_the_reference_vector_and_verifies():
    # job-board-formats.md §6, computed with standardwebhooks 1.1.0
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    headers = signing.headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", body, 1674087231)
    assert headers["webhook-signature"] == "v1,AQG81rX2n4rTN1fkXoqILSHO9gAOcwya9dP41rhrQDI="
    fresh = signing.headers(secret, "msg_1", body, time.time())
    assert Webhook(secret).verify(body, fresh) == {"test": 2432232314}


def test_default_retry_budget_covers_at_least_24_hours_even_at_the_jitter_floor():
    attempts = max_attempts(86400, 5, 7200)
    floor = sum(0.5 * min(7200, 5 * 2**n) for n in range(attempts - 1))
    assert floor >= 86400
    assert sum(0.5 * min(7200, 5 * 2**n) for n in range(attempts - 2)) < 86400


@pytest.mark.parametrize(
    ("url", "env", "code"),
    [
        ("http://127.0.0.1:9/x", "production", "scheme_not_allowed"),
        ("http://example.com/x", "test", "scheme_not_allowed"),
        ("https://user:pw@example.com/x", "production", "invalid_url"),
        ("ftp://example.com/x", "production", "invalid_url"),
    ],
)
def test_url_rules(url, env, code):
    with pytest.raises(RefusedURL) as info:
        check_url(url, env)
    assert info.value.code == code


def test_loopback_is_allowed_only_outside_production():
    assert resolve("http://127.0.0.1:9/x", "test").address == "127.0.0.1"
    for url in ("https://127.0.0.1/x", "https://[::1]/x", "https://10.0.0.1/x"):
        with pytest.raises(RefusedURL) as info:
            resolve(url, "production")
        assert info.value.code == "private_address"
