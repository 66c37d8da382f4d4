"""[16] Distribution end to end: JSON-LD, sitemap, Indeed and LinkedIn feeds, Indeed Apply and
source attribution, through the gateway's HTTP API, a real Redis, a real Celery worker process
and the sandbox org over HTTP. What reaches the org is read back from the org.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from lxml import etree
from stack import FAST_DELIVERY, wait_for

from ats_gateway.extensions import services
from ats_gateway.services.applications.indeed import sign
from ats_gateway.services.feeds import indeed_feed, linkedin_feed

DATA = Path(__file__).parent / "data"
SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
INDEED_SECRET = "Y0ur api secret key not shared &$%@"
FEED_KEYS = {"indeed": "indeed-feed-" + uuid.uuid4().hex, "linkedin": "li-feed-" + uuid.uuid4().hex}
PUBLIC = "https://careers.example.com"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

# Google for Jobs, "Job posting (JobPosting) structured data", required properties:
# https://developers.google.com/search/docs/appearance/structured-data/job-posting
# (jobLocation is required except for fully remote jobs, which need jobLocationType
# TELECOMMUTE and applicantLocationRequirements instead).
GOOGLE_REQUIRED = {
    "title": str,
    "description": str,
    "datePosted": str,
    "hiringOrganization": dict,
}
GOOGLE_REQUIRED_ON_SITE = {"jobLocation": dict}
GOOGLE_REQUIRED_REMOTE = {"jobLocationType": str, "applicantLocationRequirements": dict}
GOOGLE_EMPLOYMENT_TYPES = {
    "FULL_TIME",
    "PART_TIME",
    "CONTRACTOR",
    "TEMPORARY",
    "INTERN",
    "VOLUNTEER",
    "PER_DIEM",
    "OTHER",
}


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def sandbox_options() -> dict:
    return {"seed": "demo", "seed_jobs": 60}  # enough public jobs for a sitemap index


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides() -> dict:
    return {
        **FAST_DELIVERY,
        "public_url": "https://gateway.example.com",
        "jobs_staleness_seconds": 3600,
        "rate_limit_ip_read": "100000/minute",
        "rate_limit_key_submit": "100000/minute",
        "hiring_org_name": "Redwood Robotics",
        "hiring_org_url": "https://www.redwood.example.com",
        "hiring_org_logo": "https://www.redwood.example.com/logo.png",
        "job_page_url_template": PUBLIC + "/jobs/{id}",
        "sitemap_max_urls": 10,
        "feeds_rebuild_seconds": 0,  # a closed job leaves the feeds at once (default: 5 min)
        "feed_key_indeed": FEED_KEYS["indeed"],
        "feed_key_linkedin": FEED_KEYS["linkedin"],
        "indeed_apply_api_token": "indeed-api-token",
        "indeed_apply_secret": INDEED_SECRET,
        "linkedin_company_id": "1234567",
        "linkedin_poster_email": "jobs@redwood.example.com",
    }


@pytest.fixture(scope="module")
def stack(stack_settings, gateway_app, worker, admin, sandbox_org):
    _, secret = services(gateway_app).key_store.create(
        kind="secret",
        name="feeds tests",
        scopes=["jobs:read", "applications:write", "applications:read"],
        source="Job Board",
    )
    return SimpleNamespace(
        settings=stack_settings,
        app=gateway_app,
        http=gateway_app.test_client(),
        headers={"Authorization": f"Bearer {secret}"},
        outbox=services(gateway_app).applications_outbox,
        admin=admin,
        sandbox=sandbox_org,
    )


def public_jobs(stack) -> list[dict]:
    """The public jobs, read from the org (not from the gateway)."""
    return stack.admin.query_many(
        [
            "SELECT Id, Name, bpats__Workplace_Type__c, bpats__Description__c FROM bpats__Job__c "
            "WHERE bpats__Status__c = 'Open' AND bpats__Post_to_Job_Board__c = true AND "
            "(bpats__End_Date__c = null OR bpats__End_Date__c >= TODAY) ORDER BY Name"
        ]
    )[0]


def api_calls(stack) -> int:
    return requests.get(stack.sandbox.url + "/__sandbox__/usage", timeout=5).json()["used"]


def feed(stack, board: str, **headers):
    return stack.http.get(f"/feeds/{board}.xml?token={FEED_KEYS[board]}", headers=headers)


def sitemap_locs(stack) -> list[str]:
    """Every <loc> of the sitemap, following the index; each file validated by the XSD."""
    urlset = etree.XMLSchema(etree.parse(str(DATA / "sitemap.xsd")))
    index_schema = etree.XMLSchema(etree.parse(str(DATA / "siteindex.xsd")))
    response = stack.http.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = etree.fromstring(response.data)
    if root.tag.endswith("sitemapindex"):
        index_schema.assertValid(root)
        locs = []
        for part in root.findall("s:sitemap/s:loc", SITEMAP_NS):
            path = part.text.removeprefix(stack.settings.public_url)
            sub = stack.http.get(path)
            assert sub.status_code == 200, path
            doc = etree.fromstring(sub.data)
            urlset.assertValid(doc)
            locs += [loc.text for loc in doc.findall("s:url/s:loc", SITEMAP_NS)]
        return locs
    urlset.assertValid(root)
    return [loc.text for loc in root.findall("s:url/s:loc", SITEMAP_NS)]


def jobposting(stack, job_id: str):
    return stack.http.get(f"/v1/jobs/{job_id}/jobposting", headers=stack.headers)


def settle(stack, application_id: str) -> dict:
    return wait_for(
        lambda: (
            (r := stack.outbox.get(application_id))
            and r["status"] not in ("queued", "delivering")
            and r
        ),
        40,
        0.2,
        what="the application to settle",
    )


# --------------------------------------------------------------------------- JSON-LD


def _check_google(posting: dict, extra: dict) -> None:
    for name, kind in {**GOOGLE_REQUIRED, **extra}.items():
        assert isinstance(posting.get(name), kind) and posting[name], (name, posting.get(name))
    assert posting["@context"] == "https://schema.org/" and posting["@type"] == "JobPosting"
    dt.date.fromisoformat(posting["datePosted"])
    assert posting["hiringOrganization"] == {
        "@type": "Organization",
        "name": "Redwood Robotics",
        "sameAs": "https://www.redwood.example.com",
        "logo": "https://www.redwood.example.com/logo.png",
    }
    kinds = posting.get("employmentType")
    assert set([kinds] if isinstance(kinds, str) else kinds) <= GOOGLE_EMPLOYMENT_TYPES
    pay = posting["baseSalary"]
    assert pay["@type"] == "MonetaryAmount" and len(pay["currency"]) == 3
    assert pay["value"]["unitText"] in {"HOUR", "YEAR"}
    assert pay["value"]["minValue"] <= pay["value"]["maxValue"]
    assert posting["identifier"]["@type"] == "PropertyValue"
    assert posting["directApply"] is True
    assert posting["url"] == f"{PUBLIC}/jobs/{posting['identifier']['value']}"


@pytest.mark.parametrize("workplace", ["On-site", "Remote"])
def test_jobposting_has_googles_required_properties(stack, workplace):
    job = next(j for j in public_jobs(stack) if j["bpats__Workplace_Type__c"] == workplace)
    response = jobposting(stack, job["Id"])
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/ld+json"
    posting = json.loads(response.data)
    if workplace == "Remote":
        _check_google(posting, GOOGLE_REQUIRED_REMOTE)
        assert posting["jobLocationType"] == "TELECOMMUTE"
        assert posting["applicantLocationRequirements"]["@type"] == "Country"
        assert "jobLocation" not in posting
    else:
        _check_google(posting, GOOGLE_REQUIRED_ON_SITE)
        address = posting["jobLocation"]["address"]
        assert address["@type"] == "PostalAddress"
        assert address["addressLocality"] and len(address["addressCountry"]) == 2
        assert "jobLocationType" not in posting
    assert posting["description"] == job["bpats__Description__c"]
    again = stack.http.get(
        f"/v1/jobs/{job['Id']}/jobposting",
        headers={**stack.headers, "If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304


def test_jobposting_needs_a_key_and_an_open_job(stack):
    job = public_jobs(stack)[0]["Id"]
    assert stack.http.get(f"/v1/jobs/{job}/jobposting").status_code == 401
    missing = jobposting(stack, "a0M000000000000AAA")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"


# --------------------------------------------------------------------------- sitemap + feeds


def test_sitemap_lists_every_public_job_page_and_validates(stack):
    expected = {f"{PUBLIC}/jobs/{j['Id']}" for j in public_jobs(stack)}
    assert len(expected) > stack.settings.sitemap_max_urls  # so this is an index of parts
    locs = sitemap_locs(stack)
    assert sorted(locs) == sorted(expected)
    assert stack.http.get("/sitemap-99.xml").status_code == 404


def _jobs_of(body: bytes) -> list[etree._Element]:
    root = etree.fromstring(body)
    assert root.tag == "source"
    return root.findall("job")


@pytest.mark.parametrize(
    ("board", "id_element", "required"),
    [
        ("indeed", "referencenumber", indeed_feed.REQUIRED),
        ("linkedin", "partnerJobId", linkedin_feed.REQUIRED),
    ],
)
def test_board_feed_lists_exactly_the_public_jobs_with_required_elements(
    stack, board, id_element, required
):
    response = feed(stack, board)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    jobs = _jobs_of(response.data)
    assert sorted(j.findtext(id_element) for j in jobs) == sorted(
        r["Id"] for r in public_jobs(stack)
    )
    for job in jobs:
        for name in required:
            assert (job.findtext(name) or "").strip(), (board, name)
    # values are CDATA, never entity-escaped (Indeed: no HTML entities)
    assert b"<description><![CDATA[" in response.data
    assert b"&lt;" not in response.data
    if board == "indeed":
        apply = jobs[0].findtext("indeed-apply-data")
        assert "indeed-apply-jobId=" + jobs[0].findtext("referencenumber") in apply
        assert "indeed-apply-postUrl=https%3A%2F%2Fgateway.example.com%2Fv1%2Fboards" in apply
        assert "utm_source=Indeed" in jobs[0].findtext("url")
    else:
        assert etree.fromstring(response.data).findtext("expectedJobCount") == str(len(jobs))


def test_feeds_need_their_own_key(stack):
    assert stack.http.get("/feeds/indeed.xml").status_code == 401
    wrong = stack.http.get(f"/feeds/indeed.xml?token={FEED_KEYS['linkedin']}")
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    assert stack.http.get(f"/feeds/linkedin.xml?token={FEED_KEYS['linkedin']}").status_code == 200


def test_cached_feeds_answer_304_and_cost_no_org_call(stack):
    first = feed(stack, "indeed")
    assert stack.http.get("/sitemap.xml").status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    before = api_calls(stack)
    builds = services(stack.app).feeds.builds
    for _ in range(5):
        assert feed(stack, "indeed").data == first.data
    assert feed(stack, "indeed", **{"If-None-Match": etag}).status_code == 304
    assert feed(stack, "indeed", **{"If-Modified-Since": modified}).status_code == 304
    assert stack.http.get("/sitemap.xml", headers={"If-None-Match": "x"}).status_code == 200
    packed = feed(stack, "indeed", **{"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == first.data
    assert packed.headers["ETag"] != etag and "Accept-Encoding" in packed.headers["Vary"]
    assert api_calls(stack) == before
    assert services(stack.app).feeds.builds == builds  # built once per version


# --------------------------------------------------------------------------- Indeed Apply


def indeed_payload(job_id: str, tag: str, **extra) -> dict:
    return {
        "id": uuid.uuid4().hex + uuid.uuid4().hex,
        "locale": "en_US",
        "appliedOnMillis": 1324051581711,
        "job": {"jobId": job_id, "jobTitle": "Test Engineer", "jobCompany": "Redwood"},
        "applicant": {
            "fullName": "Grace Brewster Hopper",
            "email": f"grace@{tag}.example.com",
            "phoneNumber": "555-555-4321",
            "coverletter": "I would like to apply.",
            "resume": {
                "text": "resume - text",
                "file": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(PDF).decode(),
                    "fileName": "Grace_Hopper.pdf",
                },
            },
        },
        **extra,
    }


def post_indeed(stack, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    if signature is not None:
        headers["X-Indeed-Signature"] = signature
    return stack.http.post("/v1/boards/indeed/applications", data=body, headers=headers)


def test_indeed_signature_matches_indeeds_published_vector():
    body = b"{'locale':'en_US','applicant':{'fullName':'John Doe','email':'john.doe@example.com'}}"
    assert sign(INDEED_SECRET, body) == "SGadPKocf3HD1LYXm3xGObB6hzk="


def test_indeed_apply_is_delivered_once_with_resume_and_source(stack):
    tag = "ia" + uuid.uuid4().hex[:8]
    job = public_jobs(stack)[1]["Id"]
    body = json.dumps(indeed_payload(job, tag)).encode()
    signature = sign(INDEED_SECRET, body)
    queued_before = stack.outbox.counts()

    tampered = body.replace(b"Grace", b"Gracy")
    assert post_indeed(stack, tampered, signature).status_code == 401
    assert post_indeed(stack, body, None).status_code == 401
    assert post_indeed(stack, body, "AAAA" + signature[4:]).status_code == 401
    assert stack.outbox.counts() == queued_before  # nothing stored

    first = post_indeed(stack, body, signature)
    assert first.status_code == 200, first.json
    replay = post_indeed(stack, body, signature)
    assert replay.status_code == 200 and replay.json["id"] == first.json["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"

    record = settle(stack, first.json["id"])
    assert record["status"] == "delivered", record
    post_indeed(stack, body, signature)  # a resend after delivery: still not delivered again
    rows = stack.admin.query_many(
        [
            "SELECT Id, bpats__First_Name__c, bpats__Last_Name__c, bpats__Source__c, "
            "ATS_Gateway_Source__c, bpats__Phone__c FROM bpats__Job_Board_Application__c "
            f"WHERE bpats__Email__c = 'grace@{tag}.example.com'"
        ]
    )[0]
    assert len(rows) == 1
    row = rows[0]
    assert (row["bpats__First_Name__c"], row["bpats__Last_Name__c"]) == ("Grace Brewster", "Hopper")
    assert row["bpats__Source__c"] == "Indeed"
    assert row["ATS_Gateway_Source__c"] == "source=Indeed; via=indeed-apply"
    files = stack.admin.query_many(
        [
            "SELECT Id, PathOnClient FROM ContentVersion "
            f"WHERE FirstPublishLocationId = '{row['Id']}'"
        ]
    )[0]
    assert [f["PathOnClient"] for f in files] == ["Grace_Hopper.pdf"]


def test_indeed_apply_answers_the_codes_indeed_expects(stack):
    tag = "ib" + uuid.uuid4().hex[:8]
    job = public_jobs(stack)[2]["Id"]

    def send(payload) -> int:
        body = json.dumps(payload).encode()
        return post_indeed(stack, body, sign(INDEED_SECRET, body)).status_code

    assert send({"job": {"jobId": job}, "applicant": {"fullName": "No Email"}}) == 400
    assert send(indeed_payload("a0M000000000000AAA", tag)) == 404
    assert send(indeed_payload(job, tag)) == 200
    assert send(indeed_payload(job, tag)) == 409  # same job + email, another Indeed id
    bad = indeed_payload(job, tag + "x")
    bad["applicant"]["email"] = "not-an-email"
    assert send(bad) == 422


# --------------------------------------------------------------------------- attribution


def test_career_site_utm_and_key_default_source_are_recorded(stack):
    tag = "sa" + uuid.uuid4().hex[:8]
    job = public_jobs(stack)[0]["Id"]
    base = {"job_id": job, "first_name": "Ada", "consent": True}
    utm = {
        **base,
        "last_name": "Utm",
        "email": f"utm@{tag}.example.com",
        "source": "Hacker News",  # not in the org's picklist
        "utm_source": "hn",
        "utm_medium": "social",
        "utm_campaign": "launch-2026",
    }
    keyed = {**base, "last_name": "Keyed", "email": f"keyed@{tag}.example.com"}
    ids = []
    for body in (utm, keyed):
        response = stack.http.post("/v1/applications", json=body, headers=stack.headers)
        assert response.status_code == 202, response.json
        ids.append(response.json["id"])
    for application_id in ids:
        assert settle(stack, application_id)["status"] == "delivered"
    rows = {
        r["bpats__Last_Name__c"]: r
        for r in stack.admin.query_many(
            [
                "SELECT bpats__Last_Name__c, bpats__Source__c, ATS_Gateway_Source__c "
                "FROM bpats__Job_Board_Application__c "
                f"WHERE bpats__Email__c LIKE '%@{tag}.example.com'"
            ]
        )[0]
    }
    assert rows["Utm"]["bpats__Source__c"] is None
    assert rows["Utm"]["ATS_Gateway_Source__c"] == (
        "source=Hacker News; utm_source=hn; utm_medium=social; utm_campaign=launch-2026"
    )
    assert rows["Keyed"]["bpats__Source__c"] == "Job Board"
    assert rows["Keyed"]["ATS_Gateway_Source__c"] == "source=Job Board"
    bad = stack.http.post(
        "/v1/applications",
        json={**keyed, "email": f"bad@{tag}.example.com", "utm_source": "x" * 300},
        headers=stack.headers,
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json["errors"]] == ["utm_source"]


def test_report_sources_counts_by_source_and_job(stack, capsys, monkeypatch):
    from ats_gateway.cli import main

    monkeypatch.setenv("ATS_GATEWAY_REDIS_URL", stack.settings.redis_url)
    assert main(["report", "sources", "--since", "7d", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["rows"]
    by_source = {}
    for row in counts:
        by_source[row["source"]] = by_source.get(row["source"], 0) + row["applications"]
    assert by_source.get("Indeed", 0) >= 2
    assert by_source.get("Hacker News") == 1
    assert by_source.get("Job Board", 0) >= 1
    assert all(row["job_id"].startswith("a0M") for row in counts)
    assert main(["report", "sources", "--since", "0s", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == []
    assert main(["report", "sources", "--since", "a week"]) == 2


# --------------------------------------------------------------------------- closing a job


def test_a_closed_job_leaves_sitemap_and_feeds_and_answers_410(stack):
    jobs = public_jobs(stack)
    job = jobs[-1]["Id"]
    url = f"{PUBLIC}/jobs/{job}"
    assert url in sitemap_locs(stack)
    assert jobposting(stack, job).status_code == 200
    stack.admin.update("bpats__Job__c", job, {"bpats__Status__c": "Closed"})
    assert services(stack.app).jobs.refresh().outcome == "refreshed"

    assert url not in sitemap_locs(stack)
    for board, id_element in (("indeed", "referencenumber"), ("linkedin", "partnerJobId")):
        ids = [j.findtext(id_element) for j in _jobs_of(feed(stack, board).data)]
        assert job not in ids and len(ids) == len(jobs) - 1
    gone = jobposting(stack, job)
    assert gone.status_code == 410
    assert gone.mimetype == "application/problem+json"
    valid_through = dt.datetime.fromisoformat(gone.json["valid_through"].replace("Z", "+00:00"))
    assert valid_through <= dt.datetime.now(dt.UTC)
    assert gone.json["jobposting"]["validThrough"] == gone.json["valid_through"]
    detail = stack.http.get(f"/v1/jobs/{job}", headers=stack.headers)
    assert detail.status_code == 410 and "valid_through" in detail.json
    body = json.dumps(indeed_payload(job, "ic" + uuid.uuid4().hex[:8])).encode()
    assert post_indeed(stack, body, sign(INDEED_SECRET, body)).status_code == 410
