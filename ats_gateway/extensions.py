"""Process-wide resources bound to the app in `create_app`: Redis, metrics, readiness checks.

Nothing here connects at import time: `init_app` stores lazily connecting clients on the app.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

#: A check returns (state, details); state is "ok", "degraded" (serving, but look) or "fail".
ReadinessCheck = Callable[[], tuple[str, dict[str, Any]]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def get_redis(app: Flask) -> redis.Redis:
    return app.extensions["redis"]


def init_redis(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    app.extensions["redis"] = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        decode_responses=False,
    )


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


def init_readiness(app: Flask) -> None:
    readiness = Readiness()

    def redis_check() -> tuple[str, dict[str, Any]]:
        started = time.perf_counter()
        get_redis(app).ping()
        return "ok", {"latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    readiness.add("redis", redis_check)
    app.extensions["readiness"] = readiness


def get_readiness(app: Flask) -> Readiness:
    return app.extensions["readiness"]


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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


def get_metrics(app: Flask) -> Metrics:
    return app.extensions["metrics"]


def init_request_tracking(app: Flask) -> None:
    """Request ids (`X-Request-Id`, accepted from a proxy when well-formed) and metrics."""
    metrics = Metrics()
    app.extensions["metrics"] = metrics

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
