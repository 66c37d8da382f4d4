"""`GET /v1/receipts/{token}`: a candidate's receipt, as JSON or as a small HTML page.

The URL is a capability (see ``services/applications/receipts.py``): no key, and nothing on
it beyond the first name, job title and status. HTML for browsers (``Accept: text/html``),
JSON otherwise; ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` so the token
does not travel on.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template_string, request, url_for

from ats_gateway.errors import NotFound, ServiceUnavailable
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import public
from ats_gateway.services.applications.receipts import Receipts

bp = Blueprint("receipts", __name__)

LABELS = {
    "queued": "Received, waiting to be passed on",
    "delivering": "Being passed on to the recruiter",
    "delivered": "Delivered to the recruiter",
    "duplicate": "Already received earlier",
    "failed": "Could not be delivered",
}
PENDING = ("queued", "delivering")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if pending %}<meta http-equiv="refresh" content="3">{% endif %}
<title>Your application: {{ label }}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
.status{font-size:1.25rem;font-weight:600}</style></head>
<body><main>
<h1>Hello {{ r.first_name or "there" }}</h1>
<p>Your application{% if r.job_title %} for <strong>{{ r.job_title }}</strong>{% endif %}:</p>
<p class="status" id="receipt-status" role="status" aria-live="polite"
   data-status="{{ r.status }}">{{ label }}</p>
<p><small>Submitted {{ r.submitted_at }}; last change {{ r.updated_at }}.
{% if pending %}This page refreshes itself.{% endif %}</small></p>
</main></body></html>"""

OPERATIONS = [
    Operation(
        "GET",
        "/v1/receipts/{token}",
        "A candidate's receipt",
        tag="applications",
        description="The `receipt_url` of a 202 to a publishable-key submission: the status, "
        "first name and job title of that one application, as JSON or (Accept: text/html) a "
        "page. Expires with the status record.",
        path_params={"token": "from `receipt_url`"},
        responses={200: Documented("The receipt")},
        errors=(404, 429),
    )
]


@bp.record_once
def _document(state) -> None:
    services(state.app).metadata.add_operations(OPERATIONS)


def receipts(app: Flask | None = None) -> Receipts:
    found = services(app).receipts
    if found is None:
        raise ServiceUnavailable("Receipts need the gateway's secret key (ATS_GATEWAY_SECRET_KEY).")
    return found


def receipt_url(application_id: str) -> str:
    """Absolute (a career site on another origin links to it)."""
    base = current_app.config["SETTINGS"].public_url.rstrip("/")
    return base + url_for("receipts.show", token=receipts().token(application_id))


@bp.get("/v1/receipts/<token>")
@public()
def show(token: str):
    view = receipts().open(token)
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if view is None:
        raise NotFound("This receipt link is not valid or has expired.")
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if (
        best == "text/html"
        and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]
    ):
        page = render_template_string(
            PAGE,
            r=view,
            label=LABELS.get(view["status"], view["status"]),
            pending=view["status"] in PENDING,
        )
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return page, 200, {**headers, "Content-Type": "text/html; charset=utf-8"}
    # A capability without cookies: any career site's page may read it.
    headers["Access-Control-Allow-Origin"] = "*"
    return view, 200, headers
