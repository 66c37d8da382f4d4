"""Endpoints of the security layer itself: the form token browsers fetch before a submit."""

from __future__ import annotations

from flask import Blueprint

from ats_gateway.security.abuse import form_token_info
from ats_gateway.security.access import require_scope

bp = Blueprint("security", __name__)


@bp.get("/v1/form-token")
@require_scope("applications:write", budget="read")
def form_token():
    """A signed form token plus the honeypot field name and the minimum fill time."""
    return form_token_info(), 200, {"Cache-Control": "no-store"}
