"""No key, form token or candidate e-mail reaches any log line, on any path through security."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, g, request

from ats_gateway import create_app
from ats_gateway.security import (
    PUBLISHABLE,
    SECRET,
    enforce_browser_submission,
    issue_form_token,
    key_store,
    require_scope,
)

ORIGIN = "https://logs.example.test"
EMAIL = "ada.lovelace@example.com"


def test_no_secret_in_any_log_line(base_settings, caplog, capsys):
    app = create_app(base_settings.replace(log_level="DEBUG"))
    bp = Blueprint("log_test", __name__)

    @bp.post("/l/apply")
    @require_scope("applications:write")
    def apply():
        data = enforce_browser_submission(request.get_json())
        logging.getLogger("ats_gateway.test").info("accepted application with %d fields", len(data))
        return {"ok": True}, 202

    app.register_blueprint(bp)
    store = key_store(app)
    pk_key, pk = store.create(
        kind=PUBLISHABLE, name="site", scopes=["applications:write"], origins=[ORIGIN]
    )
    _, sk = store.create(
        kind=SECRET, name="board", scopes=["applications:write"], rate_limit="2/minute"
    )
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = "10.200.0.1"
    browser = {"Authorization": f"Bearer {pk}", "Origin": ORIGIN}

    with caplog.at_level(logging.DEBUG):
        served = http.get("/v1/form-token", headers=browser).json["form_token"]
        with app.test_request_context():
            g.api_key = pk_key
            aged = issue_form_token(issued_at=time.time() - 30)
        body = {"email": EMAIL, "first_name": "Ada", "form_token": aged}
        statuses = [
            http.post("/l/apply", json=body, headers=browser).status_code,  # accepted
            http.post(
                "/l/apply", json={**body, "form_token": served}, headers=browser
            ).status_code,  # too fast
            http.post("/l/apply", json={**body, "homepage": "x"}, headers=browser).status_code,
            http.post(
                "/l/apply", json=body, headers={**browser, "Origin": "https://evil.test"}
            ).status_code,
            http.post(
                "/l/apply", json=body, headers={"Authorization": f"Bearer {sk}x"}
            ).status_code,
        ]
        statuses += [
            http.post("/l/apply", json=body, headers={"Authorization": f"Bearer {sk}"}).status_code
            for _ in range(3)
        ]
    assert statuses == [202, 400, 400, 403, 401, 202, 202, 429]

    secrets = [pk, sk, pk.rsplit("_", 1)[-1], sk.rsplit("_", 1)[-1], served, aged, EMAIL]
    raw = [record.getMessage() for record in caplog.records]
    assert raw, "expected some log lines (the test view logs one)"
    formatted = caplog.text + capsys.readouterr().err
    for secret in secrets:
        assert not any(secret in line for line in raw)
        assert secret not in formatted
