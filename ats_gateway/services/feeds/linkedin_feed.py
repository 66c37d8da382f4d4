"""The LinkedIn XML job feed (Basic Jobs / job wrapping), built with lxml.

Source: LinkedIn Talent Solutions, "XML Feeds Development Guide"
(https://learn.microsoft.com/en-us/linkedin/talent/job-postings/xml-feeds-development-guide,
and its ``?view=li-lts-2026-04`` version) and the XML Feeds FAQ
(https://learn.microsoft.com/en-us/linkedin/talent/job-postings/xml-feeds-faq).

Mandatory per job: Job ID (``partnerJobId``, at most 40 characters), Company Name
(``company``), Job Title (``title``), Job Description (``description``, at least 100
characters, limited HTML), Location (``location``: "City, State" in the US, "City, Country"
elsewhere), Apply URL (``applyUrl``), LinkedIn Company ID (``companyId``, mandatory for ATSs)
and, in the 2026 version, Job Poster Email (``posterEmail``). Feed level (optional):
``lastBuildDate``, ``publisherURL`` (casing as in the guide), ``publisher``,
``expectedJobCount``. Values in CDATA. LinkedIn downloads the whole feed from a static URL;
a job disappears when it is no longer in it.

Recommended elements sent: ``city``, ``state``, ``country``, ``postalCode``,
``workplaceTypes`` (``On-site`` / ``Remote`` / ``Hybrid``), ``jobtype`` (``FULL_TIME``,
``PART_TIME``, ``CONTRACT``, ``TEMPORARY``, ``INTERNSHIP``). Not confirmed (vocabulary or
shape not readable here), so not sent: salary, ``experienceLevel``, industry and function
codes. ``companyId`` (numeric: the id in the LinkedIn Page's admin URL) and ``posterEmail``
come from settings (``ATS_GATEWAY_LINKEDIN_COMPANY_ID`` / ``_POSTER_EMAIL``); while either is
missing, :meth:`LinkedInAccount.missing` names it and the gateway answers the feed URL with a
503 problem saying so (and ``ats-gateway doctor`` reports it) instead of serving a feed every
job of which LinkedIn would reject. A description shorter than 100 characters is sent as is
(LinkedIn will not post that job; we do not pad). Country is sent as the org has it (the
guide's ``location`` wants a country name for non-US jobs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from lxml import etree

from ats_gateway.config import linkedin_feed_missing
from ats_gateway.services.feeds.indeed_feed import with_utm
from ats_gateway.services.feeds.jobposting import Organization
from ats_gateway.services.feeds.xmlfeed import (
    cdata,
    job_element,
    location_text,
    plain,
    serialize,
)

WORKPLACE_TYPES = {"on-site": "On-site", "remote": "Remote", "hybrid": "Hybrid"}
JOB_TYPES = {
    "full-time": "FULL_TIME",
    "part-time": "PART_TIME",
    "contract": "CONTRACT",
    "contract to hire": "CONTRACT",
    "temporary": "TEMPORARY",
    "internship": "INTERNSHIP",
}
UTM = {"utm_source": "LinkedIn", "utm_medium": "job_board"}
REQUIRED = (
    "partnerJobId",
    "company",
    "title",
    "description",
    "location",
    "applyUrl",
    "companyId",
    "posterEmail",
)
MAX_JOB_ID = 40


@dataclass(frozen=True)
class LinkedInAccount:
    company_id: str = ""
    poster_email: str = ""

    def missing(self) -> list[str]:
        """The settings LinkedIn needs that are unset or malformed (empty: the feed is valid)."""
        return linkedin_feed_missing(self.company_id, self.poster_email)


def build(
    jobs: Sequence[Mapping[str, Any]],
    org: Organization,
    *,
    built_at: float,
    account: LinkedInAccount,
) -> bytes:
    root = etree.Element("source")
    cdata(root, "lastBuildDate", formatdate(built_at, usegmt=True))
    cdata(root, "publisherURL", org.url)
    cdata(root, "publisher", org.name)
    plain(root, "expectedJobCount", len(jobs))
    for job in jobs:
        with job_element(root, job) as node:
            _job(node, job, org, account)
    return serialize(root)


def _job(
    node: etree._Element, job: Mapping[str, Any], org: Organization, account: LinkedInAccount
) -> None:
    cdata(node, "partnerJobId", str(job["id"])[:MAX_JOB_ID])
    cdata(node, "company", org.name)
    cdata(node, "title", job.get("title") or job.get("name"))
    cdata(node, "description", job.get("description"))
    cdata(node, "applyUrl", with_utm(org.job_url(str(job["id"])), UTM))
    cdata(node, "companyId", account.company_id)
    cdata(node, "posterEmail", account.poster_email)
    cdata(node, "location", location_text(job))
    # Recommended: only the ones the job has (no empty <state> for a job in London).
    for tag, key in (
        ("city", "city"),
        ("state", "state"),
        ("country", "country"),
        ("postalCode", "postal_code"),
    ):
        if job.get(key):
            cdata(node, tag, job[key])
    workplace = WORKPLACE_TYPES.get(str(job.get("workplace_type") or "").strip().lower())
    if workplace:
        cdata(node, "workplaceTypes", workplace)
    kind = JOB_TYPES.get(str(job.get("employment_type") or "").strip().lower())
    if kind:
        cdata(node, "jobtype", kind)
