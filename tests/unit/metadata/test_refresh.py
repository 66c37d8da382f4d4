"""A change in the org's describe takes effect after refresh, in validation, JSON Schema and
OpenAPI alike, with no restart; the cache revalidates with If-Modified-Since and falls back to
the snapshots."""

from __future__ import annotations

import pytest

from ats_gateway.metadata import InvalidInput
from ats_gateway.metadata.cache import ORG, SNAPSHOT

from .conftest import make_metadata

JOB = "bpats__Job__c"
FEEDBACK = "bpats__Interview_Feedback__c"
APPLICATION = "bpats__Job_Board_Application__c"
FEEDBACK_OK = {"recommendation": "Hire"}


def enum_in_openapi(md, component, prop):
    schema = md.openapi()["components"]["schemas"][component]["properties"][prop]
    return schema.get("enum")


def test_picklist_value_added_in_the_org_is_accepted_after_refresh(online, org):
    payload = {"recommendation": "Maybe Later"}
    with pytest.raises(InvalidInput):
        online.validate("interview_feedback", payload)
    assert (
        "Maybe Later"
        not in online.json_schema("interview_feedback")["properties"]["recommendation"]["enum"]
    )

    org.change_field(FEEDBACK, "bpats__Recommendation__c", add_values=["Maybe Later"])
    # Not before the refresh: the cache serves what it revalidated last.
    with pytest.raises(InvalidInput):
        online.validate("interview_feedback", payload)

    online.refresh()
    assert online.validate("interview_feedback", payload) == payload
    assert (
        "Maybe Later"
        in online.json_schema("interview_feedback")["properties"]["recommendation"]["enum"]
    )
    assert "Maybe Later" in enum_in_openapi(online, "InterviewFeedbackInput", "recommendation")


def test_deactivated_value_and_changed_length_take_effect_after_refresh(online, org):
    online.validate("interview_feedback", {"recommendation": "Strong No Hire"})
    online.validate(
        "application",
        {
            "job_id": "a0M5g00000AbCdE",
            "first_name": "x" * 40,
            "last_name": "Lee",
            "email": "a@example.com",
        },
    )
    org.change_field(FEEDBACK, "bpats__Recommendation__c", deactivate_values=["Strong No Hire"])
    org.change_field(APPLICATION, "bpats__First_Name__c", length=20)
    online.refresh()

    errors = online.errors("interview_feedback", {"recommendation": "Strong No Hire"})
    assert errors == [
        {
            "field": "recommendation",
            "code": "not_allowed",
            "message": "recommendation must be one of: Strong Hire, Hire, No Hire",
        }
    ]
    errors = online.errors(
        "application",
        {
            "job_id": "a0M5g00000AbCdE",
            "first_name": "x" * 40,
            "last_name": "Lee",
            "email": "a@example.com",
        },
    )
    assert errors[0]["message"] == "first_name must be at most 20 characters"
    assert online.json_schema("application")["properties"]["first_name"]["maxLength"] == 20
    assert (
        online.openapi()["components"]["schemas"]["ApplicationInput"]["properties"]["first_name"][
            "maxLength"
        ]
        == 20
    )


def test_refresh_revalidates_with_if_modified_since(online, org):
    online.refresh()  # loads the objects only the permission preflight uses
    org.calls.clear()
    online.refresh()
    # every describe was already cached from the org: each asks "changed since?" -> 304
    assert org.calls and all(since for _, since in org.calls)
    versions = {e.sobject: e.version for e in online.refresh()}
    org.change_field(JOB, "bpats__Department__c", add_values=["Research"])
    entries = {e.sobject: e for e in online.refresh()}
    assert entries[JOB].version != versions[JOB]
    assert entries[APPLICATION].version == versions[APPLICATION]
    assert all(e.source == ORG for e in entries.values())


def test_schemas_are_memoized_by_describe_version(online, org):
    first = online.schema_class("application")
    assert online.schema_class("application") is first
    org.change_field(APPLICATION, "bpats__Source__c", add_values=["Podcast"])
    online.refresh()
    assert online.schema_class("application") is not first


def test_org_down_keeps_serving_the_last_describe_and_says_so(online, org):
    org.change_field(FEEDBACK, "bpats__Recommendation__c", add_values=["Maybe"])
    online.refresh()
    org.down = True
    online.refresh()
    assert online.validate("interview_feedback", {"recommendation": "Maybe"})
    state, details = online.cache.status(online.pairs())
    assert state == "degraded"
    entry = details["objects"][f"interview_feedback/{FEEDBACK}"]
    assert entry["source"] == ORG and "unreachable" in entry["error"]


def test_unreachable_org_at_start_falls_back_to_the_snapshot(org):
    org.down = True
    md = make_metadata({"job_portal": org.fetcher, "interview_feedback": org.fetcher})
    md.check()
    assert md.entry("application").source == SNAPSHOT
    assert md.validate("interview_feedback", FEEDBACK_OK) == FEEDBACK_OK
    state, details = md.cache.status(md.pairs())
    assert state == "degraded" and details["source"] == SNAPSHOT
    # one failed attempt per connection, not one timeout per object
    assert len(org.calls) == 2
    org.down = False
    md.cache._down_until.clear()  # the back-off would expire on its own after 30 s
    md.refresh()
    assert md.entry("application").source == ORG
    assert md.cache.status(md.pairs())[0] == "ok"


def test_offline_default_serves_snapshots_and_is_ready(metadata):
    state, details = metadata.cache.status(metadata.pairs())
    assert state == "ok" and details["source"] == SNAPSHOT
    loaded = [o for o in details["objects"].values() if o["source"]]
    assert len(loaded) == 4 and all(o["age_seconds"] >= 0 for o in loaded)


def test_a_describe_that_breaks_a_contract_is_not_taken(online, org):
    describe = org.describe(APPLICATION)
    for field in describe["fields"]:
        if field["name"] == "bpats__First_Name__c":
            field["name"] = "bpats__Given_Name__c"  # renamed in the org
    org.change_field(APPLICATION, "bpats__Last_Name__c")  # bumps the modification time
    entries = {e.sobject: e for e in online.refresh()}
    assert "first_name -> bpats__First_Name__c" in entries[APPLICATION].error
    # validation keeps working with the last describe that fitted
    errors = online.errors("application", {"first_name": "x" * 41})
    assert {
        "field": "first_name",
        "code": "too_long",
        "message": "first_name must be at most 40 characters",
    } in errors
    state, details = online.cache.status(online.pairs())
    assert state == "degraded"
    assert "ContractError" in details["objects"][f"job_portal/{APPLICATION}"]["error"]


def test_one_call_per_connection_when_nothing_changed(org):
    from .conftest import with_global_check

    fetch = with_global_check(org)
    md = make_metadata({"job_portal": fetch, "interview_feedback": fetch})
    md.check()
    md.refresh()  # loads the preflight objects too
    org.calls.clear()
    entries = md.refresh()
    assert org.calls == [] and len(fetch.probes) == 2  # one probe per connection
    assert all(e.source == ORG and e.error is None for e in entries)

    org.change_field(FEEDBACK, "bpats__Recommendation__c", add_values=["Lean Hire"])
    md.refresh()
    # the org-wide probe said "changed": objects were revalidated one by one (304 or new)
    assert FEEDBACK in {o for o, _ in org.calls}
    assert all(since for _, since in org.calls)
    assert md.validate("interview_feedback", {"recommendation": "Lean Hire"})
