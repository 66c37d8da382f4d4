"""Listing query parameters (job_filters) and translation between public and API names."""

from __future__ import annotations

from datetime import date

import pytest
from werkzeug.datastructures import MultiDict

from ats_gateway.metadata import InvalidInput


def test_filters_sort_limit_and_fields(metadata):
    query = metadata.load_query(
        "job_filters",
        MultiDict(
            [
                ("department", "Sales,Legal"),
                ("department", "People"),
                ("posted_after", "2026-01-01"),
                ("salary_min", "50000"),
                ("q", "  data engineer "),
                ("sort", "-posted_at,title"),
                ("limit", "50"),
                ("fields", "id,title"),
            ]
        ),
    )
    by_name = {f.name: f for f in query.filters}
    assert by_name["department"].value == ["Sales", "Legal", "People"]
    assert by_name["department"].api_name == "bpats__Department__c"
    assert by_name["posted_after"].op == "gte" and by_name["posted_after"].value == date(2026, 1, 1)
    assert by_name["salary_min"].value == 50000
    assert query.q == "data engineer"
    assert [(s.field, s.descending) for s in query.sort] == [("posted_at", True), ("title", False)]
    assert query.limit == 50 and query.fields == ("id", "title")


def test_defaults(metadata):
    query = metadata.load_query("job_filters", {})
    assert query.filters == () and query.q is None and query.cursor is None
    assert query.limit == 20
    assert [(s.field, s.descending) for s in query.sort] == [("posted_at", True)]


@pytest.mark.parametrize(
    ("args", "field", "code"),
    [
        ({"department": "Astrology"}, "department[0]", "not_allowed"),
        ({"employment_type": "Full-time,Gig"}, "employment_type[1]", "not_allowed"),
        ({"sort": "salary_currency"}, "sort", "not_allowed"),
        ({"sort": "title,-title"}, "sort", "not_allowed"),
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "101"}, "limit", "out_of_range"),
        ({"limit": "ten"}, "limit", "invalid_number"),
        ({"posted_after": "last week"}, "posted_after", "invalid_date"),
        ({"fields": "title,Secret__c"}, "fields[1]", "not_allowed"),
        ({"q": "x" * 201}, "q", "too_long"),
        ({"colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_bad_parameters_say_what_is_allowed(metadata, args, field, code):
    with pytest.raises(InvalidInput) as info:
        metadata.load_query("job_filters", args)
    assert [(e["field"], e["code"]) for e in info.value.errors] == [(field, code)]


def test_unknown_picklist_filter_lists_the_org_values(metadata):
    with pytest.raises(InvalidInput) as info:
        metadata.load_query("job_filters", {"workplace_type": "Moon"})
    assert info.value.errors[0]["message"] == (
        "workplace_type must be one of: On-site, Hybrid, Remote"
    )


def test_to_salesforce_uses_api_names(metadata):
    clean = metadata.validate(
        "application",
        {
            "job_id": "a0M5g00000AbCdE",
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "consent": True,
            "source": "LinkedIn",
        },
    )
    assert metadata.to_salesforce("application", clean) == {
        "bpats__Job__c": "a0M5g00000AbCdE",
        "bpats__First_Name__c": "Ann",
        "bpats__Last_Name__c": "Lee",
        "bpats__Email__c": "ann@example.com",
        "bpats__Consent__c": True,
        "bpats__Source__c": "LinkedIn",
    }
    feedback = metadata.validate(
        "interview_feedback",
        {
            "recommendation": "Hire",
            "topics": [{"topic_id": "a0P5g00000AbCdE", "rating": "3 - Good"}],
        },
    )
    record = metadata.to_salesforce("interview_feedback", feedback)
    assert record == {"bpats__Recommendation__c": "Hire"}  # children are translated one by one
    assert metadata.to_salesforce("topic_feedback", feedback["topics"][0]) == {
        "bpats__Interview_Topic__c": "a0P5g00000AbCdE",
        "bpats__Rating__c": "3 - Good",
    }


def test_from_salesforce_exposes_public_names_only(metadata):
    record = {
        "attributes": {"type": "bpats__Job__c"},
        "Id": "a0M5g00000AbCdEAAZ",
        "bpats__Job_Title__c": "Data Engineer",
        "bpats__Department__c": "Engineering",
        "bpats__Account__c": "0015g00000AbCdEAAZ",  # the client company: never public
        "bpats__Salary_Min__c": 100000.0,
        "bpats__Date_Posted__c": "2026-11-01",
    }
    job = metadata.from_salesforce("job", record)
    assert job["id"] == "a0M5g00000AbCdEAAZ" and job["title"] == "Data Engineer"
    assert job["salary_min"] == 100000.0 and job["posted_at"] == "2026-11-01"
    assert job["city"] is None
    assert "0015g00000AbCdEAAZ" not in job.values()
    assert not any("__" in key for key in job)
    assert metadata.from_salesforce("job", record, fields=["id", "title"]) == {
        "id": "a0M5g00000AbCdEAAZ",
        "title": "Data Engineer",
    }


def test_org_errors_come_back_with_public_names(metadata):
    from ats_gateway.metadata.service import org_errors
    from ats_gateway.salesforce import ErrorDetail

    errors = org_errors(
        metadata,
        "application",
        [
            ErrorDetail(
                "STRING_TOO_LONG",
                "First Name: data value too large: x (max length=40)",
                ("bpats__First_Name__c",),
            ),
            ErrorDetail("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Consent is required in the EU", ()),
        ],
    )
    assert errors[0] == {
        "field": "first_name",
        "code": "too_long",
        "message": "first_name was refused by the org (too long)",
    }
    assert errors[1]["code"] == "rejected_by_org"
    assert "Consent is required in the EU" in errors[1]["message"]
    assert not any("__c" in e["message"] for e in errors)


def test_multipicklists_are_lists_publicly_and_semicolons_in_the_org(tmp_path):
    import json
    import shutil

    from .conftest import SCHEMAS, make_metadata

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    path = schemas / "objects" / "bpats__Job__c.json"
    describe = json.loads(path.read_text())
    skills = dict(next(f for f in describe["fields"] if f["name"] == "bpats__Department__c"))
    skills.update(
        name="bpats__Skills__c",
        type="multipicklist",
        picklistValues=[{"value": v, "label": v, "active": True} for v in ("Python", "SQL")],
    )
    describe["fields"].append(skills)
    path.write_text(json.dumps(describe))
    contract = schemas / "resources" / "job.toml"
    contract.write_text(
        contract.read_text()
        + '\n[fields.skills]\napi_name = "bpats__Skills__c"\nfilterable = true\n'
    )
    filters = schemas / "resources" / "job_filters.toml"
    filters.write_text(filters.read_text() + '\n[filters.skills]\nfield = "skills"\nop = "in"\n')
    md = make_metadata(schemas_dir=schemas)
    md.check()
    job = md.from_salesforce("job", {"Id": "a0M5g00000AbCdE", "bpats__Skills__c": "Python;SQL"})
    assert job["skills"] == ["Python", "SQL"]
    assert md.to_salesforce("job", {"skills": ["Python", "SQL"]}) == {
        "bpats__Skills__c": "Python;SQL"
    }
    query = md.load_query("job_filters", {"skills": "Python,SQL"})
    assert query.filters[0].value == ["Python", "SQL"]
    with pytest.raises(InvalidInput) as info:
        md.load_query("job_filters", {"skills": "Cobol"})
    assert info.value.errors[0]["message"] == "skills values must each be one of: Python, SQL"
