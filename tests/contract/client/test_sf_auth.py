"""Auth flows, the shared token cache, single-flight re-authentication, transport errors, and
that no secret leaks into reprs, logs or exceptions."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import jwt
import pytest
import redis
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from responses import matchers, registries
from sf_fakes import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_2,
    BASE,
    CLIENT_SECRET,
    INSTANCE,
    LIMIT_HEADERS,
    LOGIN_URL,
    PASSWORD,
    SECURITY_TOKEN,
    TOKEN_BODY,
    TOKEN_URL,
    bearer,
    expect_login,
    settings,
)

from ats_gateway.salesforce import (
    AuthenticationFailed,
    RequestLimitExceeded,
    SalesforceClient,
    SessionExpired,
    Token,
    Unavailable,
)

CONTACT = "003D000000IqhSLIAZ"
RECORD = {"attributes": {"type": "Contact"}, "Id": CONTACT, "LastName": "Smith"}
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def _get(rsps, status=200, body=RECORD, token=ACCESS_TOKEN):
    return rsps.add(
        "GET",
        f"{BASE}/sobjects/Contact/{CONTACT}",
        json=body,
        status=status,
        headers=LIMIT_HEADERS,
        match=[bearer(token)],
    )


# --------------------------------------------------------------------------- flows


def test_password_flow_and_a_token_shared_by_every_client(sf_redis, rsps):
    login = expect_login(rsps)
    _get(rsps)
    _get(rsps)
    first = SalesforceClient(settings(), sf_redis)
    second = SalesforceClient(settings(), sf_redis)  # another process, same Redis
    assert first.get("Contact", CONTACT)["Id"] == CONTACT
    assert second.get("Contact", CONTACT)["Id"] == CONTACT
    assert login.call_count == 1
    token = second.auth.cached()
    assert token.instance_url == INSTANCE and token.org_id == "00D50000000IZ3ZEAW"


def test_client_credentials_flow(sf_redis, rsps):
    rsps.post(
        "https://acme.my.salesforce.com/services/oauth2/token",
        json={**TOKEN_BODY, "scope": "api"},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": "3MVG9-consumer-key",
                    "client_secret": CLIENT_SECRET,
                }
            )
        ],
    )
    client = SalesforceClient(
        settings(flow="client_credentials", login_url="https://acme.my.salesforce.com"), sf_redis
    )
    assert client.auth.token().access_token == ACCESS_TOKEN


def test_refresh_token_flow(sf_redis, rsps):
    rsps.post(
        "https://test.salesforce.com/services/oauth2/token",
        json=TOKEN_BODY,
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "client_id": "3MVG9-consumer-key",
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": "5Aep861-refresh",
                }
            )
        ],
    )
    client = SalesforceClient(
        settings(
            flow="refresh_token",
            login_url="https://test.salesforce.com",
            refresh_token="5Aep861-refresh",
        ),
        sf_redis,
    )
    assert client.auth.token().instance_url == INSTANCE


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


@pytest.mark.parametrize("source", ["pem", "file"])
def test_jwt_bearer_flow(sf_redis, rsps, rsa_key, tmp_path, source):
    pem, public = rsa_key
    seen = {}

    def assertion_matcher(request):
        form = parse_qs(request.body)
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return False, "wrong grant_type"
        claims = jwt.decode(form["assertion"][0], public, algorithms=["RS256"], audience=LOGIN_URL)
        seen.update(claims)
        return True, ""

    # JWT success has no refresh_token, signature or issued_at (wire shapes 1a)
    rsps.post(
        TOKEN_URL,
        json={
            "access_token": ACCESS_TOKEN,
            "scope": "web api",
            "instance_url": INSTANCE,
            "id": "https://na15.salesforce.com/id/00Di0000000icUB/0DFi00000008UYO",
            "token_type": "Bearer",
        },
        match=[assertion_matcher],
    )
    if source == "pem":
        conf = settings(flow="jwt", private_key=pem)
    else:
        path = tmp_path / "server.key"
        path.write_text(pem)
        conf = settings(flow="jwt", private_key_file=str(path))
    token = SalesforceClient(conf, sf_redis).auth.token()
    assert token.org_id == "00Di0000000icUB"
    assert seen["iss"] == "3MVG9-consumer-key"
    assert seen["sub"] == "portal@asymbl.example"
    assert seen["aud"] == LOGIN_URL
    assert seen["exp"] > 0


@pytest.mark.parametrize(
    "body",
    [
        {"error": "invalid_grant", "error_description": "authentication failure"},
        {"error": "invalid_client_id", "error_description": "client identifier invalid"},
    ],
)
def test_refused_credentials_are_authentication_failed(sf_redis, rsps, body):
    rsps.post(TOKEN_URL, json=body, status=400)
    client = SalesforceClient(settings(), sf_redis)
    with pytest.raises(AuthenticationFailed) as info:
        client.get("Contact", CONTACT)
    assert info.value.error_code == body["error"]
    status = client.status()
    assert status["authenticated"] is False
    assert status["auth_error"]["error_code"] == body["error"]
    assert status["auth_error"]["type"] == "AuthenticationFailed"


# --------------------------------------------------------------------------- 401 -> re-auth


def test_expired_session_reauthenticates_once_and_replays(sf_redis):
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=registries.OrderedRegistry
    ) as rsps:
        expect_login(rsps)
        _get(rsps, status=401, body=INVALID_SESSION)
        expect_login(rsps, token=ACCESS_TOKEN_2)
        _get(rsps, token=ACCESS_TOKEN_2)
        client = SalesforceClient(settings(), sf_redis)
        assert client.get("Contact", CONTACT)["LastName"] == "Smith"
        assert client.auth.cached().access_token == ACCESS_TOKEN_2


def test_a_second_401_is_not_retried_again(sf_redis):
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=registries.OrderedRegistry
    ) as rsps:
        expect_login(rsps)
        _get(rsps, status=401, body=INVALID_SESSION)
        expect_login(rsps, token=ACCESS_TOKEN_2)
        _get(rsps, status=401, body=INVALID_SESSION, token=ACCESS_TOKEN_2)
        client = SalesforceClient(settings(), sf_redis)
        with pytest.raises(SessionExpired):
            client.get("Contact", CONTACT)


def test_token_expiring_mid_run_reauthenticates_once_across_8_threads(
    sf_redis, sf_redis_server, rsps
):
    """8 threads share a cached token that the org has expired: every call gets a 401, exactly
    one of them logs in again (Redis lock), and all calls succeed with the new token."""
    # the cache key of this connection's identity, as the client computes it
    key = SalesforceClient(settings(), sf_redis).auth.key
    assert key.startswith("test:sf:token:job_portal:")
    sf_redis.set(key, Token(ACCESS_TOKEN, INSTANCE, TOKEN_BODY["id"], 0.0).dumps())
    login = expect_login(rsps, token=ACCESS_TOKEN_2)
    stale = _get(rsps, status=401, body=INVALID_SESSION, token=ACCESS_TOKEN)
    fresh = _get(rsps, token=ACCESS_TOKEN_2)
    barrier = threading.Barrier(8)
    # one Redis connection and one client per thread, as separate processes would have
    clients = [
        SalesforceClient(settings(), redis.Redis.from_url(sf_redis_server.url)) for _ in range(8)
    ]

    def work(client: SalesforceClient) -> list[str]:
        barrier.wait()
        return [client.get("Contact", CONTACT)["Id"] for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, clients))
    assert results == [[CONTACT] * 3] * 8
    assert login.call_count == 1
    assert fresh.call_count == 24
    assert 1 <= stale.call_count <= 8
    assert sum(c.auth.logins for c in clients) == 1


# --------------------------------------------------------------------------- transport errors


def test_connection_timeout_is_unavailable(sf, rsps):
    rsps.add("GET", f"{BASE}/sobjects/Contact/{CONTACT}", body=requests.ConnectTimeout("slow"))
    with pytest.raises(Unavailable) as info:
        sf.get("Contact", CONTACT)
    assert info.value.retryable


def test_connection_refused_is_unavailable(sf, rsps):
    rsps.add("GET", f"{BASE}/limits", body=requests.ConnectionError("refused"))
    with pytest.raises(Unavailable):
        sf.limits()


def test_server_error_is_unavailable(sf, rsps):
    rsps.add("GET", f"{BASE}/limits", status=503, body="<html>Maintenance</html>")
    with pytest.raises(Unavailable) as info:
        sf.limits()
    assert info.value.status == 503


def test_default_timeouts_are_sent_on_every_call(sf, rsps):
    seen = []

    def capture(request):
        seen.append(request.req_kwargs["timeout"])
        return True, ""

    rsps.add("GET", f"{BASE}/limits", json={}, match=[capture])
    sf.limits()
    assert seen == [(5.0, 30.0)]


def test_request_limit_exceeded_marks_the_budget(sf, rsps):
    rsps.add(
        "GET",
        f"{BASE}/limits",
        status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        headers={"Sforce-Limit-Info": "api-usage=15000/15000"},
    )
    with pytest.raises(RequestLimitExceeded) as info:
        sf.limits()
    assert info.value.retryable
    snapshot = sf.budget().snapshot()
    assert snapshot.exhausted and snapshot.remaining == 0
    assert sf.may_spend() is False


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_reprs_logs_or_exceptions(sf_redis, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, SECURITY_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_2]
    expect_login(rsps)
    _get(rsps, status=401, body=INVALID_SESSION)
    rsps.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "authentication failure"},
    )
    conf = settings()
    client = SalesforceClient(conf, sf_redis)
    with pytest.raises(AuthenticationFailed) as info:
        client.get("Contact", CONTACT)
    texts = [
        repr(conf),
        str(conf),
        repr(client),
        repr(client.auth),
        repr(client.auth.cached()),
        str(info.value),
        repr(info.value),
        "".join(traceback.format_exception(info.value)),
        caplog.text,
        json.dumps(client.status()),
    ]
    token = Token(ACCESS_TOKEN, INSTANCE, TOKEN_BODY["id"], 0.0)
    texts.append(repr(token))
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked into {text[:80]!r}"
    assert "portal@asymbl.example" in repr(conf)  # reprs stay useful


def test_an_unreachable_token_cache_is_unavailable(rsps):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from ats_gateway.embedded import free_port

    dead = redis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    client = SalesforceClient(settings(), dead)
    with pytest.raises(Unavailable, match="token cache"):
        client.get("Contact", CONTACT)
    assert client.status()["authenticated"] is None


def test_token_cache_is_per_identity_not_per_connection_name(sf_redis):
    """Re-pointing a connection at another user must not reuse the old user's token."""
    first = SalesforceClient(settings(), sf_redis)
    other_user = SalesforceClient(
        dataclasses.replace(settings(), username="other@example.com"), sf_redis
    )
    assert first.auth.key != other_user.auth.key
    assert first.auth.lock_key != other_user.auth.lock_key
