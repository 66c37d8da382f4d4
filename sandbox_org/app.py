"""The sandbox org's Flask app: HTTP edge, auth, API counting, limits and faults.

Request flow for ``/services/data/vNN.N/...``: URI length (414), version (404), session
(401 ``INVALID_SESSION_ID``), injected faults (latency, 503), the daily API counter (403
``REQUEST_LIMIT_EXCEEDED`` past the limit), then ``rest.dispatch``. Every such response
carries ``Sforce-Limit-Info: api-usage=N/M`` (salesforce-wire-shapes.md §7).
"""

from __future__ import annotations

import json
import socket
import struct
import time
import tomllib
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sandbox_org import composite
from sandbox_org.auth import OAuthError
from sandbox_org.dml import Caller
from sandbox_org.errors import SfError, invalid_session, not_found
from sandbox_org.pubsub.cdc import CHANGE_ORIGIN, change_origin
from sandbox_org.rest import JSON_TYPE, NO_BODY, BadJson, Ctx, Reply, dispatch, to_json
from sandbox_org.state import Sandbox, SandboxConfig, release_label

MAX_URI_BYTES = 16_384
# A JSON request body may carry 37.5 MB of base64 in 50 MB of text (wire-shapes §9).
MAX_BODY_BYTES = 52_428_800
MAX_MULTIPART_BYTES = 2 * 1024**3

