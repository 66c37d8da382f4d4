"""A public job as schema.org ``JobPosting`` JSON-LD, the way Google for Jobs reads it.

Source: Google Search Central, "Job posting (JobPosting) structured data"
(https://developers.google.com/search/docs/appearance/structured-data/job-posting) and
schema.org (https://schema.org/JobPosting, https://schema.org/applicantLocationRequirements).

Required by Google: ``title``, ``description`` (HTML), ``datePosted`` (ISO 8601),
``hiringOrganization`` (``Organization`` with ``name``, ``sameAs``, ``logo``) and
``jobLocation`` (``Place`` / ``PostalAddress``), except for a fully remote job, which carries
``jobLocationType: TELECOMMUTE`` and ``applicantLocationRequirements`` (a ``Country``) instead.
Recommended, emitted when the org has the value: ``validThrough``, ``employmentType``,
``baseSalary`` (``MonetaryAmount`` with ISO 4217 ``currency`` and a ``QuantitativeValue``
with ``minValue``/``maxValue``/``unitText``), ``identifier`` (``PropertyValue``),
``directApply``.

Not confirmed from Google's own page here (only copies of it could be read): the full
``employmentType`` vocabulary beyond FULL_TIME, PART_TIME, CONTRACTOR, TEMPORARY, INTERN
(VOLUNTEER, PER_DIEM, OTHER match Google's Cloud Talent Solution ``EmploymentType`` enum),
and the ``unitText`` set HOUR/DAY/WEEK/MONTH/YEAR; we only emit HOUR and YEAR.

An expired job must be expired for Google by one of: ``validThrough`` in the past, the page
answering 404/410, the markup removed, or ``noindex``. The gateway does two of them for a
closed job: 410, with a posting whose ``validThrough`` is the moment it was seen closed.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pycountry

CONTEXT = "https://schema.org/"

#: The org's employment types (bpats__Employment_Type__c) -> Google's employmentType values.
EMPLOYMENT_TYPES: dict[str, list[str]] = {
    "full-time": ["FULL_TIME"],
    "part-time": ["PART_TIME"],
    "contract": ["CONTRACTOR"],
    "contract to hire": ["CONTRACTOR", "FULL_TIME"],
    "temporary": ["TEMPORARY"],
    "internship": ["INTERN"],
    "volunteer": ["VOLUNTEER"],
    "per diem": ["PER_DIEM"],
}
#: bpats__Salary_Period__c -> QuantitativeValue.unitText
SALARY_UNITS = {"hourly": "HOUR", "daily": "DAY", "weekly": "WEEK", "monthly": "MONTH"}
SALARY_UNITS |= {"annual": "YEAR", "yearly": "YEAR", "annually": "YEAR"}
REMOTE = "remote"


@dataclass(frozen=True)
class Organization:
    """The hiring organization (settings: name, URL, logo) and the job page URL template."""

    name: str
    url: str = ""
    logo: str = ""
    job_url_template: str = ""

    def job_url(self, job_id: str) -> str:
        return self.job_url_template.replace("{id}", job_id)

    def as_jsonld(self) -> dict[str, Any]:
        org: dict[str, Any] = {"@type": "Organization", "name": self.name}
        if self.url:
            org["sameAs"] = self.url
        if self.logo:
            org["logo"] = self.logo
        return org


@functools.lru_cache(maxsize=512)
def country_code(value: str) -> str:
    """ISO 3166-1 alpha-2 of a country name or code ("United States" -> "US"); the value
    itself when pycountry does not know it (Google also accepts a name)."""
    try:
        return pycountry.countries.lookup(value.strip()).alpha_2
    except LookupError:
        return value.strip()


def is_remote(job: Mapping[str, Any]) -> bool:
    return str(job.get("workplace_type") or "").strip().lower() == REMOTE


def employment_types(value: Any) -> list[str]:
    if not value:
        return []
    return EMPLOYMENT_TYPES.get(str(value).strip().lower(), ["OTHER"])


def _date(value: Any) -> str | None:
    if not value:
        return None
    return str(value)[:10] if len(str(value)) >= 10 else str(value)


def end_of_day(value: Any) -> str | None:
    """``validThrough`` of a job ending on a date: the end of that day (UTC)."""
    day = _date(value)
    return f"{day}T23:59:59Z" if day else None


def salary(job: Mapping[str, Any]) -> dict[str, Any] | None:
    low, high = job.get("salary_min"), job.get("salary_max")
    currency = job.get("salary_currency")
    unit = SALARY_UNITS.get(str(job.get("salary_period") or "").strip().lower())
    if (low is None and high is None) or not currency or not unit:
        return None
    value: dict[str, Any] = {"@type": "QuantitativeValue", "unitText": unit}
    if low is not None and high is not None and low != high:
        value["minValue"], value["maxValue"] = _number(low), _number(high)
    else:
        value["value"] = _number(low if low is not None else high)
    return {"@type": "MonetaryAmount", "currency": currency, "value": value}


def _number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def address(job: Mapping[str, Any]) -> dict[str, Any]:
    postal: dict[str, Any] = {"@type": "PostalAddress"}
    for key, name in (
        ("addressLocality", "city"),
        ("addressRegion", "state"),
        ("postalCode", "postal_code"),
    ):
        if job.get(name):
            postal[key] = job[name]
    if job.get("country"):
        postal["addressCountry"] = country_code(str(job["country"]))
    return postal


def to_jobposting(
    job: Mapping[str, Any], org: Organization, *, posted_fallback: str = ""
) -> dict[str, Any]:
    """The ``JobPosting`` of one snapshot job (public field names, see `job.toml`)."""
    job_id = str(job["id"])
    posting: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "JobPosting",
        "title": job.get("title") or job.get("name") or "",
        "description": job.get("description") or job.get("title") or "",
        "identifier": {"@type": "PropertyValue", "name": org.name, "value": job_id},
        "datePosted": _date(job.get("posted_at")) or posted_fallback,
        "hiringOrganization": org.as_jsonld(),
    }
    valid_through = end_of_day(job.get("closes_at"))
    if valid_through:
        posting["validThrough"] = valid_through
    kinds = employment_types(job.get("employment_type"))
    if kinds:
        posting["employmentType"] = kinds[0] if len(kinds) == 1 else kinds
    if is_remote(job):
        posting["jobLocationType"] = "TELECOMMUTE"
        if job.get("country"):
            posting["applicantLocationRequirements"] = {
                "@type": "Country",
                "name": country_code(str(job["country"])),
            }
    else:
        posting["jobLocation"] = {"@type": "Place", "address": address(job)}
    pay = salary(job)
    if pay:
        posting["baseSalary"] = pay
    if org.job_url_template:
        posting["url"] = org.job_url(job_id)
    posting["directApply"] = True
    return posting


def expired_jobposting(gone: Mapping[str, Any], org: Organization) -> dict[str, Any]:
    """What a closed job answers (with 410): the little we kept of it, ``validThrough`` set
    to when the gateway saw it leave the snapshot (in the past), so search engines drop it."""
    gone_at = dt.datetime.fromtimestamp(float(gone["gone_at"]), dt.UTC)
    posting: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "JobPosting",
        "title": gone.get("title") or "",
        "description": gone.get("title") or "",
        "identifier": {"@type": "PropertyValue", "name": org.name, "value": gone["id"]},
        "hiringOrganization": org.as_jsonld(),
        "validThrough": gone_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if gone.get("posted_at"):
        posting["datePosted"] = _date(gone["posted_at"])
    return posting
