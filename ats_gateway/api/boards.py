"""Job boards' own wire formats for applications: ``POST /v1/boards/indeed/applications``.

Indeed Apply POSTs each application as JSON to the ``postUrl`` of our Indeed feed, signed with
``X-Indeed-Signature`` (see :mod:`ats_gateway.services.applications.indeed` for the format and
its sources). No API key: the signature is the authentication (Indeed cannot send a bearer
header), and the per-IP "read" budget applies. The application then goes through the very
same intake as ``POST /v1/applications`` (the applications service: validation, dedupe,
idempotency, durable queue, delivery by a worker), with source ``Indeed`` and Indeed's
application ``id`` as its Idempotency-Key, so a resend is answered again, never delivered
twice. A bad signature is 401 before anything is parsed or stored.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for

from ats_gateway.errors import (
    BadRequest,
    Gone,
    NotFound,
    Unauthorized,
)
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import public
from ats_gateway.services.applications import (
    ResumeUpload,
    indeed,
)
from ats_gateway.services.jobs import JobsError
from ats_gateway.tasks.applications import schedule_delivery

bp = Blueprint("boards", __name__)
SCOPE = "board:indeed"


def _job_state(job_id: str) -> str:
    """open | gone | unknown (from the snapshot; no org call). Unknown when no snapshot."""
    from ats_gateway.api.feeds import feeds

    try:
        if services().jobs.index().get(job_id) is not None:
            return "open"
        return "gone" if feeds().gone_job(job_id) is not None else "missing"
    except JobsError:
        return "unknown"


@bp.post("/v1/boards/indeed/applications")
@public(accepts=("application/json",))
def indeed_apply():
    """An Indeed Apply application: verify, map, then the applications intake."""
    from ats_gateway.api.applications import service

    secret = services().settings.indeed_apply_secret
    if not secret:
        # Not configured: the endpoint does not exist here (as a feed without its key).
        raise NotFound("Indeed Apply is not enabled on this gateway.")
    body = request.get_data(cache=True)
    if not indeed.verify(secret, body, request.headers.get(indeed.SIGNATURE_HEADER)):
        raise Unauthorized(f"{indeed.SIGNATURE_HEADER} is missing or does not match the body.")
    try:
        parsed = indeed.parse(request.get_json(silent=True))
    except indeed.IndeedPayloadInvalid as exc:
        raise BadRequest(str(exc), errors=exc.errors) from None
    state = _job_state(parsed.job_id)
    if state == "gone":
        raise Gone(f"Job {parsed.job_id} is closed.")
    if state == "missing":
        raise NotFound(f"No open job with id {parsed.job_id!r}.")
    resume = ResumeUpload(*parsed.resume) if parsed.resume else None
    # Intake's refusals (409, 413, 422) become problems through the one table (api.PROBLEMS).
    accepted = service().submit(
        parsed.data,
        resume,
        idempotency_key=parsed.indeed_id or None,
        scope=SCOPE,
        via=indeed.VIA,
    )
    schedule_delivery(services().settings, services().redis)
    status_url = url_for("applications.status", application_id=accepted.id)
    headers = {"Location": status_url}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return {"id": accepted.id, "status": "received", "status_url": status_url}, 200, headers


OPERATIONS = [
    Operation(
        "POST",
        "/v1/boards/indeed/applications",
        "Receive an Indeed Apply application",
        tag="boards",
        description="Indeed Apply's `postUrl`. Authenticated by `X-Indeed-Signature`: Base64 "
        "of HMAC-SHA1 of the raw body keyed by the Indeed Apply API secret. Same intake as "
        "`POST /v1/applications` (source `Indeed`; Indeed's `id` is the idempotency key).",
        responses={200: Documented("Received and queued", schema={"type": "object"})},
        errors=(400, 401, 404, 409, 410, 413, 415, 422, 429, 503),
    ),
]


def init_app(app) -> None:
    app.register_blueprint(bp)
    services(app).metadata.add_operations(OPERATIONS)
