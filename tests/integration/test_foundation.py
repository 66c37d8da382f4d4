"""The foundation through its HTTP edge: health, readiness, errors, metrics, a real worker."""

from __future__ import annotations

import logging

import pytest
from flask import Blueprint

from ats_gateway import create_app


def test_healthz_is_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_names_redis_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["redis"]["status"] == "ok"


def test_readyz_is_503_when_redis_is_unreachable(base_settings):
    from ats_gateway.embedded import free_port

    app = create_app(base_settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["redis"]["status"] == "fail"


def test_unknown_path_is_problem_json(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert {"type", "title", "status", "instance"} <= body.keys()
    assert body["status"] == 404
    assert body["instance"].startswith("/nope")


def test_wrong_method_is_problem_json_with_allow(client):
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_request_id_is_echoed_or_made(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abcdef12-proxy"})
    assert response.headers["X-Request-Id"] == "abcdef12-proxy"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["X-Request-Id"] != "bad id with spaces"
    assert len(made.headers["X-Request-Id"]) == 32


@pytest.fixture
def failing_app(base_settings):
    app = create_app(base_settings)
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail: password=hunter2")

    @bp.post("/echo")
    def echo():
        from flask import request

        return {"size": len(request.get_data())}

    app.register_blueprint(bp)
    return app


def test_unhandled_error_is_500_problem_without_details(failing_app, caplog):
    with caplog.at_level(logging.ERROR):
        response = failing_app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    request_id = response.headers["X-Request-Id"]
    assert response.json["request_id"] == request_id
    # the cause is logged, with the request id, for the operator
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and getattr(logged[0], "request_id", None) == request_id


def test_body_too_large_is_413_problem(failing_app, base_settings):
    big = b"x" * (base_settings.max_body_bytes + 1)
    response = failing_app.test_client().post(
        "/echo", data=big, content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_metrics_count_requests_per_endpoint(client):
    client.get("/healthz")
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ats_gateway_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text
    assert "ats_gateway_http_request_duration_seconds_bucket" in text


def test_problem_types_are_documented(client):
    body = client.get("/nope").json
    assert body["type"] == "about:blank"
    doc = client.get("/problems/validation-error")
    assert doc.status_code == 200
    assert doc.json["title"] == "Validation Failed"


def test_task_round_trip_through_real_worker(celery_worker, celery_app):
    from ats_gateway.tasks.system import ping

    result = ping.delay("hello").get(timeout=30)
    assert result["payload"] == "hello"
    # it ran in the worker process, not in the test process
    assert result["worker_pid"] == celery_worker.pid
