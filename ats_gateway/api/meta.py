"""Operational endpoints: liveness, readiness, Prometheus metrics; and `/robots.txt`.

`/healthz` and the plain ready flag of `/readyz` are public (load balancers); the checks
behind it (org id, instance URL, API usage, dead letters) and `/metrics` are for operators:
a key with the `operator` (or `admin`) scope, or a client address inside
`ATS_GATEWAY_OPERATOR_NETWORKS` (e.g. the monitoring network; empty by default; `ats-gateway
dev` sets loopback). The address rule keeps readiness detail readable when Redis, and so the
key store, is down.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from ats_gateway.errors import Forbidden, Unauthorized
from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import client_ip
from ats_gateway.security.access import authenticate

bp = Blueprint("meta", __name__)

ROBOTS = Operation(
    "GET",
    "/robots.txt",
    "Crawler rules, naming the sitemap",
    tag="feeds",
    description="RFC 9309. Keeps crawlers out of `/v1/`, `/feeds/` and `/feedback/`; names "
    "`/sitemap.xml` when the job pages are on this host (else the career site's robots.txt "
    "must name it: cross-submission).",
    responses={200: Documented("The rules", schema={"type": "string"}, media_type="text/plain")},
)
bp.record_once(lambda state: services(state.app).metadata.add_operations([ROBOTS]))


@bp.get("/healthz")
def healthz():
    """The process is alive and serving; says nothing about its dependencies."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready or not (200/503) for anyone; each dependency by name for an operator."""
    ready, checks = services().readiness.run()
    body = {"status": "ok" if ready else "unavailable"}
    if _operator():
        body["checks"] = checks
    return body, 200 if ready else 503


@bp.get("/robots.txt")
def robots_txt():
    """For crawlers (RFC 9309): the API and the token-protected feeds are not pages; the
    sitemap is named (https://www.sitemaps.org/protocol.html#submit_robots) when the job
    pages it lists are on this host. When they are on the career site's host, that host's
    robots.txt must name it instead (cross-submission; the README says how)."""
    settings = current_app.config["SETTINGS"]
    public = settings.public_url.rstrip("/")
    lines = ["User-agent: *", "Disallow: /v1/", "Disallow: /feeds/", "Disallow: /feedback/", ""]
    template = settings.job_page_url_template
    if not template or urlsplit(template).netloc == urlsplit(public).netloc:
        lines.append(f"Sitemap: {public}/sitemap.xml")
    else:
        lines.append(
            f"# The job pages are on {urlsplit(template).netloc}: its robots.txt names "
            f"{public}/sitemap.xml"
        )
    response = Response("\n".join(lines) + "\n", mimetype="text/plain")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.get("/metrics")
def metrics():
    if not _operator():
        if "Authorization" not in request.headers:
            raise Unauthorized(
                "Metrics are for operators: send a key with the 'operator' scope.",
                headers={"WWW-Authenticate": 'Bearer realm="ats-gateway"'},
            )
        raise Forbidden("This key lacks the scope 'operator'.", required_scope="operator")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn every worker writes its own samples; answer for all of them.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in services().metrics.shared:  # read from Redis: the same in every worker
            registry.register(collector)
    else:
        registry = services().metrics.registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _operator() -> bool:
    """An operator's network address, or an operator's key."""
    networks = current_app.config["SETTINGS"].operator_networks
    if networks:
        try:
            address = ipaddress.ip_address(client_ip().split("%")[0])
        except ValueError:
            address = None
        if address is not None and any(
            address in ipaddress.ip_network(n.strip(), strict=False)
            for n in networks.split(",")
            if n.strip()
        ):
            return True
    if "Authorization" not in request.headers:
        return False
    authenticate()
    key = getattr(g, "api_key", None)
    return key is not None and key.allows("operator")
