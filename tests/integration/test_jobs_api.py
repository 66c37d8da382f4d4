"""The jobs flow end to end: the sandbox org (seeded demo data, over HTTP), a real Redis, the
gateway app, and a real Celery worker for the refresh hook.

Expected answers come from the org itself: the same filters run as SOQL by an admin user.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from stack import PUBLIC_JOBS as PUBLIC
from stack import running_worker, wait_for

from ats_gateway import create_app
from ats_gateway.api.jobs import sign_hook
from ats_gateway.extensions import services
from ats_gateway.salesforce import SalesforceClient
from ats_gateway.security import KeyStore
from ats_gateway.services.jobs.text import fold, strip_html, words
from ats_gateway.tasks.jobs import REFRESH_TASK

JOB = "bpats__Job__c"

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sandbox_options():
    return {"seed": "demo", "seed_jobs": 500, "faults_enabled": True}


@pytest.fixture(scope="module")
def stack_connections():
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides():
    return {"jobs_staleness_seconds": 3600}


@pytest.fixture(scope="module")
def api_key(stack_redis) -> str:
    _, plaintext = KeyStore(stack_redis).create(
        kind="secret", name="jobs tests", scopes=["jobs:read"], rate_limit="100000/minute"
    )
    return plaintext


class Api:
    def __init__(self, app, key: str) -> None:
        self.app = app
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, params: dict | None = None, **headers: str):
        return self.client.get(path, query_string=params, headers={**self.headers, **headers})

    def ok(self, path: str, params: dict | None = None) -> dict[str, Any]:
        response = self.get(path, params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def all(self, params: dict | None = None) -> list[dict[str, Any]]:
        """Every job of a listing, page by page; fails on a repeated id."""
        params = {**(params or {}), "limit": 100}
        out: list[dict[str, Any]] = []
        for _ in range(100):
            body = self.ok("/v1/jobs", params)
            out += body["data"]
            assert len(out) <= body["meta"]["total"]
            if body["page"]["next_cursor"] is None:
                assert len(out) == body["meta"]["total"]
                ids = [j["id"] for j in out]
                assert len(ids) == len(set(ids)), "a job was listed twice"
                return out
            params["cursor"] = body["page"]["next_cursor"]
        raise AssertionError("paging did not end")

    def ids(self, params: dict | None = None) -> set[str]:
        return {j["id"] for j in self.all(params)}


@pytest.fixture(scope="module")
def api(gateway_app, api_key) -> Api:
    return Api(gateway_app, api_key)


def org_ids(admin: SalesforceClient, condition: str = "") -> set[str]:
    where = PUBLIC + (f" AND ({condition})" if condition else "")
    return {r["Id"] for r in admin.query(f"SELECT Id FROM {JOB} WHERE {where}")}


def usage(sandbox_org) -> int:
    return requests.get(f"{sandbox_org.url}/__sandbox__/usage", timeout=5).json()["used"]


def refresh(gateway_app) -> None:
    assert services(gateway_app).jobs.refresh().outcome == "refreshed"


@pytest.fixture(scope="module")
def worker(stack_settings, gateway_app, tmp_path_factory):
    """A real worker on this module's Redis database (so it sees this sandbox)."""
    process = running_worker(
        stack_settings, gateway_app, tmp_path_factory.mktemp("jobs-worker"), concurrency=2
    )
    yield process
    process.stop()


# --------------------------------------------------------------------------- API calls


