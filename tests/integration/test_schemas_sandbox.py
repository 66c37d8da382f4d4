"""Against the sandbox org over HTTP, as against a real org: the describe cache follows the
org (a picklist value added there is accepted after refresh, and published in JSON Schema and
OpenAPI), the Celery refresh task does the same from a worker, and `ats-gateway doctor` names a
missing permission set."""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
import requests

from ats_gateway import create_app
from ats_gateway.config import ConnectionConfig, Settings
from ats_gateway.extensions import services
from ats_gateway.metadata import build_metadata
from ats_gateway.metadata.cache import ORG
from ats_gateway.metadata.cli import cmd_doctor
from sandbox_org import server as sandbox_server
from sandbox_org.app import create_app as create_sandbox
from sandbox_org.seed import DEMO_CREDENTIALS

FEEDBACK = "bpats__Interview_Feedback__c"


@pytest.fixture(scope="module")
def own_redis(redis_url):
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DB}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def sandbox(own_redis):
    handle = sandbox_server.start_in_thread(create_sandbox())
    yield handle
    handle.stop()


def connection(name: str, url: str, user: str | None = None) -> ConnectionConfig:
    creds = DEMO_CREDENTIALS[user or name]
    return ConnectionConfig(
        name=name,
        login_url=url,
        auth_flow="password",
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        username=creds["username"],
        password=creds["password"],
        security_token=creds["security_token"],
    )


#: A Redis database of its own: describes fetched from this sandbox must not reach the session's
#: other gateway apps, which share the session Redis and serve snapshots.
DB = 11


def settings_for(base: Settings, url: str, job_portal_user: str = "job_portal") -> Settings:
    return base.replace(
        redis_url=base.redis_url.rsplit("/", 1)[0] + f"/{DB}",
        connections={
            "job_portal": connection("job_portal", url, job_portal_user),
            "interview_feedback": connection("interview_feedback", url),
        },
        describe_local_ttl_seconds=0.0,
    )


def api_calls(url: str) -> int:
    return requests.get(f"{url}/__sandbox__/usage", timeout=10).json()["used"]


def add_picklist_value(url: str, sobject: str, field: str, value: str) -> None:
    response = requests.patch(
        f"{url}/__sandbox__/objects/{sobject}/fields/{field}",
        json={"add_picklist_values": [value]},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_picklist_value_added_in_the_org_is_accepted_after_refresh(sandbox, base_settings):
    app = create_app(settings_for(base_settings, sandbox.url))
    metadata = services(app).metadata
    assert metadata.entry("interview_feedback").source == ORG
    client = app.test_client()
    value = f"Hire Later {uuid.uuid4().hex[:4]}"
    payload = {"recommendation": value}
    assert metadata.errors("interview_feedback", payload)[0]["code"] == "not_allowed"

    add_picklist_value(sandbox.url, FEEDBACK, "bpats__Recommendation__c", value)
    assert metadata.errors("interview_feedback", payload)  # until the describe is refreshed

    refreshed = {e.sobject: e for e in metadata.refresh()}
    assert refreshed[FEEDBACK].source == ORG and refreshed[FEEDBACK].error is None
    assert metadata.validate("interview_feedback", payload) == payload
    schema = client.get("/v1/schemas/interview_feedback").json
    assert value in schema["properties"]["recommendation"]["enum"]
    openapi = client.get("/v1/openapi.json").json
    component = openapi["components"]["schemas"]["InterviewFeedbackInput"]
    assert value in component["properties"]["recommendation"]["enum"]
    ready = client.get("/readyz").json["checks"]["describe"]
    assert ready["status"] == "ok" and ready["source"] == ORG


def test_unchanged_describes_are_revalidated_not_refetched(sandbox, base_settings, own_redis):
    metadata = build_metadata(settings_for(base_settings, sandbox.url), own_redis)
    # Our clock is the org's here; without the skew margin, and with the last change in the
    # org (the test above) more than a second ago at Last-Modified's one-second precision.
    metadata.cache.clock_skew = 0.0
    time.sleep(2.1)
    first = {e.sobject: e for e in metadata.refresh()}
    used = api_calls(sandbox.url)
    again = {e.sobject: e for e in metadata.refresh()}
    # nothing changed: one `GET /sobjects` If-Modified-Since per connection, not 11 describes
    assert api_calls(sandbox.url) - used == 2
    for name, entry in again.items():
        assert entry.source == ORG and entry.version == first[name].version
        assert entry.fetched_at == first[name].fetched_at  # 304: content kept, only re-checked
        assert entry.checked_at >= first[name].checked_at


def test_doctor_names_the_missing_permission_set(sandbox, base_settings, own_redis):
    out = io.StringIO()
    good = build_metadata(settings_for(base_settings, sandbox.url), own_redis)
    code = cmd_doctor(argparse.Namespace(connection=[], json=False), metadata=good, out=out)
    assert code == 0, out.getvalue()

    settings = settings_for(base_settings, sandbox.url, job_portal_user="job_portal_no_intake")
    own_redis.flushdb()  # another user: its own token and describes (they show its grants)
    metadata = build_metadata(settings, own_redis)
    out = io.StringIO()
    code = cmd_doctor(argparse.Namespace(connection=[], json=False), metadata=metadata, out=out)
    text = out.getvalue()
    assert code == 1, text
    assert "connection job_portal: missing create on Contact" in text
    assert "ATS Gateway Candidate Intake" in text
    assert "interview_feedback" not in [
        line.split()[2] for line in text.splitlines() if line.startswith("MISSING")
    ]


def test_start_up_preflight_and_the_doctor_command(sandbox, base_settings, own_redis, caplog):
    own_redis.flushdb()
    settings = settings_for(base_settings, sandbox.url, job_portal_user="job_portal_no_intake")
    with caplog.at_level(logging.ERROR, logger="ats_gateway.metadata"):
        app = create_app(settings)
    assert any(
        "permission preflight: connection job_portal: missing create on Contact" in r.message
        for r in caplog.records
    )
    ready = app.test_client().get("/readyz").json["checks"]["permissions"]
    assert ready["status"] == "degraded"
    assert any("ATS Gateway Candidate Intake" in m for m in ready["missing"])

    env = {**os.environ, **settings.to_env()}
    own_redis.flushdb()
    done = subprocess.run(
        [sys.executable, "-m", "ats_gateway.cli", "doctor", "--connection", "job_portal"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MISSING connection job_portal: missing create on Contact" in done.stdout
    assert "ATS Gateway Candidate Intake" in done.stdout
