"""Applications end to end: the gateway's HTTP API, a real Redis, a real Celery worker process
and the sandbox org over HTTP. Counts are read back from the org, never from our own records.

The module runs the shared stack (tests/stack.py) on a Redis database of its own (so the
session's worker, which has no org connection, never sees these deliveries) with short retry
delays and leases.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections import Counter
from types import SimpleNamespace

import pytest
import requests
from stack import FAST_DELIVERY, secret_headers, set_faults, wait_for
from stack import api_calls as sandbox_api_calls

from ats_gateway.services.delivery import Outbox
from ats_gateway.tasks import applications as tasks

APPLICATION = "bpats__Job_Board_Application__c"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def stack_connections():
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides():
    return {
        **FAST_DELIVERY,
        "rate_limit_ip_submit": "100000/minute",
        "rate_limit_key_submit": "100000/minute",
    }


@pytest.fixture(scope="module")
def stack(stack_settings, gateway_app, stack_redis, worker, admin, sandbox_org, open_jobs):
    return SimpleNamespace(
        settings=stack_settings,
        app=gateway_app,
        http=gateway_app.test_client(),
        headers=secret_headers(
            stack_redis, ["applications:write", "applications:read"], name="job board"
        ),
        redis=stack_redis,
        outbox=Outbox.from_settings(stack_redis, "applications", stack_settings),
        worker=worker,
        admin=admin,
        sandbox=sandbox_org,
        jobs=open_jobs,
    )


def api_calls(stack) -> int:
    return sandbox_api_calls(stack.sandbox)


def faults(stack, **settings) -> None:
    set_faults(stack.sandbox, **settings)


def org_rows(stack, soql: str) -> list[dict]:
    return [r for page in stack.admin.query(soql).pages() for r in page.records]


def candidate(job: str, tag: str, i: int = 0, **extra) -> dict:
    return {
        "job_id": job,
        "first_name": "Ada",
        "last_name": f"Lovelace {i}",
        "email": f"ada.{i}@{tag}.example.com",
        "consent": True,
        "source": "Job Board",
        **extra,
    }


def status(stack, application_id: str) -> dict:
    response = stack.http.get(f"/v1/applications/{application_id}", headers=stack.headers)
    assert response.status_code == 200, response.json
    return response.json


def wait_settled(stack, ids, timeout: float = 40.0) -> dict[str, dict]:
    """Wait until no id is queued or delivering; returns every final status."""
    final: dict[str, dict] = {}

    def done():
        for application_id in ids:
            if application_id in final:
                continue
            record = stack.outbox.get(application_id)
            if record and record["status"] not in ("queued", "delivering"):
                final[application_id] = record
        return len(final) == len(ids)

    wait_for(done, timeout, 0.2, what=f"{len(ids)} applications to settle")
    return final


def wait_idle(stack) -> None:
    wait_for(
        lambda: stack.outbox.counts()["queued"] == 0 and stack.outbox.counts()["delivering"] == 0,
        30,
        what="an idle outbox",
    )


def apps_by_email(stack, tag: str) -> Counter:
    soql = f"SELECT bpats__Email__c FROM {APPLICATION} WHERE bpats__Email__c LIKE '%@{tag}.%'"
    rows = org_rows(stack, soql)
    return Counter(r["bpats__Email__c"].lower() for r in rows)


def submit_batch(stack, items, **headers):
    response = stack.http.post(
        "/v1/applications/batch", json={"applications": items}, headers={**stack.headers, **headers}
    )
    assert response.status_code == 207, response.json
    return response.json


# --------------------------------------------------------------------------- cost first (idle org)


def test_batch_of_1000_with_10_invalid_costs_at_most_5_calls(stack):
    wait_idle(stack)
    tag = "b" + uuid.uuid4().hex[:8]
    items = [candidate(stack.jobs[0], tag, i) for i in range(1000)]
    bad = list(range(5, 1000, 100))
    for n, i in enumerate(bad):
        items[i] = (
            {**items[i], "email": "not-an-email"} if n % 2 else {**items[i], "first_name": "x" * 41}
        )
    before = api_calls(stack)
    body = submit_batch(stack, items)
    assert body["accepted"] == 990 and body["rejected"] == 10
    rejected = [o for o in body["items"] if o["status"] != 202]
    assert [o["index"] for o in rejected] == bad
    assert {o["errors"][0]["field"] for o in rejected} == {"email", "first_name"}
    ids = [o["id"] for o in body["items"] if o["status"] == 202]
    final = wait_settled(stack, ids)
    assert Counter(r["status"] for r in final.values()) == {"delivered": 990}
    calls = api_calls(stack) - before
    assert calls <= 5, f"{calls} API calls for 990 applications"
    counts = apps_by_email(stack, tag)
    assert len(counts) == 990 and set(counts.values()) == {1}


def test_1000_with_half_existing_contacts_costs_at_most_5_calls(stack):
    wait_idle(stack)
    tag = "h" + uuid.uuid4().hex[:8]
    existing = [
        {"FirstName": "Ada", "LastName": f"Known {i}", "Email": f"ada.{i}@{tag}.example.com"}
        for i in range(0, 1000, 2)
    ]
    outcomes = stack.admin.bulk_create("Contact", existing)
    known = {c["Email"]: o.id for c, o in zip(existing, outcomes, strict=True)}
    assert all(o.success for o in outcomes)
    before = api_calls(stack)
    body = submit_batch(stack, [candidate(stack.jobs[1], tag, i) for i in range(1000)])
    ids = [o["id"] for o in body["items"]]
    final = wait_settled(stack, ids)
    calls = api_calls(stack) - before
    assert calls <= 5, f"{calls} API calls"
    assert Counter(r["status"] for r in final.values()) == {"delivered": 1000}
    for i in (0, 2, 998):
        assert final[ids[i]]["result"]["contact_id"] == known[f"ada.{i}@{tag}.example.com"]
    contacts = org_rows(stack, f"SELECT Email FROM Contact WHERE Email LIKE '%@{tag}.example.com'")
    assert len(contacts) == 1000  # 500 reused, 500 created, none twice


# --------------------------------------------------------------------------- single submissions


def test_json_application_is_delivered_with_contact(stack):
    tag = "j" + uuid.uuid4().hex[:8]
    response = stack.http.post(
        "/v1/applications",
        json=candidate(stack.jobs[0], tag, phone="+1 555 0100"),
        headers=stack.headers,
    )
    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "queued"
    assert response.headers["Location"] == body["status_url"] == f"/v1/applications/{body['id']}"
    wait_settled(stack, [body["id"]])
    view = status(stack, body["id"])
    assert view["status"] == "delivered"
    app = org_rows(
        stack,
        f"SELECT Id, bpats__Contact__c, bpats__Job__c, bpats__Phone__c FROM {APPLICATION} "
        f"WHERE Id = '{view['salesforce_id']}'",
    )[0]
    assert app["bpats__Contact__c"] == view["contact_id"]
    assert app["bpats__Job__c"] == stack.jobs[0]
    contact = org_rows(
        stack, f"SELECT Email, LastName FROM Contact WHERE Id = '{view['contact_id']}'"
    )[0]
    assert contact["Email"] == f"ada.0@{tag}.example.com"
    # candidate data left Redis; the status stays (30 days)
    assert stack.outbox.payload(body["id"]) is None
    assert 0 < stack.redis.ttl(stack.outbox.item_key(body["id"])) <= 30 * 86400


def test_multipart_application_with_resume_links_the_file(stack):
    tag = "m" + uuid.uuid4().hex[:8]
    form = {
        k: str(v).lower() if isinstance(v, bool) else v
        for k, v in candidate(stack.jobs[2], tag).items()
    }
    form["resume"] = (io.BytesIO(PDF), "../../cv final.pdf")
    response = stack.http.post(
        "/v1/applications", data=form, headers=stack.headers, content_type="multipart/form-data"
    )
    assert response.status_code == 202, response.json
    application_id = response.json["id"]
    wait_settled(stack, [application_id])
    view = status(stack, application_id)
    assert view["status"] == "delivered", view
    assert "resume_id" in view, view
    version = org_rows(
        stack,
        f"SELECT Id, Title, PathOnClient, FirstPublishLocationId FROM ContentVersion "
        f"WHERE Id = '{view['resume_id']}'",
    )[0]
    assert version["FirstPublishLocationId"] == view["salesforce_id"]
    assert version["PathOnClient"] == "cv final.pdf"


def test_multipart_without_a_chosen_file_is_an_application_without_resume(stack):
    form = {**candidate(stack.jobs[1], "n" + uuid.uuid4().hex[:8]), "consent": "on"}
    form["resume"] = (io.BytesIO(b""), "")  # what a browser sends when no file was chosen
    response = stack.http.post("/v1/applications", data=form, headers=stack.headers)
    assert response.status_code == 202, response.json
    wait_settled(stack, [response.json["id"]])
    view = status(stack, response.json["id"])
    assert view["status"] == "delivered" and "resume_id" not in view


def test_existing_contact_is_reused_by_email(stack):
    tag = "e" + uuid.uuid4().hex[:8]
    contact_id = stack.admin.create(
        "Contact", {"FirstName": "Ada", "LastName": "Known", "Email": f"ada.0@{tag}.example.com"}
    )
    data = candidate(stack.jobs[0], tag, email=f"ADA.0@{tag}.example.com")
    response = stack.http.post("/v1/applications", json=data, headers=stack.headers)
    assert response.status_code == 202
    wait_settled(stack, [response.json["id"]])
    view = status(stack, response.json["id"])
    assert view["status"] == "delivered"
    assert view["contact_id"] == contact_id
    assert (
        len(org_rows(stack, f"SELECT Id FROM Contact WHERE Email LIKE '%@{tag}.example.com'")) == 1
    )


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"last_name": None}, "last_name", "required"),  # REQUIRED_FIELD_MISSING in the guide
        ({"first_name": "candidate test " * 3}, "first_name", "too_long"),  # STRING_TOO_LONG
        ({"email": "test@"}, "email", "invalid"),
        ({"job_id": "not-an-id"}, "job_id", "invalid"),
        ({"linkedin_url": "ftp://example.com/x"}, "linkedin_url", "invalid"),
        ({"nickname": "Ada"}, "nickname", "unknown_field"),
    ],
)
def test_validation_errors_are_422_before_queueing(stack, change, field, code):
    data = candidate(stack.jobs[0], "v" + uuid.uuid4().hex[:8], **change)
    data = {k: v for k, v in data.items() if v is not None}
    queued = stack.outbox.counts()
    response = stack.http.post("/v1/applications", json=data, headers=stack.headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = {e["field"]: e for e in response.json["errors"]}
    assert field in errors, response.json
    assert errors[field]["code"].startswith(code)
    assert stack.outbox.counts()["queued"] <= queued["queued"]


def test_resume_checked_by_content_and_size(stack):
    tag = "r" + uuid.uuid4().hex[:8]
    form = {**candidate(stack.jobs[0], tag), "consent": "true"}
    exe = {**form, "resume": (io.BytesIO(b"MZ\x90\x00\x03binary"), "cv.pdf")}
    response = stack.http.post("/v1/applications", data=exe, headers=stack.headers)
    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "field": "resume",
            "code": "unsupported_type",
            "message": response.json["errors"][0]["message"],
        }
    ]
    big = {**form, "resume": (io.BytesIO(b"%PDF-" + b"0" * (5 * 1024 * 1024)), "cv.pdf")}
    response = stack.http.post("/v1/applications", data=big, headers=stack.headers)
    assert response.status_code == 413
    assert response.json["errors"][0]["code"] == "too_large"
    assert stack.outbox.unique_holder("x") is None


def test_idempotency_key_replays_and_refuses_another_body(stack):
    tag = "i" + uuid.uuid4().hex[:8]
    headers = {**stack.headers, "Idempotency-Key": "order-" + tag}
    data = candidate(stack.jobs[1], tag)
    first = stack.http.post("/v1/applications", json=data, headers=headers)
    again = stack.http.post("/v1/applications", json=dict(reversed(data.items())), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = stack.http.post(
        "/v1/applications", json={**data, "last_name": "Other"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json["errors"][0]["code"] == "idempotency_key_reused"
    wait_settled(stack, [first.json["id"]])
    assert apps_by_email(stack, tag) == {f"ada.0@{tag}.example.com": 1}


def test_same_email_and_job_is_409_with_the_existing_reference(stack):
    tag = "d" + uuid.uuid4().hex[:8]
    first = stack.http.post(
        "/v1/applications", json=candidate(stack.jobs[0], tag), headers=stack.headers
    )
    assert first.status_code == 202
    shouted = candidate(
        stack.jobs[0], tag, email=f"Ada.0@{tag.upper()}.example.com", last_name="Again"
    )
    second = stack.http.post("/v1/applications", json=shouted, headers=stack.headers)
    assert second.status_code == 409
    assert second.mimetype == "application/problem+json"
    assert second.json["existing_application"]["id"] == first.json["id"]
    wait_settled(stack, [first.json["id"]])
    third = stack.http.post("/v1/applications", json=shouted, headers=stack.headers)
    assert third.status_code == 409
    assert third.json["existing_application"]["status"] == "delivered"
    assert "already in the org" in third.json["detail"]
    other_job = stack.http.post(
        "/v1/applications", json=candidate(stack.jobs[1], tag), headers=stack.headers
    )
    assert other_job.status_code == 202


# --------------------------------------------------------------------------- the org misbehaves


def test_org_down_then_up_delivers_everything_exactly_once(stack):
    tag = "o" + uuid.uuid4().hex[:8]
    faults(stack, error_rate=1.0)
    body = submit_batch(stack, [candidate(stack.jobs[2], tag, i) for i in range(50)])
    ids = [o["id"] for o in body["items"]]
    wait_for(
        lambda: (stack.outbox.get(ids[0]) or {}).get("attempts", 0) >= 3,
        20,
        what="three failed attempts",
    )
    view = status(stack, ids[0])
    assert view["status"] in ("queued", "delivering")
    assert view["last_error"]["code"] == "SERVER_UNAVAILABLE"
    faults(stack, error_rate=0.0)
    final = wait_settled(stack, ids)
    assert Counter(r["status"] for r in final.values()) == {"delivered": 50}
    counts = apps_by_email(stack, tag)
    assert len(counts) == 50 and set(counts.values()) == {1}


def test_row_locks_on_30_percent_of_writes_still_exactly_once(stack):
    tag = "l" + uuid.uuid4().hex[:8]
    faults(stack, lock_rate=0.3, seed=7)
    body = submit_batch(stack, [candidate(stack.jobs[0], tag, i) for i in range(300)])
    ids = [o["id"] for o in body["items"]]
    final = wait_settled(stack, ids, timeout=60)
    assert Counter(r["status"] for r in final.values()) == {"delivered": 300}
    assert any(r["attempts"] > 0 for r in final.values())  # the fault did bite
    counts = apps_by_email(stack, tag)
    assert len(counts) == 300 and set(counts.values()) == {1}
    contacts = org_rows(stack, f"SELECT Email FROM Contact WHERE Email LIKE '%@{tag}.example.com'")
    assert len(contacts) == 300


def test_permanent_org_error_fails_to_dlq_and_replay_delivers_once(stack, capsys):
    tag = "p" + uuid.uuid4().hex[:8]
    rule = {
        "name": "No_Placeholder_Letters",
        "errorMessage": "Write a real cover letter.",
        "errorDisplayField": "bpats__Cover_Letter__c",
        "condition": {"field": "bpats__Cover_Letter__c", "op": "contains", "value": "lorem ipsum"},
    }
    url = f"{stack.sandbox.url}/__sandbox__/objects/{APPLICATION}/validation-rules"
    requests.post(url, json=rule, timeout=5).raise_for_status()
    data = candidate(stack.jobs[1], tag, cover_letter="Lorem ipsum dolor sit amet.")
    response = stack.http.post("/v1/applications", json=data, headers=stack.headers)
    application_id = response.json["id"]
    wait_settled(stack, [application_id])
    view = status(stack, application_id)
    assert view["status"] == "failed"
    assert view["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert view["reason"] == "Write a real cover letter."
    assert view["errors"] == [
        {
            "field": "cover_letter",
            "code": "rejected_by_org",
            "message": "cover_letter: the org refused the record: Write a real cover letter.",
        }
    ]
    args = SimpleNamespace(kind="applications", json=True, limit=100, id=application_id, all=False)
    assert tasks.cmd_dlq_list(args, stack.settings) == 0
    assert application_id in capsys.readouterr().out
    assert apps_by_email(stack, tag) == {}
    queue = stack.http.get("/readyz").json["checks"]["applications_queue"]
    assert queue["status"] == "degraded" and queue["dead_letter"] >= 1
    metrics = stack.http.get("/metrics").get_data(as_text=True)
    assert (
        f'ats_gateway_applications_queue{{state="dead_letter"}} {queue["dead_letter"]}.0' in metrics
    )

    requests.delete(stack.sandbox.url + "/__sandbox__/validation-rules", timeout=5)
    assert tasks.cmd_dlq_replay(args, stack.settings) == 0
    wait_for(lambda: status(stack, application_id)["status"] == "delivered", 30, what="replay")
    assert application_id not in {r["id"] for r in stack.outbox.dead_letters()}
    assert apps_by_email(stack, tag) == {f"ada.0@{tag}.example.com": 1}
    assert tasks.cmd_dlq_replay(args, stack.settings) == 1  # nothing left to replay


def test_closed_job_is_422_before_queueing(stack):
    closed = stack.admin.query_many(
        ["SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Filled' LIMIT 1"]
    )[0][0]["Id"]
    data = candidate(closed, "c" + uuid.uuid4().hex[:8])
    response = stack.http.post("/v1/applications", json=data, headers=stack.headers)
    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "field": "job_id",
            "code": "job_not_open",
            "message": "This job is not open for applications.",
        }
    ]


def test_endpoints_are_documented_in_openapi(stack):
    paths = stack.http.get("/v1/openapi.json").json["paths"]
    assert {"post"} <= paths["/v1/applications"].keys()
    assert "multipart/form-data" in paths["/v1/applications"]["post"]["requestBody"]["content"]
    assert "207" in paths["/v1/applications/batch"]["post"]["responses"]
    assert "404" in paths["/v1/applications/{application_id}"]["get"]["responses"]


def test_unknown_application_is_404(stack):
    response = stack.http.get("/v1/applications/" + uuid.uuid4().hex, headers=stack.headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_batch_items_may_carry_base64_resumes(stack):
    tag = "f" + uuid.uuid4().hex[:8]
    resume = {"filename": "cv.txt", "content_base64": base64.b64encode(b"Plain text CV\n").decode()}
    body = submit_batch(stack, [candidate(stack.jobs[0], tag, i, resume=resume) for i in range(3)])
    ids = [o["id"] for o in body["items"]]
    final = wait_settled(stack, ids)
    assert all(r["status"] == "delivered" and r["result"].get("resume_id") for r in final.values())
