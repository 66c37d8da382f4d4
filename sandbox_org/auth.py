"""Integration users, connected apps and the OAuth 2.0 token endpoint.

Each configured user has its own connected app (client id / secret, optional JWT
certificate); client_credentials runs as that user. Grant shapes and error wording:
salesforce-wire-shapes.md §1 (success 200 with ``issued_at`` as a string of epoch
milliseconds and ``signature = base64(HMAC-SHA256(client_secret, id + issued_at))``; errors
400 ``{"error", "error_description"}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sandbox_org import ids

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass
class User:
    key: str
    username: str
    password: str
    security_token: str
    client_id: str
    client_secret: str
    permission_sets: list[str]
    first_name: str = ""
    last_name: str = "Integration"
    email: str = ""
    certificate: str | None = None  # PEM certificate or public key for JWT bearer
    refresh_token: str | None = None
    active: bool = True
    user_id: str = ""


@dataclass
class Session:
    token: str
    user: User
    expires_at: float


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _public_key(pem: str) -> Any:
    data = pem.encode()
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


@dataclass
class Sessions:
    """Access tokens and refresh tokens of the org (thread-safe)."""

    ttl: float
    users: dict[str, User] = field(default_factory=dict)  # by username (lower case)
    _by_token: dict[str, Session] = field(default_factory=dict)
    _refresh: dict[str, User] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, user: User) -> None:
        self.users[user.username.lower()] = user
        if user.refresh_token:
            self._refresh[user.refresh_token] = user

    def by_client(self, client_id: str) -> User | None:
        return next((u for u in self.users.values() if u.client_id == client_id), None)

    def lookup(self, token: str) -> Session | None:
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if session.expires_at <= time.time():
                del self._by_token[token]
                return None
            return session

    def revoke(self, token: str) -> bool:
        with self._lock:
            return self._by_token.pop(token, None) is not None

    def expire_all(self) -> int:
        with self._lock:
            n = len(self._by_token)
            self._by_token.clear()
            return n

    def _issue(self, user: User) -> Session:
        token = f"{ids.ORG_ID[:15]}!AQ" + secrets.token_urlsafe(72)
        session = Session(token=token, user=user, expires_at=time.time() + self.ttl)
        with self._lock:
            self._by_token[token] = session
        return session

    # -- grants ---------------------------------------------------------------------------

    def grant(self, params: dict[str, str], instance_url: str) -> dict[str, Any]:
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant type is missing")
        if grant_type == "password":
            user = self._client(params, secret_required=True)
            wanted = self.users.get(params.get("username", "").lower())
            password = params.get("password", "")
            # Any user of the org may log in through any of its connected apps.
            if (
                wanted is None
                or not wanted.active
                or password != wanted.password + wanted.security_token
            ):
                raise OAuthError("invalid_grant", "authentication failure")
            return self._success(wanted, instance_url, signed=True, app=user)
        if grant_type == "client_credentials":
            user = self._client(params, secret_required=True)
            return self._success(user, instance_url, signed=True, scope="api")
        if grant_type == "refresh_token":
            user = self._client(params, secret_required=False)
            owner = self._refresh.get(params.get("refresh_token", ""))
            if owner is None or owner is not user:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            return self._success(user, instance_url, signed=True)
        if grant_type == JWT_GRANT:
            return self._jwt(params.get("assertion", ""), instance_url)
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def login(self, username: str, password: str) -> Session:
        """SOAP ``login()``: username + password (+ security token) -> a session (no app)."""
        user = self.users.get(username.lower())
        if user is None or not user.active or password != user.password + user.security_token:
            raise OAuthError(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        return self._issue(user)

    def _client(self, params: dict[str, str], *, secret_required: bool) -> User:
        user = self.by_client(params.get("client_id", ""))
        if user is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = params.get("client_secret")
        if (secret_required or secret is not None) and not hmac.compare_digest(
            secret or "", user.client_secret
        ):
            raise OAuthError("invalid_client", "invalid client credentials")
        return user

    def _jwt(self, assertion: str, instance_url: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        app = self.by_client(str(claims.get("iss", "")))
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        # The certificate is the connected app's; the subject may be any active user of the
        # org (pre-authorized). An app without a certificate has no user approved for JWT.
        user = self.users.get(str(claims.get("sub") or claims.get("prn") or "").lower())
        if user is None or not user.active or not app.certificate:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        audiences = (*JWT_AUDIENCES, instance_url.rstrip("/"))
        try:
            jwt.decode(
                assertion,
                _public_key(app.certificate),
                algorithms=["RS256"],
                audience=list(audiences),
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "Audience validation failed") from None
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        # JWT bearer answers carry no refresh token, issued_at or signature (§1a).
        session = self._issue(user)
        return {
            "access_token": session.token,
            "scope": "web api",
            "instance_url": instance_url.rstrip("/"),
            "id": self.identity_url(instance_url, user),
            "token_type": "Bearer",
        }

    def identity_url(self, instance_url: str, user: User) -> str:
        return f"{instance_url.rstrip('/')}/id/{ids.ORG_ID}/{user.user_id}"

    def _success(
        self,
        user: User,
        instance_url: str,
        *,
        signed: bool,
        scope: str = "api",
        app: User | None = None,
    ) -> dict[str, Any]:
        """A token for ``user``, signed with the secret of the connected app used (``app``)."""
        session = self._issue(user)
        issued_at = str(int(time.time() * 1000))
        identity = self.identity_url(instance_url, user)
        secret = (app or user).client_secret
        signature = base64.b64encode(
            hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": session.token,
            "instance_url": instance_url.rstrip("/"),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if scope:
            body["scope"] = scope
        return body
