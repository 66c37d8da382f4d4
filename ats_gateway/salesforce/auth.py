"""OAuth 2.0 flows and the token cache shared by every process through Redis.

Flows (wire shapes section 1): username-password, client credentials, JWT bearer (RS256 with
PyJWT; the key from PEM text or a file) and refresh token, against a configurable login URL
(production, test.salesforce.com, a My Domain, or the sandbox org).

The access token of each connection lives in Redis under ``<prefix>token:<connection>``, so
all gateway and worker processes share one session. Re-authentication is single-flight: the
caller that saw a stale token takes a Redis lock, and, once it holds it, logs in only if the
cached token is still the stale one; everyone who queued behind the lock gets the new token
without another login.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import redis
import requests

from ats_gateway.salesforce.connections import ConnectionSettings
from ats_gateway.salesforce.errors import (
    AuthenticationFailed,
    SalesforceError,
    Unavailable,
    from_token_response,
)

log = logging.getLogger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Token:
    """An access token and where to use it. Its repr hides the token."""

    access_token: str
    instance_url: str
    identity_url: str = ""
    issued_at: float = 0.0

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r}, org_id={self.org_id!r})"

    @property
    def org_id(self) -> str:
        """The org's id from the identity URL ``.../id/<orgId>/<userId>`` (may be empty)."""
        parts = urlsplit(self.identity_url).path.strip("/").split("/")
        if len(parts) >= 3 and parts[-3] == "id":
            return parts[-2]
        return ""

    @property
    def org_key(self) -> str:
        """A stable key for the org: its id, else the instance host."""
        return self.org_id[:15] or urlsplit(self.instance_url).netloc

    def dumps(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "instance_url": self.instance_url,
                "id": self.identity_url,
                "issued_at": self.issued_at,
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> Token:
        data = json.loads(raw)
        return cls(
            data["access_token"], data["instance_url"], data.get("id", ""), data["issued_at"]
        )


def token_request(settings: ConnectionSettings, clock: Callable[[], float] = time.time) -> dict:
    """The form body for the connection's flow (secrets revealed only here)."""

    def reveal(name: str) -> str:
        value = getattr(settings, name)
        return value.reveal() if value is not None else ""

    flow = settings.flow
    if flow == "password":
        return {
            "grant_type": "password",
            "client_id": settings.client_id,
            "client_secret": reveal("client_secret"),
            "username": settings.username,
            "password": reveal("password") + reveal("security_token"),
        }
    if flow == "client_credentials":
        return {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": reveal("client_secret"),
        }
    if flow == "refresh_token":
        body = {
            "grant_type": "refresh_token",
            "client_id": settings.client_id,
            "refresh_token": reveal("refresh_token"),
        }
        if settings.client_secret:
            body["client_secret"] = reveal("client_secret")
        return body
    if flow == "jwt":
        return {"grant_type": JWT_GRANT, "assertion": jwt_assertion(settings, clock)}
    raise ValueError(f"unknown flow {flow!r}")  # pragma: no cover - settings validate it


def jwt_assertion(settings: ConnectionSettings, clock: Callable[[], float] = time.time) -> str:
    """The RS256-signed assertion: iss = client id, sub = username, aud = login URL, exp 3 min."""
    if settings.private_key:
        key = settings.private_key.reveal()
    elif settings.private_key_file:
        key = Path(settings.private_key_file).read_text()
    else:
        raise AuthenticationFailed("JWT flow needs private_key or private_key_file")
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": jwt_audience(settings),
        "exp": int(clock()) + 180,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # never echo the key material
        raise AuthenticationFailed(f"cannot sign the JWT assertion: {type(exc).__name__}") from None


def jwt_audience(settings: ConnectionSettings) -> str:
    """``aud`` of the assertion: login.salesforce.com or test.salesforce.com for My Domain
    hosts (Salesforce does not accept the My Domain URL there), else the login URL itself
    (an Experience Cloud site, or the sandbox org). ``settings.audience`` overrides."""
    if settings.audience:
        return settings.audience.rstrip("/")
    host = urlsplit(settings.login_url).hostname or ""
    if host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        return "https://login.salesforce.com"
    return settings.login_url.rstrip("/")


class TokenManager:
    """Login, cache and single-flight refresh of one connection's access token."""

    def __init__(
        self,
        settings: ConnectionSettings,
        redis_client: redis.Redis,
        session: requests.Session,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.redis = redis_client
        self.session = session
        self.clock = clock
        # The identity is part of the key: pointing a connection at another user or org must
        # not reuse the previous user's cached token (nor its lock or last error).
        identity = hashlib.sha256(
            "\0".join((settings.login_url, settings.username, settings.client_id)).encode()
        ).hexdigest()[:16]
        scope = f"{settings.name}:{identity}"
        self.key = f"{settings.key_prefix}token:{scope}"
        self.lock_key = f"{settings.key_prefix}token-lock:{scope}"
        self.error_key = f"{settings.key_prefix}auth-error:{scope}"
        self.logins = 0  # logins this process performed (observability, tests)

    def __repr__(self) -> str:
        return f"TokenManager(connection={self.settings.name!r}, flow={self.settings.flow!r})"

    def cached(self) -> Token | None:
        raw = self.redis.get(self.key)
        if raw is None:
            return None
        try:
            return Token.loads(raw)
        except (ValueError, KeyError):
            return None

    def token(self) -> Token:
        """The cached token, logging in (single-flight) when there is none."""
        try:
            current = self.cached()
        except redis.RedisError as exc:
            raise Unavailable(f"token cache unavailable ({type(exc).__name__})") from None
        if current is not None:
            return current
        return self.refresh(stale=None)

    def refresh(self, stale: Token | None) -> Token:
        """A token other than ``stale``: log in unless another caller already did."""
        try:
            return self._refresh(stale)
        except redis.RedisError as exc:
            raise Unavailable(f"token cache unavailable ({type(exc).__name__})") from None

    def _refresh(self, stale: Token | None) -> Token:
        lock = self.redis.lock(
            self.lock_key,
            timeout=self.settings.lock_timeout,
            blocking_timeout=self.settings.lock_timeout + self.settings.read_timeout,
        )
        if not lock.acquire():
            raise Unavailable("timed out waiting for another process to re-authenticate")
        try:
            current = self.cached()
            if current is not None and (
                stale is None or current.access_token != stale.access_token
            ):
                return current
            try:
                token = self.login()
            except SalesforceError as exc:
                self._remember_error(exc)
                raise
            pipe = self.redis.pipeline()
            pipe.set(self.key, token.dumps(), ex=max(int(self.settings.token_ttl), 1))
            pipe.delete(self.error_key)
            pipe.execute()
            return token
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:  # expired while we logged in; harmless
                log.warning("token lock for %s expired before release", self.settings.name)

    def _remember_error(self, exc: SalesforceError) -> None:
        record = {
            "type": type(exc).__name__,
            "error_code": exc.error_code,
            "message": exc.message,
            "at": self.clock(),
        }
        self.redis.set(self.error_key, json.dumps(record), ex=86400)

    def last_error(self) -> dict[str, Any] | None:
        """The last failed login of this connection (any process), or None."""
        raw = self.redis.get(self.error_key)
        return json.loads(raw) if raw else None

    def invalidate(self, stale: Token) -> None:
        """Forget ``stale`` if it is still the cached token (e.g. after a revocation)."""
        current = self.cached()
        if current is not None and current.access_token == stale.access_token:
            self.redis.delete(self.key)

    def login(self) -> Token:
        """One request to the token endpoint for the connection's flow."""
        url = self.settings.login_url.rstrip("/") + "/services/oauth2/token"
        data = token_request(self.settings, self.clock)
        try:
            response = self.session.post(
                url,
                data=data,
                headers={"Accept": "application/json"},
                timeout=self.settings.timeout,
            )
        except requests.Timeout as exc:
            raise Unavailable(f"token endpoint timed out ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise Unavailable(f"token endpoint unreachable ({type(exc).__name__})") from None
        body = _json(response)
        if response.status_code != 200:
            raise from_token_response(response.status_code, body)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise AuthenticationFailed("token endpoint answered 200 without an access_token")
        self.logins += 1
        log.info("salesforce login for connection %s", self.settings.name)
        return Token(
            access_token=str(body["access_token"]),
            instance_url=str(body.get("instance_url") or self.settings.login_url).rstrip("/"),
            identity_url=str(body.get("id") or ""),
            issued_at=self.clock(),
        )


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


__all__ = ["JWT_GRANT", "Token", "TokenManager", "jwt_assertion", "token_request"]
