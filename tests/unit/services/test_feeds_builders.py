"""[16] The feed builders and attribution rules on their own (no org; real Redis for the
gone-set diff). The end-to-end behaviour is in tests/integration/test_feeds.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from ats_gateway.config import PACKAGE_SCHEMAS
from ats_gateway.metadata.describe import ObjectDescribe
from ats_gateway.services.applications import indeed
from ats_gateway.services.applications.sources import (
    GATEWAY_FIELD,
    SOURCE_FIELD,
    SourceRecorder,
    extract,
)
from ats_gateway.services.feeds import indeed_feed, linkedin_feed, sitemap
from ats_gateway.services.feeds.gone import GoneJobs
from ats_gateway.services.feeds.jobposting import Organization, to_jobposting
from ats_gateway.services.feeds.xmlfeed import salary_text

DATA = Path(__file__).resolve().parents[2] / "integration" / "data"
ORG = Organization("Acme", "https://acme.example", "", "https://acme.example/jobs/{id}")
JOB = {
    "id": "a0M000000000001AAA",
    "name": "REQ-1",
    "title": "Nurse",
    "description": "<p>Care ]]> for people</p>" + "x" * 100,
    "employment_type": "Contract to Hire",
    "workplace_type": "Hybrid",
    "city": "London",
    "state": None,
    "country": "United Kingdom",
    "postal_code": "EC1A 1BB",
    "salary_min": 40.0,
    "salary_max": 55.5,
    "salary_currency": "GBP",
    "salary_period": "Hourly",
    "posted_at": "2026-01-15",
    "closes_at": "2026-03-15",
    "department": "People",
}


def test_sitemap_urlset_and_index_validate():
    schema = etree.XMLSchema(etree.parse(str(DATA / "sitemap.xsd")))
    index_schema = etree.XMLSchema(etree.parse(str(DATA / "siteindex.xsd")))
    entries = [sitemap.Entry(f"https://a.example/jobs/{i}", "2026-01-15") for i in range(25)]
    single = sitemap.build(entries, part_url="https://a.example/s-{n}.xml", lastmod="2026-01-16")
    assert list(single) == ["sitemap.xml"]
    schema.assertValid(etree.fromstring(single["sitemap.xml"]))
    split = sitemap.build(
        entries, part_url="https://a.example/s-{n}.xml", lastmod="2026-01-16", max_urls=10
    )
    assert sorted(split) == ["sitemap-1.xml", "sitemap-2.xml", "sitemap-3.xml", "sitemap.xml"]
    index = etree.fromstring(split["sitemap.xml"])
    index_schema.assertValid(index)
    assert [e.text for e in index.iter("{*}loc")][2] == "https://a.example/s-3.xml"
    for n in (1, 2, 3):
        schema.assertValid(etree.fromstring(split[f"sitemap-{n}.xml"]))


def test_jobposting_maps_the_orgs_values_to_googles():
    posting = to_jobposting(JOB, ORG)
    assert posting["employmentType"] == ["CONTRACTOR", "FULL_TIME"]
    assert posting["jobLocation"]["address"]["addressCountry"] == "GB"
    assert "addressRegion" not in posting["jobLocation"]["address"]
    assert posting["baseSalary"] == {
        "@type": "MonetaryAmount",
        "currency": "GBP",
        "value": {
            "@type": "QuantitativeValue",
            "unitText": "HOUR",
            "minValue": 40,
            "maxValue": 55.5,
        },
    }
    assert posting["validThrough"] == "2026-03-15T23:59:59Z"
    remote = to_jobposting({**JOB, "workplace_type": "Remote", "salary_min": None}, ORG)
    assert remote["jobLocationType"] == "TELECOMMUTE"
    assert remote["applicantLocationRequirements"] == {"@type": "Country", "name": "GB"}
    assert remote["baseSalary"]["value"]["value"] == 55.5


def test_xml_feeds_keep_cdata_and_survive_a_cdata_terminator():
    body = indeed_feed.build([JOB], ORG, built_at=0.0)
    job = etree.fromstring(body).find("job")
    # [22] the section is split, so the parsed text is the job's own text, unchanged
    assert job.findtext("description") == JOB["description"]
    assert b"Care ]]]]><![CDATA[> for people" in body
    assert job.findtext("country") == "GB"  # ISO 3166-1, as in Indeed's sample and JSON-LD
    assert job.find("state") is None  # no state in the data: no empty element
    assert job.findtext("salary") == "£40 - £55.50 per hour"
    assert job.findtext("jobtype") == "contract"
    assert job.find("indeed-apply-data") is None  # not configured
    body = linkedin_feed.build([JOB], ORG, built_at=0.0, account=linkedin_feed.LinkedInAccount("1"))
    li = etree.fromstring(body).find("job")
    assert li.findtext("description") == JOB["description"]
    assert li.findtext("location") == "London, United Kingdom"
    assert li.findtext("workplaceTypes") == "Hybrid"
    assert li.findtext("applyUrl").endswith("?utm_source=LinkedIn&utm_medium=job_board")


def test_salary_text_shapes():
    assert (
        salary_text(
            {
                "salary_min": 70000,
                "salary_max": 70000,
                "salary_currency": "USD",
                "salary_period": "Annual",
            }
        )
        == "$70,000 per year"
    )
    assert salary_text({"salary_min": None, "salary_max": None}) == ""


def test_gone_set_diffs_versions(redis_client):
    gone = GoneJobs(redis_client, prefix="test:feeds:gone:", clock=lambda: 1000.0)
    gone.clear()
    a, b = {"id": "a0M000000000001AAA", "title": "A"}, {"id": "a0M000000000002AAA", "title": "B"}
    assert gone.observe("1", [a, b])
    assert not gone.observe("1", [a])  # same version: skipped
    assert gone.lookup(b["id"]) is None
    assert gone.observe("2", [a, {**b, "title": "B2"}])
    assert gone.changed_at() == {b["id"][:15]: 1000.0}  # content changed in version 2
    assert gone.observe("3", [a])
    info = gone.lookup(b["id"])
    assert info["title"] == "B2" and info["gone_at"] == 1000.0
    assert gone.lookup(b["id"][:15]) == info
    assert gone.lookup("a0M000000000002ZZZ") is None  # wrong checksum suffix
    assert gone.observe("4", [a, b])  # reopened
    assert gone.lookup(b["id"]) is None
    gone.clear()


def _describe() -> ObjectDescribe:
    path = Path(PACKAGE_SCHEMAS) / "objects" / "bpats__Job_Board_Application__c.json"
    return ObjectDescribe(json.loads(path.read_text()))


def test_attribution_fills_the_picklist_only_with_allowed_values():
    recorder = SourceRecorder(_describe)
    body, attribution, errors = extract(
        {"email": "x", "utm_source": "indeed", "utm_medium": "cpc"}, via="key:abc"
    )
    assert errors == [] and "utm_source" not in body
    record: dict = {}
    recorder.apply(record, attribution)
    # [21] "Indeed" in the picklist is for Indeed Apply's signed channel: a key naming it
    # keeps the claim in the gateway's text, with its channel, not in the picklist.
    assert record == {GATEWAY_FIELD: "utm_source=indeed; utm_medium=cpc; via=key:abc"}
    assert attribution.label == "indeed (unsigned)"
    _, signed, _ = extract({"source": "Indeed"}, via="indeed-apply")
    record = {}
    recorder.apply(record, signed)
    assert record == {SOURCE_FIELD: "Indeed", GATEWAY_FIELD: "source=Indeed; via=indeed-apply"}
    body, attribution, _ = extract({"source": "Meetup"}, default_source="Job Board")
    record = {SOURCE_FIELD: "Meetup"}
    recorder.apply(record, attribution)
    assert record == {GATEWAY_FIELD: "source=Meetup"}
    body, attribution, _ = extract({}, default_source="job board")
    record = {}
    recorder.apply(record, attribution)
    assert record[SOURCE_FIELD] == "Job Board" and body["source"] == "job board"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"applicant": {"fullName": "A B", "email": "a@b.example"}}, "job.jobId"),
        ({"job": {"jobId": "x"}, "applicant": {"email": "a@b.example"}}, "applicant.fullName"),
        ({"job": {"jobId": "x"}, "applicant": {"fullName": "A B"}}, "applicant.email"),
    ],
)
def test_indeed_payload_missing_required_keys(payload, field):
    with pytest.raises(indeed.IndeedPayloadInvalid) as caught:
        indeed.parse(payload)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_indeed_names_and_signature():
    parsed = indeed.parse(
        {"job": {"jobId": "j"}, "applicant": {"firstName": "Ada", "lastName": "L", "email": "e"}}
    )
    assert (parsed.data["first_name"], parsed.data["last_name"]) == ("Ada", "L")
    assert indeed.split_name("Cher") == ("", "Cher")
    assert indeed.verify("k", b"{}", indeed.sign("k", b"{}"))
    assert not indeed.verify("k", b"{} ", indeed.sign("k", b"{}"))
    assert not indeed.verify("", b"{}", indeed.sign("", b"{}"))


def test_xml_forbidden_characters_are_removed_not_fatal():
    """[21]/[22] one job with text XML 1.0 forbids (pasted from Word) must not take the feed
    down: lxml refuses such strings ("All strings must be XML compatible")."""
    hostile = {
        **JOB,
        "title": "Nurse\x00\x1b\ufffe\ufffflead",
        "description": "line\x0bbreak\x0cpage\x01\x08 \ud800]]>" + "x" * 100,
        "city": "Lon\x00don",
    }
    for body in (
        indeed_feed.build([JOB, hostile], ORG, built_at=0.0),
        linkedin_feed.build([hostile], ORG, built_at=0.0, account=linkedin_feed.LinkedInAccount()),
    ):
        jobs = etree.fromstring(body).findall("job")
        assert jobs[-1].findtext("title") == "Nurselead"
        assert jobs[-1].findtext("description").startswith("line\nbreak\npage ]]>xxx")
        assert jobs[-1].findtext("city") == "London"


def test_linkedin_account_names_what_linkedin_requires():
    assert linkedin_feed.LinkedInAccount().missing() == [
        "ATS_GATEWAY_LINKEDIN_COMPANY_ID",
        "ATS_GATEWAY_LINKEDIN_POSTER_EMAIL",
    ]
    assert linkedin_feed.LinkedInAccount("acme", "jobs@acme.example").missing() == [
        "ATS_GATEWAY_LINKEDIN_COMPANY_ID"  # the numeric id of the LinkedIn Page
    ]
    assert linkedin_feed.LinkedInAccount("1234567", "jobs@acme.example").missing() == []


def test_one_job_that_cannot_be_rendered_is_left_out_not_the_feed(caplog):
    broken = {**JOB, "id": "a0M000000000002AAA", "salary_min": "not a number"}
    indeed_jobs = etree.fromstring(indeed_feed.build([broken, JOB], ORG, built_at=0.0))
    assert [j.findtext("referencenumber") for j in indeed_jobs.findall("job")] == [JOB["id"]]
    assert "job a0M000000000002AAA left out (ValueError)" in caplog.text
    no_id = {k: v for k, v in JOB.items() if k != "id"}
    account = linkedin_feed.LinkedInAccount("1", "a@b.example")
    body = linkedin_feed.build([JOB, no_id], ORG, built_at=0.0, account=account)
    assert [j.findtext("partnerJobId") for j in etree.fromstring(body).findall("job")] == [
        JOB["id"]
    ]
    assert "left out (KeyError)" in caplog.text
