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
import requests
from stack import demo_connection

from ats_gateway import create_app
from ats_gateway.config import Settings
from ats_gateway.extensions import services
from ats_gateway.metadata import build_metadata
from ats_gateway.metadata.cache import ORG
from ats_gateway.metadata.cli import cmd_doctor

FEEDBACK = "bpats__Interview_Feedback__c"


@pytest.fixture(scope="module")
def sandbox_options():
    return {}  # the sandbox's defaults


@pytest.fixture(scope="module")
def stack_overrides():
    # Describes fetched from this sandbox live in the module's own Redis database (redis_db),
    # never in the session's, whose other gateway apps serve snapshots.
    return {"describe_local_ttl_seconds": 0.0}


def as_user(settings: Settings, url: str, job_portal_user: str) -> Settings:
    """`settings` with the job_portal connection logging in as another demo user."""
    connection = demo_connection(url, job_portal_user, name="job_portal")
    return settings.replace(connections={**settings.connections, "job_portal": connection})


def api_calls(url: str) -> int:
    return requests.get(f"{url}/__sandbox__/usage", timeout=10).json()["used"]


def add_picklist_value(url: str, sobject: str, field: str, value: str) -> None:
    response = requests.patch(
        f"{url}/__sandbox__/objects/{sobject}/fields/{field}",
        json={"add_picklist_values": [value]},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_picklist_value_added_in_the_org_is_accepted_after_refresh(sandbox_org, stack_settings):
    app = create_app(stack_settings)
    metadata = services(app).metadata
    assert metadata.entry("interview_feedback").source == ORG
    client = app.test_client()
    value = f"Hire Later {uuid.uuid4().hex[:4]}"
    payload = {"recommendation": value}
    assert metadata.errors("interview_feedback", payload)[0]["code"] == "not_allowed"

    add_picklist_value(sandbox_org.url, FEEDBACK, "bpats__Recommendation__c", value)
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


def test_unchanged_describes_are_revalidated_not_refetched(
    sandbox_org, stack_settings, stack_redis
):
    metadata = build_metadata(stack_settings, stack_redis)
    # Our clock is the org's here; without the skew margin, and with the last change in the
    # org (the test above) more than a second ago at Last-Modified's one-second precision.
    metadata.cache.clock_skew = 0.0
    time.sleep(2.1)
    first = {e.sobject: e for e in metadata.refresh()}
    used = api_calls(sandbox_org.url)
    again = {e.sobject: e for e in metadata.refresh()}
    # nothing changed: one `GET /sobjects` If-Modified-Since per connection, not 11 describes
    assert api_calls(sandbox_org.url) - used == 2
    for name, entry in again.items():
        assert entry.source == ORG and entry.version == first[name].version
        assert entry.fetched_at == first[name].fetched_at  # 304: content kept, only re-checked
        assert entry.checked_at >= first[name].checked_at


def test_doctor_names_the_missing_permission_set(sandbox_org, stack_settings, stack_redis):
    out = io.StringIO()
    good = build_metadata(stack_settings, stack_redis)
    code = cmd_doctor(argparse.Namespace(connection=[], json=False), metadata=good, out=out)
    assert code == 0, out.getvalue()

    settings = as_user(stack_settings, sandbox_org.url, "job_portal_no_intake")
    stack_redis.flushdb()  # another user: its own token and describes (they show its grants)
    metadata = build_metadata(settings, stack_redis)
    out = io.StringIO()
    code = cmd_doctor(argparse.Namespace(connection=[], json=False), metadata=metadata, out=out)
    text = out.getvalue()
    assert code == 1, text
    assert "connection job_portal: missing create on Contact" in text
    assert "ATS Gateway Candidate Intake" in text
    assert "interview_feedback" not in [
        line.split()[2] for line in text.splitlines() if line.startswith("MISSING")
    ]


def test_start_up_preflight_and_the_doctor_command(
    sandbox_org, stack_settings, stack_redis, caplog
):
    stack_redis.flushdb()
    settings = as_user(stack_settings, sandbox_org.url, "job_portal_no_intake")
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
    stack_redis.flushdb()
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
