"""Flask glue of the process-wide pieces: the typed accessor of the app's :class:`Services`,
request ids and HTTP metrics, and the readiness and metrics containers the composition root
fills (:mod:`ats_gateway.composition`).

Nothing here connects at import time.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

if TYPE_CHECKING:  # the accessor is typed; importing composition would pull every layer in
    from ats_gateway.composition import Services

#: A check returns (state, details); state is "ok", "degraded" (serving, but look) or "fail".
ReadinessCheck = Callable[[], tuple[str, dict[str, Any]]]

#: Where `create_app` stores the one :class:`Services` of the app.
SERVICES = "services"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def services(app: Flask | None = None) -> Services:
    """The app's long-lived pieces (built once by ``composition.build_services``)."""
    return (app or current_app).extensions[SERVICES]


def get_redis(app: Flask | None = None) -> redis.Redis:
    return services(app).redis


@dataclass
class Readiness:
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    def add(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    def run(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        results: dict[str, dict[str, Any]] = {}
        ready = True
        for name, check in self.checks.items():
            try:
                state, details = check()
            except Exception as exc:  # a failing check is a finding, not a crash
                state, details = "fail", {"error": type(exc).__name__}
            results[name] = {"status": state, **details}
            ready = ready and state != "fail"
        return ready, results


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Collectors that read shared state (Redis) at scrape time: under gunicorn's
        # multiprocess mode /metrics adds them to the merged registry (api/meta.py).
        self.shared: list[Any] = []
        self.requests = Counter(
            "ats_gateway_http_requests_total",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ats_gateway_http_request_duration_seconds",
            "HTTP request latency by endpoint.",
            ["endpoint", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


def init_request_tracking(app: Flask) -> None:
    """Request ids (`X-Request-Id`, accepted from a proxy when well-formed) and metrics."""
    metrics = services(app).metrics

    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
        # Label values stay a bounded set: any other method is "OTHER", not a new series.
        method = request.method if request.method in _METHODS else "OTHER"
        started = getattr(g, "request_started", None)
        if started is not None:
            metrics.latency.labels(endpoint, method).observe(time.perf_counter() - started)
        metrics.requests.labels(endpoint, method, str(response.status_code)).inc()
        return response