api = Blueprint("sandbox_api", __name__)


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def render(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Salesforce-style JSON: pretty-printed with `` : `` separators (wire-shapes §0)."""
    resp = Response(to_json(value), status=status, content_type=JSON_TYPE)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _reply_to_response(reply: Reply) -> Response:
    if reply.raw is not None:
        resp = Response(reply.raw, status=reply.status, content_type=reply.content_type)
    elif reply.body is None or reply.status in (204, 304):
        resp = Response(b"", status=reply.status)
        resp.headers.pop("Content-Type", None)
    else:
        return render(reply.body, reply.status, reply.headers)
    for k, v in reply.headers.items():
        resp.headers[k] = v
    return resp


def _error(err: SfError) -> Response:
    return render([err.rest()], err.status)


# -- OAuth --------------------------------------------------------------------------------------


@api.post("/services/oauth2/token")
def token() -> Response:
    params = {**request.args.to_dict(), **request.form.to_dict()}
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        params.setdefault("client_id", auth.username or "")
        params.setdefault("client_secret", auth.password or "")
    sb = sandbox()
    instance = sb.config.instance_url or request.host_url
    sb.usage.login()
    try:
        body = sb.sessions.grant(params, instance)
    except OAuthError as err:
        resp = Response(json.dumps(err.body()), status=err.status, content_type="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp
    resp = Response(json.dumps(body), status=200, content_type=JSON_TYPE)
    resp.headers["Cache-Control"] = "no-cache,must-revalidate,max-age=0,no-store,private"
    return resp


@api.post("/services/oauth2/revoke")
def revoke() -> Response:
    """Token revocation: 200 for a known token, 400 ``unsupported_token_type`` otherwise."""
    token_ = request.values.get("token", "")
    if sandbox().sessions.revoke(token_):
        return Response(b"", status=200)
    return Response(
        json.dumps(
            {
                "error": "unsupported_token_type",
                "error_description": "this token type is not supported",
            }
        ),
        status=400,
        content_type="application/json",
    )


@api.get("/id/<org_id>/<user_id>")
def identity(org_id: str, user_id: str) -> Response:
    """The identity URL of a token (subset of the real Identity Service response)."""
    sb = sandbox()
    token_ = _session_token()
    session = sb.sessions.lookup(token_) if token_ else None
    if session is None:
        return Response("Bad_OAuth_Token", status=403, content_type="text/plain")
    user = session.user
    if user.user_id != user_id:
        return Response("Bad_Id", status=403, content_type="text/plain")
    base = (sb.config.instance_url or request.host_url).rstrip("/")
    # The urls carry a literal "{version}" placeholder, as the real Identity Service's do.
    body = {
        "id": f"{base}/id/{org_id}/{user_id}",
        "asserted_user": True,
        "user_id": user_id,
        "organization_id": org_id,
        "username": user.username,
        "nick_name": user.username.split("@")[0],
        "display_name": " ".join(p for p in (user.first_name, user.last_name) if p),
        "email": user.email,
        "email_verified": True,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "active": user.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "urls": {
            "rest": f"{base}/services/data/v{{version}}/",
            "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
            "query": f"{base}/services/data/v{{version}}/query/",
            "limits": f"{base}/services/data/v{{version}}/limits",
            "profile": f"{base}/{user_id}",
        },
        "is_app_installed": True,
        "last_modified_date": "1970-01-01T00:00:00.000+0000",
    }
    return render(body)


# -- REST ---------------------------------------------------------------------------------------


@api.get("/services/data")
@api.get("/services/data/")
def versions() -> Response:
    sb = sandbox()
    body = [
        {"label": release_label(v), "url": f"/services/data/v{v}", "version": v}
        for v in sb.config.api_versions
    ]
    return render(body)


@api.route("/services/data/v<version>", methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"])
@api.route(
    "/services/data/v<version>/<path:rest>",
    methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"],
)
def data(version: str, rest: str = "") -> Response:
    sb = sandbox()
    # Writes made by this call carry its changeOrigin in their change events (pubsub/cdc.py).
    origin = change_origin("rest", version, request.headers.get("Sforce-Call-Options", ""))
    token = CHANGE_ORIGIN.set(origin)
    try:
        resp = _data(sb, version, rest)
    finally:
        CHANGE_ORIGIN.reset(token)
    resp.headers["Sforce-Limit-Info"] = sb.usage.header()
    return resp


def _session_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def _data(sb: Sandbox, version: str, rest: str) -> Response:
    if version not in sb.config.api_versions:
        return _error(not_found())
    token = _session_token()
    session = sb.sessions.lookup(token) if token else None
    if session is None:
        return _error(invalid_session())
    faults = sb.faults
    if faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000.0)
    if faults.roll(faults.error_rate):
        return render(
            [
                {
                    "errorCode": "SERVER_UNAVAILABLE",
                    "message": "The server is temporarily unable to service your request.",
                }
            ],
            503,
        )
    method = request.method
    if method == "POST" and request.args.get("_HttpMethod"):
        method = request.args["_HttpMethod"].upper()
    body = _parse_body()
    path = "/" + rest
    cost = composite.batch_size_of(body) if path.rstrip("/") == "/composite/batch" else 1
    if not sb.usage.take(cost, kind=f"{method} {_call_kind(path)}"):
        return _error(SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    user = session.user
    caller = Caller(user.user_id, sb.perms(user), version)
    headers = {k.lower(): v for k, v in request.headers.items()}
    ctx = Ctx(sb, caller, version, headers)
    params = {k: v for k, v in request.args.items() if k != "_HttpMethod"}
    writes = _is_write(method, body)
    if writes and faults.write_latency_ms > 0:
        # A slow org: the write runs (and commits) only after this, whoever still waits.
        time.sleep(faults.write_latency_ms / 1000.0)
    if writes and faults.upload_latency_ms > 0 and _writes_files(path, body):
        time.sleep(faults.upload_latency_ms / 1000.0)
    reply = dispatch(ctx, method, path, params, body)
    if writes and faults.roll(faults.withhold_rate):
        _withhold(faults.withhold_ms)
    if request.method == "HEAD":
        reply.body = None
    return _reply_to_response(reply)


def _writes_files(path: str, body: Any) -> bool:
    """Whether a write request creates files (``ContentVersion``), directly or in a composite."""
    if "/sobjects/ContentVersion" in path:
        return True

    def holds(value: Any, depth: int = 0) -> bool:
        if depth > 6:
            return False
        if isinstance(value, dict):
            attributes = value.get("attributes")
            if isinstance(attributes, dict) and attributes.get("type") == "ContentVersion":
                return True
            url = value.get("url")
            if isinstance(url, str) and "/sobjects/ContentVersion" in url:
                return True
            return any(holds(v, depth + 1) for v in value.values())
        if isinstance(value, list):
            return any(holds(v, depth + 1) for v in value)
        return False

    return holds(body)


def _call_kind(path: str) -> str:
    """The resource a call went to, without ids or object names (`/sobjects/*/describe`)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["sobjects"] and len(parts) > 1:
        parts[1] = "*"
        parts[2:] = ["*" if p != "describe" else p for p in parts[2:]]
    elif len(parts) > 1:
        parts[1:] = ["*"]
    return "/" + "/".join(parts)


def _is_write(method: str, body: Any) -> bool:
    """Whether a request may change records (a ``/composite`` of queries only does not)."""
    if method in ("GET", "HEAD"):
        return False
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if isinstance(subrequests, list):
        return any(
            str((s or {}).get("method", "GET")).upper() != "GET"
            for s in subrequests
            if isinstance(s, dict)
        )
    return True


def _withhold(delay_ms: float) -> None:
    """The write committed; its answer is held back ``delay_ms`` (past the client's read
    timeout), or with 0 the connection is closed without an answer, as a reset would."""
    if delay_ms > 0:
        time.sleep(delay_ms / 1000.0)
        return
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _parse_body() -> Any:
    if request.mimetype == "multipart/form-data":
        return _multipart_body()
    raw = request.get_data(cache=False)
    if not raw or not raw.strip():
        return NO_BODY
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        return BadJson("Invalid UTF-8 start byte")
    except json.JSONDecodeError as exc:
        return BadJson(f"{exc.msg} at [line:{exc.lineno}, column:{exc.colno}]")


def _multipart_body() -> Any:
    """A multipart insert (wire-shapes §9): the ``entity_content`` JSON part holds the fields,
    each other part the binary content of the blob field it is named after (``VersionData``)."""
    part = request.files.get("entity_content")
    text = part.read() if part is not None else request.form.get("entity_content", "")
    try:
        body = json.loads(text or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return BadJson(f"entity_content: {exc}")
    if not isinstance(body, dict):
        return BadJson("entity_content must be a JSON object")
    for name, storage in request.files.items():
        if name != "entity_content":
            body[name] = storage.read()
    return body


# -- app factory --------------------------------------------------------------------------------


def _users_from(config: SandboxConfig) -> list[dict[str, Any]]:
    if config.users is not None:
        return list(config.users)
    if config.users_file:
        data = tomllib.loads(Path(config.users_file).read_text(encoding="utf-8"))
        return list(data.get("users", []))
    from sandbox_org.seed import DEMO_USERS

    return [dict(u) for u in DEMO_USERS]


def create_app(config: SandboxConfig | dict[str, Any] | None = None) -> Flask:
    """The sandbox org as a Flask app (``app.extensions["sandbox"]`` is its ``Sandbox``)."""
    cfg = SandboxConfig.coerce(config)
    app = Flask("sandbox_org")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sb = Sandbox(cfg)
    for spec in _users_from(cfg):
        sb.add_user(spec)
    if cfg.seed:
        from sandbox_org.seed import seed_org

        if cfg.seed != "demo":
            raise ValueError(f"unknown seed {cfg.seed!r} (only 'demo')")
        if sb.store.count("bpats__Job__c") == 0:
            seed_org(sb, jobs=cfg.seed_jobs)
    app.extensions["sandbox"] = sb
    app.url_map.strict_slashes = False
    app.register_blueprint(api)
    from sandbox_org.admin import admin

    app.register_blueprint(admin)
    from sandbox_org.soap import soap

    app.register_blueprint(soap)

    @app.before_request
    def _uri_limit() -> Response | None:
        if request.mimetype == "multipart/form-data":
            # Multipart ContentVersion inserts may carry up to 2 GB (wire-shapes §9).
            request.max_content_length = MAX_MULTIPART_BYTES
        uri = request.environ.get("RAW_URI") or request.full_path
        if len(uri.encode()) > MAX_URI_BYTES:
            return render(
                [{"errorCode": "URI_TOO_LONG", "message": "URI Too Long"}],
                414,
            )
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: Exception) -> Response:
        return render(
            [
                {
                    "errorCode": "REQUEST_ENTITY_TOO_LARGE",
                    "message": f"Request body exceeds the limit of {MAX_BODY_BYTES} bytes",
                }
            ],
            413,
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = "NOT_FOUND" if exc.code == 404 else "METHOD_NOT_ALLOWED"
        message = "The requested resource does not exist" if exc.code == 404 else str(exc.name)
        return render([{"errorCode": code, "message": message}], exc.code or 500)

    return app
