"""`/v1/webhooks`: a server key registers the URLs that hear about its own applications.

Scope ``webhooks:manage`` (a publishable key cannot hold it). The signing secret is in the
201 answer only; listing never shows it. Events and delivery: ``ats_gateway.services.webhooks``.
"""

from __future__ import annotations

from flask import Blueprint, g, request

from ats_gateway.errors import BadRequest, NotFound, ValidationFailed
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import require_scope
from ats_gateway.services.webhooks import EVENT_TYPES, InvalidEndpoint
from ats_gateway.tasks.webhooks import runtime

bp = Blueprint("webhooks", __name__)

ENDPOINT = {
    "type": "object",
    "required": ["id", "url", "events", "created_at", "status"],
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
        "created_at": {"type": "number"},
        "status": {
            "type": "string",
            "enum": ["active", "disabled"],
            "description": "disabled: the receiver answered 410 Gone, or the key was revoked; "
            "no event is sent to it any more",
        },
        "disabled_at": {"type": "number"},
        "disabled_reason": {"type": "string"},
        "secret": {
            "type": "string",
            "description": "whsec_...: verifies the `webhook-signature` header (Standard "
            "Webhooks). Shown once, in the 201 answer.",
        },
    },
}
CREATE = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "maxLength": 2048,
            "description": "https (http only for 127.0.0.1 in dev), printable ASCII, resolving "
            "only to public addresses; one URL once per key, at most 10 endpoints (422 `url` "
            "`duplicate` / `too_many`)",
        },
        "events": {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "description": "default: every event type",
        },
    },
}
OPERATIONS = [
    Operation(
        "POST",
        "/v1/webhooks",
        "Register a webhook endpoint",
        tag="webhooks",
        description="Events about the applications this key submitted are POSTed to `url`, "
        "signed by the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`, "
        "`webhook-signature`), retried with backoff for at least 24 h.",
        responses={201: Documented("Registered; the secret is shown only here", schema=ENDPOINT)},
        errors=(400, 401, 403, 415, 422, 429),
        security=True,
        extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": CREATE}}}
        },
    ),
    Operation(
        "GET",
        "/v1/webhooks",
        "This key's webhook endpoints",
        tag="webhooks",
        responses={200: Documented("The endpoints (without secrets)")},
        errors=(401, 403, 429),
        security=True,
    ),
    Operation(
        "DELETE",
        "/v1/webhooks/{endpoint_id}",
        "Remove a webhook endpoint",
        tag="webhooks",
        path_params={"endpoint_id": "the `id` of the 201 answer"},
        responses={204: Documented("Removed")},
        errors=(401, 403, 404, 429),
        security=True,
    ),
]


@bp.record_once
def _document(state) -> None:
    services(state.app).metadata.add_operations(OPERATIONS)


def _owner() -> str:
    return f"key:{g.api_key.id}"


@bp.post("/v1/webhooks")
@require_scope("webhooks:manage")
def create():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    try:
        endpoint = runtime().registry.create(_owner(), body.get("url"), body.get("events"))
    except InvalidEndpoint as exc:
        raise ValidationFailed(
            [{"field": exc.field, "code": exc.code, "message": exc.message}]
        ) from None
    # the secret is in this answer only: no cache may keep it ([21])
    return (
        {**endpoint.to_public_dict(), "secret": endpoint.secret},
        201,
        {"Cache-Control": "no-store"},
    )


@bp.get("/v1/webhooks")
@require_scope("webhooks:manage")
def listing():
    endpoints = runtime().registry.list(_owner())
    return (
        {"endpoints": [e.to_public_dict() for e in endpoints]},
        200,
        {"Cache-Control": "no-store"},
    )


@bp.delete("/v1/webhooks/<endpoint_id>")
@require_scope("webhooks:manage")
def remove(endpoint_id: str):
    if not runtime().registry.remove(endpoint_id, owner=_owner()):
        raise NotFound(f"No webhook endpoint {endpoint_id!r} for this key.")
    return "", 204