def test_listing_requests_cost_at_most_two_org_calls(gateway_app, api, sandbox_org):
    services(gateway_app).jobs.store.clear()  # start with no snapshot at all
    combos = [
        {"department": dept, "workplace_type": wp, "sort": sort}
        for dept in ("Engineering", "Sales", "Marketing", "Finance", "People")
        for wp in ("Remote", "Hybrid")
        for sort in ("-posted_at", "title", "-salary_min", "city", "salary_max")
    ]
    assert len({json.dumps(c, sort_keys=True) for c in combos}) == 50
    before = usage(sandbox_org)
    statuses = [api.get("/v1/jobs", combos[i % 50]).status_code for i in range(1000)]
    assert statuses == [200] * 1000
    spent = usage(sandbox_org) - before
    assert 1 <= spent <= 2  # the snapshot load; nothing per request


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("params", "soql"),
    [
        ({"department": "Engineering"}, "bpats__Department__c = 'Engineering'"),
        ({"employment_type": "Contract"}, "bpats__Employment_Type__c = 'Contract'"),
        ({"workplace_type": "Remote"}, "bpats__Workplace_Type__c = 'Remote'"),
        ({"city": "berlin"}, "bpats__City__c = 'Berlin'"),
        ({"state": "CA"}, "bpats__State__c = 'CA'"),
        ({"country": "United Kingdom"}, "bpats__Country__c = 'United Kingdom'"),
        ({"salary_currency": "EUR"}, "bpats__Salary_Currency__c = 'EUR'"),
        ({"salary_period": "Hourly"}, "bpats__Salary_Period__c = 'Hourly'"),
        ({"posted_after": "2026-10-01"}, "bpats__Date_Posted__c >= 2026-10-01"),
        ({"salary_min": "150000"}, "bpats__Salary_Min__c >= 150000"),
        (
            {"department": "Sales,Legal"},
            "bpats__Department__c IN ('Sales', 'Legal')",
        ),
        (
            {"department": ["Engineering", "People"], "workplace_type": "Remote,Hybrid"},
            "bpats__Department__c IN ('Engineering', 'People') "
            "AND bpats__Workplace_Type__c IN ('Remote', 'Hybrid')",
        ),
        (
            {"country": "Germany", "salary_min": "60000", "posted_after": "2026-06-01"},
            "bpats__Country__c = 'Germany' AND bpats__Salary_Min__c >= 60000 "
            "AND bpats__Date_Posted__c >= 2026-06-01",
        ),
    ],
)
def test_each_filter_and_combinations_match_the_org(api, admin, params, soql):
    expected = org_ids(admin, soql)
    assert expected, "the demo data should have jobs for this filter"
    assert api.ids(params) == expected


def test_no_filter_lists_every_public_job(api, admin):
    assert api.ids() == org_ids(admin)


def test_q_ands_words_over_title_and_description(api):
    everything = api.all()
    results = api.all({"q": "Senior ENGINEER"})
    assert results
    for job in results:
        text = words(f"{job['title']} {strip_html(job['description'] or '')}")
        assert any(w.startswith("senior") for w in text)
        assert any(w.startswith("engineer") for w in text)
    expected = [
        j["id"]
        for j in everything
        if {"senior", "engineer"}
        <= {
            p
            for w in words(f"{j['title']} {strip_html(j['description'] or '')}")
            for p in ("senior", "engineer")
            if w.startswith(p)
        }
    ]
    assert sorted(expected) == sorted(j["id"] for j in results)


def test_q_is_accent_and_case_insensitive(gateway_app, api, admin):
    record_id = admin.create(
        JOB,
        {
            "Name": "Développeur Zürich",
            "bpats__Job_Title__c": "Développeur Café Zürich",
            "bpats__Status__c": "Open",
            "bpats__Post_to_Job_Board__c": True,
            "bpats__Department__c": "Engineering",
            "bpats__Date_Posted__c": "2026-01-15",
        },
    )
    refresh(gateway_app)
    for text in ("developpeur zurich", "DÉVELOPPEUR", "cafe"):
        assert [j["id"] for j in api.all({"q": text})] == [record_id], text


def test_sort_both_ways_is_total_and_stable(api):
    for field in ("salary_min", "title", "posted_at"):
        up = api.all({"sort": field})
        down = api.all({"sort": f"-{field}"})
        present_up = [j for j in up if j[field] is not None]
        present_down = [j for j in down if j[field] is not None]
        key = (lambda j, f=field: fold(j[f])) if field == "title" else (lambda j, f=field: j[f])
        assert [key(j) for j in present_up] == sorted(key(j) for j in present_up)
        assert [key(j) for j in present_down] == sorted(
            (key(j) for j in present_down), reverse=True
        )
        assert all(j[field] is None for j in up[len(present_up) :])  # empty values last
        assert {j["id"] for j in up} == {j["id"] for j in down}
        # ties broken by id: the same request twice gives the same order
        assert [j["id"] for j in api.all({"sort": field})] == [j["id"] for j in up]


