"""OAuth token endpoint: every grant, success and error shapes (wire-shapes §1), sessions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox_org import DEMO_CREDENTIALS, create_app
from sandbox_org.server import start_in_thread

from .conftest import VERSION, Api, error_of

ADMIN = DEMO_CREDENTIALS["admin"]


def _token(url: str, **params: str) -> requests.Response:
    return requests.post(f"{url}/services/oauth2/token", data=params, timeout=10)


def _password(url: str, creds: dict[str, str], **over: str) -> requests.Response:
    params = {
        "grant_type": "password",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "username": creds["username"],
        "password": creds["password"] + creds["security_token"],
    }
    params.update(over)
    return _token(url, **params)


def test_password_grant_success_shape(org):
    r = _password(org.url, ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == org.url
    assert body["access_token"].startswith("00D5g000004SbxR!")
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    org_id, user_id = body["id"].rsplit("/", 2)[-2:]
    assert org_id.startswith("00D") and len(org_id) == 18
    assert user_id.startswith("005") and len(user_id) == 18
    expected = base64.b64encode(
        hmac.new(
            ADMIN["client_secret"].encode(),
            (body["id"] + body["issued_at"]).encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    assert body["signature"] == expected
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("over", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"password": ADMIN["password"]}, "invalid_grant", "authentication failure"),
        ({"username": "nobody@example.com"}, "invalid_grant", "authentication failure"),
        ({"client_id": "3MVG9unknown"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "nope"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "magic"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_password_grant_errors(org, over, error, description):
    r = _password(org.url, ADMIN, **over)
    assert r.status_code == 400
    assert r.json() == {"error": error, "error_description": description}


def test_any_user_may_log_in_through_any_connected_app(org):
    other = DEMO_CREDENTIALS["job_portal"]
    r = _password(
        org.url,
        ADMIN,
        username=other["username"],
        password=other["password"] + other["security_token"],
    )
    assert r.status_code == 200, r.text
    # the session is the job portal user's: no access to interviews
    api = Api(org.url, r.json()["access_token"])
    assert api.query("SELECT Id FROM bpats__Interview__c").status_code == 400
    wrong = _password(org.url, ADMIN, username=other["username"])  # admin's password
    assert wrong.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_missing_grant_type(org):
    r = _token(org.url, client_id=ADMIN["client_id"])
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "error_description": "grant type is missing"}


def test_client_credentials_in_body_and_basic_header(org):
    creds = DEMO_CREDENTIALS["job_portal"]
    r = _token(
        org.url,
        grant_type="client_credentials",
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    r2 = requests.post(
        f"{org.url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=10,
    )
    assert r2.status_code == 200, r2.text
    # the token runs as the app's user: it may read jobs
    api = Api(org.url, r2.json()["access_token"])
    assert api.query("SELECT Id FROM bpats__Job__c LIMIT 1").status_code == 200
    bad = _token(
        org.url,
        grant_type="client_credentials",
        client_id=creds["client_id"],
        client_secret="wrong",
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_refresh_token_grant(org):
    user = org.sandbox.users["admin"]
    r = _token(
        org.url,
        grant_type="refresh_token",
        refresh_token=user.refresh_token,
        client_id=ADMIN["client_id"],
        client_secret=ADMIN["client_secret"],
    )
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    bad = _token(
        org.url,
        grant_type="refresh_token",
        refresh_token="5Aep861nope",
        client_id=ADMIN["client_id"],
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def jwt_org():
    key, cert = _key_and_cert()
    users = [
        {
            "key": "jwt",
            "username": "jwt@ats-sandbox.example.com",
            "password": "x",
            "client_id": "3MVG9jwt",
            "client_secret": "jwtsecret",
            "permission_sets": ["bpats__Asymbl_ATS_Job_Portal"],
            "certificate": cert,
        }
    ]
    handle = start_in_thread(create_app({"users": users}))
    try:
        yield handle, key
    finally:
        handle.stop()


def _assertion(key, **over) -> str:
    claims = {
        "iss": "3MVG9jwt",
        "sub": "jwt@ats-sandbox.example.com",
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    claims.update(over)
    return jwt.encode(claims, key, algorithm="RS256")


def test_jwt_bearer_success_shape(jwt_org):
    handle, key = jwt_org
    r = _token(
        handle.url,
        grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion=_assertion(key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}
    api = Api(handle.url, body["access_token"])
    assert api.get("/limits").status_code == 200


@pytest.mark.parametrize(
    ("over", "error", "description"),
    [
        ({"aud": "https://evil.example.com"}, "invalid_grant", "Audience validation failed"),
        ({"exp": 1_000_000}, "invalid_grant", "expired authorization code"),
        ({"iss": "3MVG9other"}, "invalid_client_id", "client identifier invalid"),
        ({"sub": "nobody@example.com"}, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
def test_jwt_bearer_errors(jwt_org, over, error, description):
    handle, key = jwt_org
    r = _token(
        handle.url,
        grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion=_assertion(key, **over),
    )
    assert r.status_code == 400
    assert r.json() == {"error": error, "error_description": description}


def test_jwt_signed_by_another_key_is_refused(jwt_org):
    handle, _ = jwt_org
    other, _ = _key_and_cert()
    r = _token(
        handle.url,
        grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion=_assertion(other),
    )
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer 00Dnot-a-token"}, {"Authorization": "Basic abc"}],
)
def test_unknown_or_missing_session_is_401(org, headers):
    r = requests.get(f"{org.url}/services/data/v{VERSION}/limits", headers=headers, timeout=10)
    assert r.status_code == 401
    assert error_of(r) == {
        "message": "Session expired or invalid",
        "errorCode": "INVALID_SESSION_ID",
    }


def test_expired_token_is_401():
    handle = start_in_thread(create_app({"token_ttl": 0}))
    try:
        from .conftest import Org

        api = Org(handle).client("admin")
        r = api.get("/limits")
        assert r.status_code == 401
        assert error_of(r)["errorCode"] == "INVALID_SESSION_ID"
    finally:
        handle.stop()


def test_expire_all_sessions_fault(fresh):
    api = fresh.client("admin")
    assert api.get("/limits").status_code == 200
    r = requests.post(f"{fresh.url}/__sandbox__/faults", json={"expire_sessions": True}, timeout=10)
    assert r.status_code == 200
    assert r.json()["sessions_expired"] >= 1
    assert api.get("/limits").status_code == 401


def test_identity_url_and_revoke(fresh):
    r = _password(fresh.url, ADMIN)
    body = r.json()
    token = body["access_token"]
    ident = requests.get(body["id"], headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert ident.status_code == 200
    assert ident.json()["username"] == ADMIN["username"]
    assert ident.json()["urls"]["query"].endswith("/services/data/v{version}/query/")
    revoked = requests.post(
        f"{fresh.url}/services/oauth2/revoke", data={"token": token}, timeout=10
    )
    assert revoked.status_code == 200
    assert Api(fresh.url, token).get("/limits").status_code == 401
    again = requests.post(f"{fresh.url}/services/oauth2/revoke", data={"token": token}, timeout=10)
    assert again.status_code == 400


def test_users_from_a_toml_file():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "data" / "sandbox_users.example.toml"
    with start_in_thread(create_app({"users_file": str(path)})) as handle:
        r = _token(
            handle.url,
            grant_type="password",
            client_id="3MVG9EXAMPLEjobportal",
            client_secret="EXAMPLESECRET0001",
            username="job-portal@example-org.test",
            password="change-meTOKEN0000000000000000001",
        )
        assert r.status_code == 200, r.text
        refreshed = _token(
            handle.url,
            grant_type="refresh_token",
            refresh_token="5Aep861EXAMPLEfeedback",
            client_id="3MVG9EXAMPLEfeedback",
        )
        assert refreshed.status_code == 200
