"""``/__sandbox__/``: test and benchmark controls that no real org has.

* ``GET /__sandbox__/usage`` -> ``{"used", "limit", "remaining"}`` (``?detail=1``: also
  ``logins``, the OAuth token grants, and ``kinds``, the calls by method and resource);
  ``POST`` ``{"reset": true}`` / ``{"used": n}`` / ``{"limit": n}``.
* ``GET|POST /__sandbox__/faults`` (404 unless the app was created with ``faults_enabled``):
  ``{"latency_ms", "error_rate", "lock_rate", "write_latency_ms", "upload_latency_ms",
  "withhold_rate", "withhold_ms", "seed", "expire_sessions": true, "api_limit",
  "api_used"}``; ``DELETE`` clears every fault. ``write_latency_ms``: each write request waits
  this long before it runs and commits (a slow org); ``upload_latency_ms`` the same for
  writes that create files (``ContentVersion``) only. ``withhold_rate``: that share of write
  requests commit and then hold their answer ``withhold_ms`` back, or (``withhold_ms`` 0)
  close the connection unanswered.
  Pub/Sub API and Change Data Capture (same endpoint): ``"pubsub_down": true|false`` (end every
  open Subscribe with UNAVAILABLE and refuse new calls until false), ``"pubsub_expire": true``
  (every event so far leaves retention: each replay id issued so far is too old),
  ``"pubsub_retention_s": n`` (retention window, default 72 h), ``"pubsub_drop_streams": true``
  (end the open Subscribe calls once, with UNAVAILABLE), ``"pubsub_cdc": {"<object>": bool}``
  (Change Data Capture on/off per object), ``"pubsub_emit": {"entity", "changeType":
  "GAP_CREATE|GAP_UPDATE|GAP_DELETE|GAP_UNDELETE|GAP_OVERFLOW", "recordIds": [...]}`` (a gap
  or overflow event), ``"pubsub_delivered": n`` (the DailyDeliveredPlatformEvents counter),
  ``"pubsub_delivery_limit": n``. The answer has ``"pubsub": {...}`` with the state.
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
from sandbox_org.pubsub.cdc import ChangeEvents
from sandbox_org.state import NUMERIC_FAULTS

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
    return render(sb.usage.snapshot(detail=request.args.get("detail") == "1"))


@admin.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    sb = _sb()
    if not sb.config.faults_enabled:
        return render(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )
    expired = 0
    emitted: dict[str, Any] = {}
    if request.method == "DELETE":
        sb.faults.configure(**{name: 0 for name in NUMERIC_FAULTS})
        pubsub_faults(sb.events, {"pubsub_down": False})
    elif request.method == "POST":
        data = _json()
        sb.faults.configure(**{k: data[k] for k in (*NUMERIC_FAULTS, "seed") if k in data})
        if data.get("expire_sessions"):
            expired = sb.sessions.expire_all()
        sb.usage.set(used=data.get("api_used"), limit=data.get("api_limit"))
        try:
            emitted = pubsub_faults(sb.events, data)
        except (KeyError, ValueError, TypeError) as exc:
            return render([{"errorCode": "INVALID_FIELD", "message": f"pubsub fault: {exc}"}], 400)
    return render(
        {
            **sb.faults.snapshot(),
            "sessions_expired": expired,
            "usage": sb.usage.snapshot(),
            "pubsub": {**pubsub_state(sb.events), **emitted},
        }
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


def pubsub_faults(bus: ChangeEvents, data: dict[str, Any]) -> dict[str, Any]:
    """Apply the ``pubsub_*`` keys of a faults request; returns what it emitted."""
    out: dict[str, Any] = {}
    with bus.cond:
        if "pubsub_down" in data:
            bus.down = bool(data["pubsub_down"])
        if data.get("pubsub_drop_streams"):
            bus.generation += 1
        if "pubsub_retention_s" in data:
            bus.retention_seconds = float(data["pubsub_retention_s"])
        for entity, on in (data.get("pubsub_cdc") or {}).items():
            if entity not in bus.enabled:
                raise KeyError(entity)
            bus.enabled[entity] = bool(on)
        bus.allocation.set(
            delivered=data.get("pubsub_delivered"), limit=data.get("pubsub_delivery_limit")
        )
        bus.cond.notify_all()
    if data.get("pubsub_expire"):
        bus.expire_all()
    emit = data.get("pubsub_emit")
    if emit:
        seq = bus.emit_gap(emit["entity"], emit["changeType"], emit.get("recordIds"))
        out["emitted_replay_id"] = seq.to_bytes(8, "big").hex()
    return out


def pubsub_state(bus: ChangeEvents) -> dict[str, Any]:
    return {
        "down": bus.down,
        "cdc": dict(bus.enabled),
        "retention_s": bus.retention_seconds,
        "latest_replay_id": bus.latest_seq.to_bytes(8, "big").hex(),
        "delivered": bus.allocation.snapshot(),
    }