def test_paging_has_no_duplicates_or_gaps_for_small_pages(api, admin):
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 7, "sort": "city", "workplace_type": "On-site,Hybrid"}
    while True:
        body = api.ok("/v1/jobs", params)
        assert len(body["data"]) <= 7
        seen += [j["id"] for j in body["data"]]
        if not body["page"]["next_cursor"]:
            break
        params["cursor"] = body["page"]["next_cursor"]
    assert len(seen) == len(set(seen))
    assert set(seen) == org_ids(admin, "bpats__Workplace_Type__c IN ('On-site', 'Hybrid')")


def test_fields_and_public_names_only(api):
    body = api.ok("/v1/jobs", {"fields": "title,city", "limit": 3})
    assert [sorted(j) for j in body["data"]] == [["city", "id", "title"]] * 3
    full = api.ok("/v1/jobs", {"limit": 1})["data"][0]
    assert not [k for k in full if "__" in k or k[0].isupper()]
    assert body["page"]["limit"] == 3
    assert body["meta"]["snapshot_at"].endswith("Z")


# --------------------------------------------------------------------------- validation


def test_unknown_filter_bad_sort_and_bad_value_are_422_with_what_is_allowed(api):
    response = api.get(
        "/v1/jobs", {"colour": "red", "sort": "-secret", "department": "Astronomy", "limit": 0}
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = {e["field"].split("[")[0]: e for e in response.get_json()["errors"]}
    assert set(errors) == {"colour", "sort", "department", "limit"}
    assert "Engineering" in errors["department"]["message"]
    assert "posted_at" in errors["sort"]["message"]
    assert "department" in errors["colour"]["message"]


def test_a_cursor_from_another_query_is_422(api):
    cursor = api.ok("/v1/jobs", {"limit": 1, "sort": "title"})["page"]["next_cursor"]
    response = api.get("/v1/jobs", {"limit": 1, "sort": "-title", "cursor": cursor})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "cursor"
    forged = api.get("/v1/jobs", {"cursor": cursor[:-3] + "abc", "sort": "title"})
    assert forged.status_code == 422


def test_the_key_needs_jobs_read(gateway_app, api):
    assert api.client.get("/v1/jobs").status_code == 401
    _, other = KeyStore(services(gateway_app).redis).create(
        kind="secret", name="writer", scopes=["applications:write"]
    )
    forbidden = api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {other}"})
    assert forbidden.status_code == 403


# --------------------------------------------------------------------------- caching


def test_etag_and_304(gateway_app, api):
    first = api.get("/v1/jobs", {"department": "Sales", "limit": 5})
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert first.headers["Last-Modified"].endswith("GMT")
    again = api.get("/v1/jobs", {"department": "Sales", "limit": 5}, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    other = api.get("/v1/jobs", {"department": "Sales", "limit": 6}, **{"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag
    refresh(gateway_app)  # a new snapshot version: the old validator no longer matches
    after = api.get("/v1/jobs", {"department": "Sales", "limit": 5}, **{"If-None-Match": etag})
    assert after.status_code == 200
    assert after.get_json()["data"] == first.get_json()["data"]


def test_one_job_by_15_or_18_character_id(api):
    job = api.ok("/v1/jobs", {"limit": 1})["data"][0]
    assert api.ok(f"/v1/jobs/{job['id']}")["data"] == job
    assert api.ok(f"/v1/jobs/{job['id'][:15]}")["data"] == job
    missing = api.get("/v1/jobs/a0M000000000000AAA")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"


def test_facet_counts_equal_the_listing_totals(api):
    filters = {"workplace_type": "Remote,Hybrid", "q": "manager"}
    facets = api.ok("/v1/jobs/facets", filters)
    assert facets["meta"]["total"] == api.ok("/v1/jobs", filters)["meta"]["total"]
    for field in ("department", "country", "workplace_type"):
        assert facets["data"][field]
        for entry in facets["data"][field]:
            narrowed = {**filters, field: entry["value"]}
            total = api.ok("/v1/jobs", {**narrowed, "limit": 1})["meta"]["total"]
            assert entry["count"] == total, (field, entry)


# --------------------------------------------------------------------------- refresh


def _close(org: SalesforceClient, job_id: str) -> None:
    org.update(JOB, job_id, {"bpats__Status__c": "Closed"})


def _post_hook(gateway_app, secret: str, body: bytes = b"{}", **overrides: str):
    headers = {**sign_hook(secret, body), "Content-Type": "application/json", **overrides}
    return gateway_app.test_client().post("/v1/hooks/jobs-changed", data=body, headers=headers)


def test_the_hook_refuses_bad_signatures(gateway_app, stack_settings):
    assert _post_hook(gateway_app, "wrong-secret").status_code == 401
    stale = sign_hook(stack_settings.jobs_hook_secret, b"{}", timestamp=int(time.time()) - 3600)
    assert _post_hook(gateway_app, stack_settings.jobs_hook_secret, **stale).status_code == 401
    unsigned = gateway_app.test_client().post("/v1/hooks/jobs-changed", json={})
    assert unsigned.status_code == 401


def test_a_job_closed_in_the_org_disappears_after_the_hook(
    gateway_app, api, admin, worker, stack_settings
):
    refresh(gateway_app)
    job = api.ok("/v1/jobs", {"department": "Finance", "limit": 1})["data"][0]
    total = api.ok("/v1/jobs", {"limit": 1})["meta"]["total"]
    _close(admin, job["id"])
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 200  # not yet: no refresh
    response = _post_hook(gateway_app, stack_settings.jobs_hook_secret)
    assert response.status_code == 202
    # [16]: a job that was listed and is closed now answers 410
    assert wait_for(lambda: api.get(f"/v1/jobs/{job['id']}").status_code == 410, timeout=20)
    assert api.ok("/v1/jobs", {"limit": 1})["meta"]["total"] == total - 1
    assert job["id"] not in api.ids({"department": "Finance"})


def test_a_job_closed_in_the_org_disappears_within_the_staleness_bound(
    gateway_app, stack_settings, api_key, admin, sandbox_org
):
    refresh(gateway_app)
    bounded = create_app(stack_settings.replace(jobs_staleness_seconds=1))
    fast = Api(bounded, api_key)
    job = fast.ok("/v1/jobs", {"department": "Legal", "limit": 1})["data"][0]
    _close(admin, job["id"])
    # No hook: the next request after the bound serves the old snapshot and refreshes it.
    assert wait_for(lambda: fast.get(f"/v1/jobs/{job['id']}").status_code == 410, timeout=15)


def test_the_beat_task_refreshes_on_a_worker(gateway_app, worker):
    celery = gateway_app.extensions["celery"]
    store = services(gateway_app).jobs.store
    store.clear()
    result = celery.send_task(REFRESH_TASK).get(timeout=30)
    assert result["outcome"] == "refreshed" and result["count"] > 0
    assert result["api_calls"] == 1
    assert store.pointer() is not None
    again = celery.send_task(REFRESH_TASK).get(timeout=30)
    assert again["outcome"] == "fresh"  # younger than half the bound: skipped, no API call


def test_refresh_failures_keep_the_last_snapshot_and_show_in_readyz(gateway_app, api, sandbox_org):
    refresh(gateway_app)
    before = api.ok("/v1/jobs", {"limit": 5})
    faults = f"{sandbox_org.url}/__sandbox__/faults"
    requests.post(faults, json={"error_rate": 1.0}, timeout=5).raise_for_status()
    try:
        with pytest.raises(Exception, match="Unavailable"):
            services(gateway_app).jobs.refresh()
        ready = gateway_app.test_client().get("/readyz").get_json()["checks"]["jobs_snapshot"]
        assert ready["status"] == "degraded"
        assert "Unavailable" in ready["last_error"]
        assert api.ok("/v1/jobs", {"limit": 5})["data"] == before["data"]
    finally:
        requests.delete(faults, timeout=5)
    refresh(gateway_app)
    ready = gateway_app.test_client().get("/readyz").get_json()["checks"]["jobs_snapshot"]
    assert ready["status"] == "ok" and "last_error" not in ready


def test_the_endpoints_are_in_the_openapi_document(gateway_app):
    from openapi_spec_validator import validate

    document = gateway_app.test_client().get("/v1/openapi.json").get_json()
    validate(document)
    paths = document["paths"]
    assert {"/v1/jobs", "/v1/jobs/facets", "/v1/jobs/{job_id}", "/v1/hooks/jobs-changed"} <= set(
        paths
    )
    params = {p["name"] for p in paths["/v1/jobs"]["get"]["parameters"]}
    assert {"department", "posted_after", "q", "sort", "limit", "cursor", "fields"} <= params


def test_a_cursor_continues_consistently_after_a_refresh(gateway_app, api, admin):
    params: dict[str, Any] = {"sort": "title", "limit": 10, "country": "United States"}
    first = api.ok("/v1/jobs", params)
    second_before = api.ok("/v1/jobs", {**params, "cursor": first["page"]["next_cursor"]})
    gone = second_before["data"][3]["id"]
    _close(admin, gone)
    refresh(gateway_app)
    second = api.ok("/v1/jobs", {**params, "cursor": first["page"]["next_cursor"]})
    ids = [j["id"] for j in second["data"]]
    assert gone not in ids
    assert not {j["id"] for j in first["data"]} & set(ids)
    titles = [fold(j["title"]) for j in first["data"] + second["data"]]
    assert titles == sorted(titles)
    assert ids[:3] == [j["id"] for j in second_before["data"][:3]]
    assert ids[3:9] == [j["id"] for j in second_before["data"][4:10]]
    store = services(gateway_app).jobs.store
    current = store.pointer()
    assert store.redis.ttl(store.key(f"snapshot:{current.version}")) == -1  # never expires


def test_beat_schedule_and_metrics(gateway_app, stack_settings):
    schedule = gateway_app.extensions["celery"].conf.beat_schedule["jobs-snapshot-refresh"]
    assert schedule["task"] == REFRESH_TASK
    assert schedule["schedule"] <= stack_settings.jobs_staleness_seconds / 2
    refresh(gateway_app)
    text = gateway_app.test_client().get("/metrics").get_data(as_text=True)
    jobs_line = next(
        line for line in text.splitlines() if line.startswith("ats_gateway_jobs_snapshot_jobs ")
    )
    assert float(jobs_line.split()[1]) == services(gateway_app).jobs.index().n > 0
    assert "ats_gateway_jobs_snapshot_age_seconds" in text


def test_no_snapshot_and_the_org_down_is_503_problem_json(gateway_app, api, sandbox_org):
    store = services(gateway_app).jobs.store
    faults = f"{sandbox_org.url}/__sandbox__/faults"
    requests.post(faults, json={"error_rate": 1.0}, timeout=5).raise_for_status()
    try:
        store.clear()
        response = api.get("/v1/jobs")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"] == "5"
        ready = gateway_app.test_client().get("/readyz").get_json()["checks"]["jobs_snapshot"]
        assert ready["status"] == "degraded" and ready["snapshot"] is None
        assert "Unavailable" in ready["last_error"]
    finally:
        requests.delete(faults, timeout=5)
    refresh(gateway_app)
    assert api.get("/v1/jobs").status_code == 200


def test_a_burst_of_hooks_coalesces(gateway_app, api, admin, worker, stack_settings):
    refresh(gateway_app)
    job = api.ok("/v1/jobs", {"department": "People", "limit": 1})["data"][0]
    _close(admin, job["id"])
    responses = [_post_hook(gateway_app, stack_settings.jobs_hook_secret) for _ in range(10)]
    assert [r.status_code for r in responses] == [202] * 10
    celery = gateway_app.extensions["celery"]
    outcomes = [
        celery.AsyncResult(r.get_json()["task_id"]).get(timeout=30)["outcome"] for r in responses
    ]
    assert set(outcomes) <= {"refreshed", "fresh"}
    assert 1 <= outcomes.count("refreshed") < 10
    # [12]/[16]: a job that was listed and is closed now answers 410 Gone (was 404)
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 410


def test_a_picklist_value_added_in_the_org_is_accepted_after_describe_refresh(
    gateway_app, api, sandbox_org
):
    assert api.get("/v1/jobs", {"department": "Research"}).status_code == 422
    requests.patch(
        f"{sandbox_org.url}/__sandbox__/objects/{JOB}/fields/bpats__Department__c",
        json={"add_picklist_values": ["Research"]},
        timeout=5,
    ).raise_for_status()
    services(gateway_app).metadata.refresh(force=True)
    body = api.ok("/v1/jobs", {"department": "Research"})
    assert body["meta"]["total"] == 0 and body["data"] == []
