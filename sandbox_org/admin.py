"""``/__sandbox__/``: test and benchmark controls that no real org has.

* ``GET /__sandbox__/usage`` -> ``{"used", "limit", "remaining"}``;
  ``POST`` ``{"reset": true}`` / ``{"used": n}`` / ``{"limit": n}``.
* ``GET|POST /__sandbox__/faults`` (404 unless the app was created with ``faults_enabled``):
  ``{"latency_ms", "error_rate", "lock_rate", "seed", "expire_sessions": true,
  "api_limit", "api_used"}``; ``DELETE`` clears every fault.
* ``PATCH /__sandbox__/objects/<object>/fields/<field>``: ``{"add_picklist_values": [...],
  "deactivate_picklist_values": [...], "length": n, "unique": bool, "externalId": bool,
  "nillable": bool, "label": str}``; bumps the describe's ``Last-Modified``.
* ``POST /__sandbox__/objects/<object>/validation-rules``: ``{"name", "errorMessage",
  "errorDisplayField"?, "condition": {"field", "op", "value"}}`` with op one of equals,
  not_equals, blank, not_blank, contains, matches, greater_than, less_than; a record for which
  the condition holds fails with FIELD_CUSTOM_VALIDATION_EXCEPTION.
  ``DELETE /__sandbox__/validation-rules`` removes them all.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from sandbox_org.app import render

admin = Blueprint("sandbox_admin", __name__, url_prefix="/__sandbox__")


def _sb() -> Any:
    return current_app.extensions["sandbox"]


def _json() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@admin.route("/usage", methods=["GET", "POST"])
def usage() -> Response:
    sb = _sb()
    if request.method == "POST":
        data = _json()
        if data.get("reset"):
            sb.usage.set(used=0)
        sb.usage.set(used=data.get("used"), limit=data.get("limit"))
    return render(sb.usage.snapshot())


@admin.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    sb = _sb()
    if not sb.config.faults_enabled:
        return render(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )
    expired = 0
    if request.method == "DELETE":
        sb.faults.configure(latency_ms=0, error_rate=0, lock_rate=0)
    elif request.method == "POST":
        data = _json()
        sb.faults.configure(
            **{k: data[k] for k in ("latency_ms", "error_rate", "lock_rate", "seed") if k in data}
        )
        if data.get("expire_sessions"):
            expired = sb.sessions.expire_all()
        sb.usage.set(used=data.get("api_used"), limit=data.get("api_limit"))
    return render(
        {**sb.faults.snapshot(), "sessions_expired": expired, "usage": sb.usage.snapshot()}
    )


@admin.route("/objects/<sobject>/fields/<field>", methods=["PATCH", "POST"])
def change_field(sobject: str, field: str) -> Response:
    sb = _sb()
    try:
        changed = sb.schema.modify_field(sobject, field, _json())
    except KeyError:
        return render(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )
    obj = sb.schema.get(sobject)
    return render({"field": changed, "lastModified": obj.last_modified.isoformat()})


@admin.route("/objects/<sobject>/validation-rules", methods=["POST"])
def add_rule(sobject: str) -> Response:
    sb = _sb()
    rule = _json()
    try:
        sb.schema.add_validation_rule(sobject, rule)
    except KeyError:
        return render(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )
    return render(rule, 201)


@admin.route("/validation-rules", methods=["DELETE"])
def clear_rules() -> Response:
    _sb().schema.clear_validation_rules()
    return Response(b"", status=204)
