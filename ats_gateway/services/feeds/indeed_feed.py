"""The Indeed XML job feed (with Indeed Apply data), built with lxml.

Sources (publisher's own pages, read in part): Indeed "XML feed"
(https://docs.indeed.com/indeed-apply/xml-feed), the older Indeed XML job feed guide
(https://techdocs.indeedeng.io/xml-job-feed), "XML job feed format"
(https://docs.indeed.com/sponsored-jobs-api/shared-resources/xml-job-feed-format), and for
Indeed Apply https://docs.indeed.com/dev/reference/application-data and
https://docs.indeed.com/indeed-apply/add-indeed-apply.

Shape::

    <?xml version="1.0" encoding="utf-8"?>
    <source>
      <publisher/> <publisherurl/> <lastBuildDate/>
      <job>
        <title/> <date/> <referencenumber/> <requisitionid/> <url/> <company/> <sourcename/>
        <city/> <state/> <country/> <postalcode/> <description/> <salary/> <jobtype/>
        <category/> <indeed-apply-data/>
      </job> ...
    </source>

Rules applied: the feed lists **every** public job (Indeed rejects or down-ranks partial
feeds); every value is in CDATA and no HTML entities are used; ``referencenumber`` is unique
per job instance and never changes (the Salesforce job id: one location per job here);
``date`` is the first publication date in ISO 8601; ``url`` carries
``utm_source=Indeed&utm_medium=job_board`` so applications through the career site are
attributed; ``indeed-apply-data`` is one CDATA string of URL-encoded
``indeed-apply-<param>=<value>`` pairs joined by ``&`` (``apiToken``, ``jobId`` — required,
Indeed's duplicate detection —, ``jobTitle``, ``jobCompanyName``, ``jobLocation``, ``jobUrl``,
``postUrl``), emitted only when an Indeed Apply API token and secret are configured.

Location: ``city``, ``state`` and ``postalcode`` as the org has them; ``country`` is the ISO
3166-1 alpha-2 code, as in Indeed's sample (``US``, ``AZ`` for the state) and as the JSON-LD
sends it (``United States`` -> ``US``). An element the job has no value for is left out rather
than sent empty: a job in London has no state (the issue found 71 of 228 empty ``<state>``).

Checked against Indeed's pages and not emitted, because their readable parts do not
document them (only element names seen in third-party feeds, values unknown):
``remotetype`` (a fully remote job is still sent with its location, which Indeed's location
elements describe) and ``expirationdate`` (a job past its end date leaves the feed, which is
how Indeed learns it is closed: the feed must list every open job and only those). The full
``jobtype`` vocabulary is not confirmed either (the sample shows ``fulltime``; the others
follow the same pattern).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

from lxml import etree

from ats_gateway.services.feeds.jobposting import Organization, country_code
from ats_gateway.services.feeds.xmlfeed import (
    cdata,
    job_element,
    location_text,
    salary_text,
    serialize,
)

JOB_TYPES = {
    "full-time": "fulltime",
    "part-time": "parttime",
    "contract": "contract",
    "contract to hire": "contract",
    "temporary": "temporary",
    "internship": "internship",
}
UTM = {"utm_source": "Indeed", "utm_medium": "job_board"}
REQUIRED = ("title", "date", "referencenumber", "requisitionid", "url", "company", "description")


@dataclass(frozen=True)
class IndeedApply:
    """Indeed Apply settings: the API token Indeed issued and where Indeed POSTs applications."""

    api_token: str
    post_url: str


def with_utm(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def apply_data(job: Mapping[str, Any], org: Organization, apply: IndeedApply) -> str:
    params = {
        "apiToken": apply.api_token,
        "jobId": str(job["id"]),
        "jobTitle": job.get("title") or job.get("name") or "",
        "jobCompanyName": org.name,
        "jobLocation": location_text(job),
        "jobUrl": org.job_url(str(job["id"])),
        "postUrl": apply.post_url,
    }
    # Every parameter must have a value (Indeed); drop the empty ones.
    return urlencode({f"indeed-apply-{k}": v for k, v in params.items() if v})


def job_date(job: Mapping[str, Any], fallback: str) -> str:
    posted = str(job.get("posted_at") or "")[:10]
    return f"{posted}T00:00:00Z" if posted else fallback


def build(
    jobs: Sequence[Mapping[str, Any]],
    org: Organization,
    *,
    built_at: float,
    apply: IndeedApply | None = None,
) -> bytes:
    root = etree.Element("source")
    cdata(root, "publisher", org.name)
    cdata(root, "publisherurl", org.url)
    cdata(root, "lastBuildDate", formatdate(built_at, usegmt=True))
    fallback = formatdate(built_at, usegmt=True)
    for job in jobs:
        with job_element(root, job) as node:
            _job(node, job, org, fallback, apply)
    return serialize(root)


def _job(
    node: etree._Element,
    job: Mapping[str, Any],
    org: Organization,
    fallback: str,
    apply: IndeedApply | None,
) -> None:
    job_id = str(job["id"])
    cdata(node, "title", job.get("title") or job.get("name"))
    cdata(node, "date", job_date(job, fallback))
    cdata(node, "referencenumber", job_id)
    cdata(node, "requisitionid", job.get("name") or job_id)
    cdata(node, "url", with_utm(org.job_url(job_id), UTM))
    cdata(node, "company", org.name)
    cdata(node, "sourcename", org.name)
    for tag, value in (
        ("city", job.get("city")),
        ("state", job.get("state")),
        ("country", country_code(str(job["country"])) if job.get("country") else None),
        ("postalcode", job.get("postal_code")),
    ):
        if value:
            cdata(node, tag, value)
    cdata(node, "description", job.get("description"))
    pay = salary_text(job)
    if pay:
        cdata(node, "salary", pay)
    kind = JOB_TYPES.get(str(job.get("employment_type") or "").strip().lower())
    if kind:
        cdata(node, "jobtype", kind)
    if job.get("department"):
        cdata(node, "category", job["department"])
    if apply is not None:
        cdata(node, "indeed-apply-data", apply_data(job, org, apply))
