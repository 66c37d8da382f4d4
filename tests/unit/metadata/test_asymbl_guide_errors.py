"""The Asymbl guide's error examples are caught before any call to the org, with public names."""

from __future__ import annotations

import pytest

from ats_gateway.metadata import InvalidInput

# The guide's STRING_TOO_LONG example value (FirstName, max length 40).
GUIDE_LONG_NAME = (
    "candidate test candidate test candidate test candidate test candidate test candidate test "
    "candidate test candidate test candidate test candidate test candidate test candidate test "
    "candidate test candidate"
)

VALID_APPLICATION = {
    "job_id": "a0M5g00000AbCdEAAZ",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann.lee@example.com",
}

VALID_FEEDBACK = {
    "recommendation": "Hire",
    "overall_rating": "4 - Very Good",
    "topics": [{"topic_id": "a0P5g00000AbCdEAAZ", "rating": "3 - Good"}],
}


def errors_of(metadata, resource, payload):
    with pytest.raises(InvalidInput) as info:
        metadata.validate(resource, payload)
    return info.value.errors


# (guide error code, resource, payload, expected {field, code}, words the message must contain)
GUIDE_CASES = [
    (
        "REQUIRED_FIELD_MISSING",
        "application",
        {k: v for k, v in VALID_APPLICATION.items() if k != "last_name"},
        {"field": "last_name", "code": "required"},
        ["last_name", "required"],
    ),
    (
        "STRING_TOO_LONG",
        "application",
        {**VALID_APPLICATION, "first_name": GUIDE_LONG_NAME},
        {"field": "first_name", "code": "too_long"},
        ["first_name", "at most 40 characters"],
    ),
    (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "interview_feedback",
        {**VALID_FEEDBACK, "recommendation": "Test"},
        {"field": "recommendation", "code": "not_allowed"},
        ["must be one of: Strong Hire, Hire, No Hire, Strong No Hire"],
    ),
    (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (null)",
        "interview_feedback",
        {**VALID_FEEDBACK, "recommendation": None},
        {"field": "recommendation", "code": "null"},
        ["recommendation"],
    ),
    (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (topic)",
        "interview_feedback",
        {**VALID_FEEDBACK, "topics": [{"topic_id": "a0P5g00000AbCdEAAZ", "rating": "6 - Wow"}]},
        {"field": "topics[0].rating", "code": "not_allowed"},
        ["1 - Poor, 2 - Fair, 3 - Good, 4 - Very Good, 5 - Excellent"],
    ),
    (
        "INVALID_EMAIL_ADDRESS",
        "application",
        {**VALID_APPLICATION, "email": "ann.lee"},
        {"field": "email", "code": "invalid_email"},
        ["email"],
    ),
    (
        "MALFORMED_ID",
        "application",
        {**VALID_APPLICATION, "job_id": "not-an-id"},
        {"field": "job_id", "code": "invalid_id"},
        ["15 or 18"],
    ),
]


@pytest.mark.parametrize("case", GUIDE_CASES, ids=[c[0] for c in GUIDE_CASES])
def test_guide_errors_are_caught_locally_with_public_names(online, org, case):
    _, resource, payload, expected, words = case
    calls_before = len(org.calls)
    errors = errors_of(online, resource, payload)
    assert len(org.calls) == calls_before  # nothing was asked of the org
    assert [{"field": e["field"], "code": e["code"]} for e in errors] == [expected]
    for word in words:
        assert word in errors[0]["message"]
    # no Salesforce API name leaks into what the client sees
    assert "__c" not in errors[0]["field"] and "__c" not in errors[0]["message"]


def test_valid_payloads_pass(metadata):
    assert metadata.validate("application", VALID_APPLICATION)["first_name"] == "Ann"
    clean = metadata.validate("interview_feedback", VALID_FEEDBACK)
    assert clean["topics"][0]["rating"] == "3 - Good"


def test_several_errors_are_all_reported(metadata):
    errors = errors_of(metadata, "application", {"first_name": "x" * 41, "email": "x", "extra": 1})
    assert {(e["field"], e["code"]) for e in errors} == {
        ("job_id", "required"),
        ("last_name", "required"),
        ("first_name", "too_long"),
        ("email", "invalid_email"),
        ("extra", "unknown_field"),
    }
