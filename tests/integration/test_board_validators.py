"""[22] What boards and crawlers read, checked with tools nobody here wrote: lxml on both XML
feeds with hostile job text written into the sandbox org through its REST API, the
sitemaps.org XSD and a sitemap parser (ultimate-sitemap-parser), the standard library's
robots.txt parser, extruct on the demo job page, openapi-spec-validator on the spec in every
mode. Also [21]'s finding: one job with text XML 1.0 forbids must not take a feed down.
"""

from __future__ import annotations

import argparse
import io
import json
import posixpath
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import extruct
import pytest
from lxml import etree
from openapi_spec_validator import validate as validate_openapi
from stack import FAST_DELIVERY, build_gateway
from usp.objects.sitemap import InvalidSitemap
from usp.tree import sitemap_from_str

from ats_gateway.extensions import services
from ats_gateway.metadata import build_metadata
from ats_gateway.metadata.cli import cmd_doctor
from ats_gateway.services.feeds.jobposting import country_code

DATA = Path(__file__).parent / "data"
PUBLIC = "https://gateway.example.com"
FEED_KEYS = {"indeed": "ind-" + uuid.uuid4().hex, "linkedin": "li-" + uuid.uuid4().hex}
# Text pasted from Word and worse: XML-forbidden characters (VT, FF, NUL, ESC, U+FFFE) and
# CDATA terminators, and HTML that must stay inert in the job page's <script> block.
HOSTILE_TITLE = "Nurse]]>\x0bLead\x1b\ufffe</script><script>alert(1)</script>"
HOSTILE_DESCRIPTION = (
    "<p>Care ]]> for people ]]]]> twice</p>\x0c\x00" + "Long enough for LinkedIn. " * 5
)


@pytest.fixture(scope="module")
def sandbox_options() -> dict:
    return {"seed": "demo", "seed_jobs": 24}


@pytest.fixture(scope="module")
def stack_connections() -> tuple[str, ...]:
    return ("job_portal",)


@pytest.fixture(scope="module")
def stack_overrides() -> dict:
    return {
        **FAST_DELIVERY,
        "env": "dev",  # the demo job pages (/demo/jobs/{id}) are the sitemap's pages
        "public_url": PUBLIC,
        "jobs_staleness_seconds": 3600,
        "rate_limit_ip_read": "100000/minute",
        "feed_key_indeed": FEED_KEYS["indeed"],
        "feed_key_linkedin": FEED_KEYS["linkedin"],
        "linkedin_company_id": "1234567",
        "linkedin_poster_email": "jobs@redwood.example.com",
    }


@pytest.fixture(scope="module")
def stack(stack_settings, gateway_app, admin, sandbox_org):
    return SimpleNamespace(
        settings=stack_settings, app=gateway_app, http=gateway_app.test_client(), admin=admin
    )


def public_jobs(stack) -> list[dict]:
    """The public jobs, read from the org (not from the gateway)."""
    return stack.admin.query_many(
        [
            "SELECT Id, bpats__State__c, bpats__Country__c FROM bpats__Job__c "
            "WHERE bpats__Status__c = 'Open' AND bpats__Post_to_Job_Board__c = true AND "
            "(bpats__End_Date__c = null OR bpats__End_Date__c >= TODAY) ORDER BY Name"
        ]
    )[0]


def feed(stack, board: str):
    response = stack.http.get(f"/feeds/{board}.xml?token={FEED_KEYS[board]}")
    assert response.status_code == 200, response.data[:500]
    # lxml's own parser, strict (no recovery): what a board's XML reader does
    root = etree.fromstring(response.data, etree.XMLParser(recover=False, resolve_entities=False))
    assert root.tag == "source"
    return response.data, root


def test_feeds_parse_with_hostile_job_text_in_the_org(stack):
    jobs = public_jobs(stack)
    job_id = jobs[0]["Id"]
    # Written through the sandbox org's REST API, as a recruiter's paste would arrive.
    stack.admin.update(
        "bpats__Job__c",
        job_id,
        {"bpats__Job_Title__c": HOSTILE_TITLE, "bpats__Description__c": HOSTILE_DESCRIPTION},
    )
    assert services(stack.app).jobs.refresh().outcome == "refreshed"

    # Forbidden characters gone (VT/FF as line feeds), CDATA terminators intact as text.
    title = "Nurse]]>\nLead</script><script>alert(1)</script>"
    description = HOSTILE_DESCRIPTION.replace("\x0c", "\n").replace("\x00", "")
    for board, id_element in (("indeed", "referencenumber"), ("linkedin", "partnerJobId")):
        body, root = feed(stack, board)
        entries = root.findall("job")
        assert sorted(j.findtext(id_element) for j in entries) == sorted(j["Id"] for j in jobs)
        hostile = next(j for j in entries if j.findtext(id_element) == job_id)
        assert hostile.findtext("title") == title, board
        assert hostile.findtext("description") == description, board
        assert b"]] >" not in body  # the old rewrite, which changed the job's text
        assert b"&lt;" not in body  # CDATA, never entities (Indeed: no HTML entities)

    # JSON-LD keeps the org's text (JSON can carry it); the demo page's block stays inert.
    page = stack.http.get(f"/demo/jobs/{job_id}")
    assert page.status_code == 200
    url = f"{PUBLIC}/demo/jobs/{job_id}"
    found = extruct.extract(page.text, base_url=url, syntaxes=["json-ld"], uniform=True)
    postings = [p for p in found["json-ld"] if p.get("@type") == "JobPosting"]
    assert len(postings) == 1
    assert postings[0]["title"] == HOSTILE_TITLE
    assert postings[0]["url"] == url
    assert page.text.count("<script>alert(1)</script>") == 0


