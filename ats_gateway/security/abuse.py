"""Abuse protection for browser submits (applications sent with a publishable key).

The applications endpoint calls one function, after authentication and before validation::

    data = enforce_browser_submission(request.get_json())   # or request.form.to_dict()

For a publishable key it checks, in order, and otherwise raises `SubmissionRejected` (400,
problem+json with a `reason`):

* **honeypot**: the field named `Settings.honeypot_field` (default `homepage`), rendered
  hidden by the career site, must be absent or empty (`reason: "honeypot"`);
* **form token**: `form_token` (body field, or `X-Form-Token` header) must be a token from
  `issue_form_token()` (served at `GET /v1/form-token`), signed with the gateway's secret
  (itsdangerous), issued for the same key, at least `form_min_fill_seconds` old
  (`too_fast`) and at most `form_token_max_age` (`form_token_expired`); a token serves at
  most `FORM_TOKEN_MAX_USES` submits (a person correcting a form resubmits, a bot replaying
  one token is cut off; `form_token_reused`);
* **CAPTCHA** (only when a verifier is plugged in with `set_captcha_verifier`): the
  `captcha_token` field must verify (`captcha_failed`).

The per-IP submit budget is the rate limiter's "submit" budget (`rate_limit_ip_submit`).
Secret keys (job boards) skip these checks. Either way the returned mapping no longer holds
the honeypot, `form_token` or `captcha_token` fields, so the schema sees only real fields.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, Protocol

from flask import Flask, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from ats_gateway.errors import PROBLEM_TYPES, BadRequest
from ats_gateway.extensions import get_redis
from ats_gateway.security.ratelimit import client_ip

FORM_TOKEN_FIELD = "form_token"
FORM_TOKEN_HEADER = "X-Form-Token"
CAPTCHA_FIELD = "captcha_token"
FORM_TOKEN_MAX_USES = 5
_SALT = "ats-gateway/form-token/v1"


class SubmissionRejected(BadRequest):
    slug = "submission-rejected"


PROBLEM_TYPES.setdefault(
    SubmissionRejected.slug,
    (
        "Submission Rejected",
        "The submission looks automated: a hidden field was filled, the form token is "
        "missing, invalid, expired or reused, the form was sent too fast, or the CAPTCHA failed.",
    ),
)


class CaptchaVerifier(Protocol):
    """Plug-in interface for a CAPTCHA service (none is bundled).

    `verify` gets the client's `captcha_token` (None when the field is missing) and the
    client IP; it returns True to let the submission through. It should use a short timeout
    and decide itself whether an unreachable service fails open or closed.
    """

    def verify(self, token: str | None, *, remote_ip: str) -> bool: ...


def set_captcha_verifier(app: Flask, verifier: CaptchaVerifier | None) -> None:
    app.extensions["ats_captcha_verifier"] = verifier


def _serializer() -> URLSafeSerializer:
    secret = current_app.config["SETTINGS"].secret_key
    if not secret:
        raise RuntimeError("form tokens need Settings.secret_key")
    return URLSafeSerializer(secret, salt=_SALT)


def issue_form_token(*, issued_at: float | None = None) -> str:
    """A signed token for one form, bound to the request's key; `issued_at` is for tests and
    pre-rendered pages (a token minted when the page was built)."""
    key = getattr(g, "api_key", None)
    payload = {
        "n": secrets.token_urlsafe(9),
        "iat": int((time.time() if issued_at is None else issued_at) * 1000),
        "k": key.id if key is not None else "",
    }
    return _serializer().dumps(payload)


def form_token_info() -> dict[str, Any]:
    """What a career site needs to render its form: a fresh token and the rules."""
    settings = current_app.config["SETTINGS"]
    return {
        "form_token": issue_form_token(),
        "honeypot_field": settings.honeypot_field,
        "min_fill_seconds": settings.form_min_fill_seconds,
        "expires_in": settings.form_token_max_age,
    }


def _reject(reason: str, detail: str) -> SubmissionRejected:
    return SubmissionRejected(detail, reason=reason)


def check_form_token(token: str | None) -> None:
    settings = current_app.config["SETTINGS"]
    if not token:
        raise _reject("form_token_missing", "Send the form token from GET /v1/form-token.")
    try:
        payload = _serializer().loads(token)
        issued_ms = int(payload["iat"])
        nonce = str(payload["n"])
        bound = str(payload.get("k", ""))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise _reject("form_token_invalid", "The form token is not valid.") from None
    key = getattr(g, "api_key", None)
    if bound != (key.id if key is not None else ""):
        raise _reject("form_token_invalid", "The form token was issued for another key.")
    age = time.time() - issued_ms / 1000
    if age < settings.form_min_fill_seconds:
        raise _reject("too_fast", "The form was sent too fast; please try again.")
    if age > settings.form_token_max_age:
        raise _reject("form_token_expired", "The form token has expired; reload the form.")
    uses_key = f"ats:form-token:uses:{nonce}"
    pipe = get_redis(current_app).pipeline(transaction=True)
    pipe.incr(uses_key)
    pipe.expire(uses_key, int(settings.form_token_max_age) + 60)
    uses, _ = pipe.execute()
    if int(uses) > FORM_TOKEN_MAX_USES:
        raise _reject("form_token_reused", "The form token has been used too often.")


def enforce_browser_submission(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a browser submit (see the module docstring); returns `data` without the
    anti-abuse fields. Raises `SubmissionRejected`."""
    settings = current_app.config["SETTINGS"]
    data = dict(data or {})
    honeypot = data.pop(settings.honeypot_field, None)
    token = data.pop(FORM_TOKEN_FIELD, None) or request.headers.get(FORM_TOKEN_HEADER)
    captcha = data.pop(CAPTCHA_FIELD, None)
    key = getattr(g, "api_key", None)
    if key is not None and not key.publishable:
        return data
    if honeypot not in (None, ""):
        raise _reject("honeypot", "The submission was rejected.")
    check_form_token(token if isinstance(token, str) else None)
    verifier: CaptchaVerifier | None = current_app.extensions.get("ats_captcha_verifier")
    if verifier is not None and not verifier.verify(
        captcha if isinstance(captcha, str) else None, remote_ip=client_ip()
    ):
        raise _reject("captcha_failed", "The CAPTCHA was not solved.")
    return data
