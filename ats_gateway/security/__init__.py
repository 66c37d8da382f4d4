"""Consumer access: API keys and scopes, rate limits, CORS, abuse protection, request limits.

Protecting a view takes one line::

    from ats_gateway.security import require_scope

    @bp.get("/v1/jobs")
    @require_scope("jobs:read")
    def list_jobs():
        key = g.api_key            # the authenticated ApiKey (id, kind, name, scopes, ...)
        ...

    @bp.post("/v1/applications")
    @require_scope("applications:write", accepts=("application/json", "multipart/form-data"))
    def submit():
        data = enforce_browser_submission(request.get_json())   # honeypot, form token, CAPTCHA
        ...

What `require_scope(scope, budget=None, accepts=None, cost=None)` gives the view first:

* **authentication**: `Authorization: Bearer pk_...|sk_...`; none, unknown or revoked -> 401
  with `WWW-Authenticate: Bearer`; a publishable key sent with an `Origin` it is not bound to
  -> 403; a key without `scope` (and without `admin`) -> 403. Scopes: `jobs:read`,
  `applications:write`, `applications:read`, `feedback:issue`, `admin` (satisfies any).
  Publishable keys may hold only `jobs:read` and `applications:write`. A publishable key
  without any `Origin` (curl, a same-origin GET) is accepted: anyone can read it from the
  page, so binding it to origins only keeps other websites from using it in browsers.
* **rate limits** (`ratelimit.py`): per key and per client IP, "read" or "submit" budget
  (submit for `applications:write` unless `budget=` says otherwise; `cost=callable` makes a
  batch count as its size); `RateLimit-*` headers; 429 problem+json with `Retry-After`.
* **CORS** (`cors.py`): the key's bound origins; preflights for origins of active
  publishable keys holding the scope; `Access-Control-Max-Age: Settings.cors_max_age`.
* **request limits** (`request_limits.py`): 431 headers, 413 body (chunked too), 415 type
  not in `accepts` (default `application/json`), 400 JSON too deep or malformed. The body is
  parsed once, so `request.get_json()` in the view is cheap and safe.

Keyless views use `@public(budget=..., accepts=...)` (per-IP limits and body checks, no key)
and `@accepts(...)` sets content types alone. `current_key()` returns `g.api_key`.
`spec_of(view_function)` returns a view's `AccessSpec` (scope, budget, accepts), e.g. for the
OpenAPI document's `security` requirements.

Browser submits: `enforce_browser_submission(data)` (see `abuse.py`), the form token from
`GET /v1/form-token` or `issue_form_token()`, `set_captcha_verifier(app, verifier)` to plug a
`CaptchaVerifier`. Keys: `KeyStore(redis)` (`keys.py`), `ensure_demo_keys(...)` for
`ats-gateway dev`, and the `ats-gateway keys create|list|revoke` CLI (`cli.py`).

`init_app(app)` is one step of `create_app`: it must come after the services are stored on the
app (the key store is ``services().key_store``) and before the blueprints.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ats_gateway.errors import PROBLEM_BASE, GatewayError, PayloadTooLarge, problem
from ats_gateway.security import access, request_limits
from ats_gateway.security.abuse import (
    CaptchaVerifier,
    SubmissionRejected,
    enforce_browser_submission,
    issue_form_token,
    set_captcha_verifier,
)
from ats_gateway.security.access import (
    AccessSpec,
    accepts,
    current_key,
    key_store,
    public,
    require_scope,
    spec_of,
)
from ats_gateway.security.cors import init_cors
from ats_gateway.security.keys import (
    PUBLISHABLE,
    SCOPES,
    SECRET,
    ApiKey,
    InvalidKeySpec,
    KeyStore,
    ensure_demo_keys,
)
from ats_gateway.security.ratelimit import client_ip, init_limiter

__all__ = [
    "PUBLISHABLE",
    "SCOPES",
    "SECRET",
    "AccessSpec",
    "ApiKey",
    "CaptchaVerifier",
    "InvalidKeySpec",
    "KeyStore",
    "SubmissionRejected",
    "accepts",
    "client_ip",
    "current_key",
    "enforce_browser_submission",
    "ensure_demo_keys",
    "init_app",
    "issue_form_token",
    "key_store",
    "public",
    "require_scope",
    "set_captcha_verifier",
    "spec_of",
]


def _render(exc: GatewayError):
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        type_=PROBLEM_BASE + exc.slug,
        headers=exc.headers,
        **exc.extensions,
    )


def _check_request() -> None:
    """Request limits, then authentication (its failure deferred until after rate limits)."""
    settings = current_app.config["SETTINGS"]
    request_limits.check_headers(request, settings.max_header_bytes)
    if request.method == "OPTIONS":
        return  # preflights: answered by Flask, decorated by the CORS hook
    spec = access.current_spec()
    max_body = current_app.config.get("MAX_CONTENT_LENGTH")
    request_limits.buffer_body(request, max_body, settings.body_read_timeout)
    if spec is not None:
        request_limits.check_content_type(request, spec)
    request_limits.check_json(request, settings.max_json_depth, max_body, parse=spec is not None)
    if spec is not None and spec.scope is not None:
        access.authenticate()


def _enforce_access() -> None:
    if request.method != "OPTIONS":
        access.enforce()


def init_app(app: Flask) -> None:
    """Bind keys, request limits, rate limits, CORS and the form-token endpoint to `app`."""
    from ats_gateway.security import views

    app.extensions.setdefault("ats_captcha_verifier", None)
    # Order matters: checks + authentication, then the limiter, then the deferred 401/403.
    app.before_request(_check_request)
    init_limiter(app)
    app.before_request(_enforce_access)
    init_cors(app)
    app.register_error_handler(
        RequestEntityTooLarge,
        lambda exc: _render(PayloadTooLarge("The request body is too large.")),
    )
    app.register_blueprint(views.bp)