def test_indeed_location_elements_are_what_indeed_documents(stack):
    """ISO 3166-1 alpha-2 countries as in Indeed's sample (`US`) and as the JSON-LD sends;
    no element left empty (a job in London has no state: no <state>)."""
    org = {j["Id"]: j for j in public_jobs(stack)}
    _, root = feed(stack, "indeed")
    stateless = 0
    for job in root.findall("job"):
        source = org[job.findtext("referencenumber")]
        for element in job:
            assert (element.text or "").strip(), (element.tag, source["Id"])
        assert job.findtext("country") == country_code(source["bpats__Country__c"])
        assert len(job.findtext("country")) == 2
        if source["bpats__State__c"]:
            assert job.findtext("state") == source["bpats__State__c"]
        else:
            stateless += 1
            assert job.find("state") is None
    assert stateless, "the demo org has jobs without a state (UK, France...)"


def test_sitemap_is_in_scope_named_by_robots_txt_and_parses(stack):
    robots = stack.http.get("/robots.txt")
    assert robots.status_code == 200 and robots.mimetype == "text/plain"
    parser = RobotFileParser()
    parser.parse(robots.text.splitlines())
    sitemap_url = f"{PUBLIC}/sitemap.xml"
    assert parser.site_maps() == [sitemap_url]
    assert parser.can_fetch("Googlebot", f"{PUBLIC}/demo/jobs/a0M000000000001AAA")
    assert not parser.can_fetch("Googlebot", f"{PUBLIC}/v1/jobs")
    assert not parser.can_fetch("Googlebot", f"{PUBLIC}/feeds/indeed.xml")

    response = stack.http.get("/sitemap.xml")
    assert response.status_code == 200
    doc = etree.fromstring(response.data)
    etree.XMLSchema(etree.parse(str(DATA / "sitemap.xsd"))).assertValid(doc)
    parsed = sitemap_from_str(response.data.decode())
    assert not isinstance(parsed, InvalidSitemap), parsed
    pages = {page.url for page in parsed.all_pages()}
    assert pages == {f"{PUBLIC}/demo/jobs/{j['Id']}" for j in public_jobs(stack)}
    # sitemaps.org "Sitemap file location": same host, under the sitemap's directory
    scope = posixpath.dirname(urlsplit(sitemap_url).path).rstrip("/") + "/"
    for page in pages:
        assert urlsplit(page).netloc == urlsplit(sitemap_url).netloc
        assert urlsplit(page).path.startswith(scope), page

    moved = stack.http.get("/jobs/sitemap.xml")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/sitemap.xml")


def test_robots_txt_leaves_the_sitemap_to_the_career_sites_host(stack):
    settings = stack.settings.replace(job_page_url_template="https://careers.example.com/j/{id}")
    text = build_gateway(settings).test_client().get("/robots.txt").text
    parser = RobotFileParser()
    parser.parse(text.splitlines())
    assert parser.site_maps() is None  # named by careers.example.com/robots.txt instead
    assert "careers.example.com" in text and f"{PUBLIC}/sitemap.xml" in text


@pytest.mark.parametrize("env", ["dev", "test", "production"])
def test_openapi_validates_in_every_mode(stack, env):
    settings = stack.settings.replace(env=env)
    app = build_gateway(settings)
    document = app.test_client().get("/v1/openapi.json").json
    validate_openapi(document)
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert ("/demo" in document["paths"]) == (env == "dev")


def test_linkedin_feed_without_its_account_is_a_problem_and_doctor_says_so(stack, stack_redis):
    settings = stack.settings.replace(linkedin_company_id="", linkedin_poster_email="")
    client = build_gateway(settings).test_client()
    response = client.get(f"/feeds/linkedin.xml?token={FEED_KEYS['linkedin']}")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["missing_settings"] == [
        "ATS_GATEWAY_LINKEDIN_COMPANY_ID",
        "ATS_GATEWAY_LINKEDIN_POSTER_EMAIL",
    ]
    assert "companyId" in response.json["detail"]
    assert client.get(f"/feeds/indeed.xml?token={FEED_KEYS['indeed']}").status_code == 200

    metadata = build_metadata(settings, stack_redis)
    for as_json in (False, True):
        out = io.StringIO()
        args = argparse.Namespace(connection=["job_portal"], json=as_json)
        code = cmd_doctor(args, settings=settings, metadata=metadata, out=out)
        assert code == 1, out.getvalue()
        if as_json:
            text = out.getvalue()
            rows = json.loads(text[: text.rindex("]") + 1])
            assert {r.get("setting") for r in rows} >= {
                "ATS_GATEWAY_LINKEDIN_COMPANY_ID",
                "ATS_GATEWAY_LINKEDIN_POSTER_EMAIL",
            }
        else:
            assert "MISSING setting ATS_GATEWAY_LINKEDIN_COMPANY_ID" in out.getvalue()
    out = io.StringIO()
    args = argparse.Namespace(connection=["job_portal"], json=False)
    assert cmd_doctor(args, settings=stack.settings, metadata=metadata, out=out) == 0, (
        out.getvalue()
    )
    assert "LINKEDIN" not in out.getvalue()
