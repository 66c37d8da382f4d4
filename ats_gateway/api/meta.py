"""Operational endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ats_gateway.extensions import services

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive and serving; says nothing about its dependencies."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Each dependency by name with its state; 503 when any is failing."""
    ready, checks = services().readiness.run()
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return body, 200 if ready else 503


@bp.get("/metrics")
def metrics():
    registry = services().metrics.registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
