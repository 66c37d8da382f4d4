"""Describe field + contract entry -> marshmallow field, one row per describe field type."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from ats_gateway.metadata.contracts import Contract, ContractField
from ats_gateway.metadata.describe import FieldDescribe, ObjectDescribe
from ats_gateway.metadata.errors import error_list
from ats_gateway.metadata.factory import build_schema


def fd(name: str, type_: str, **attrs: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "label": name,
        "type": type_,
        "length": 0,
        "precision": 0,
        "scale": 0,
        "digits": 0,
        "createable": True,
        "nillable": True,
        "defaultedOnCreate": False,
        "restrictedPicklist": False,
        "picklistValues": [],
        "referenceTo": [],
    }
    base.update(attrs)
    return base


def values(*names: str, inactive: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"value": v, "label": v, "active": v not in inactive} for v in names]


# type, describe attributes, valid inputs, [(invalid input, code)]
CASES: list[tuple[str, dict[str, Any], list[Any], list[tuple[Any, str]]]] = [
    ("string", {"length": 5}, ["", "abc", "abcde"], [("abcdef", "too_long"), (12, "invalid_type")]),
    ("textarea", {"length": 10}, ["line\nline"], [("x" * 11, "too_long")]),
    ("combobox", {"length": 3}, ["abc"], [("abcd", "too_long")]),
    ("encryptedstring", {"length": 4}, ["abcd"], [("abcde", "too_long")]),
    (
        "email",
        {"length": 20},
        ["ann@example.com"],
        [("not-an-email", "invalid_email"), ("a" * 10 + "@example.com", "too_long")],
    ),
    (
        "phone",
        {"length": 20},
        ["+1 (415) 555-0100", "020 7946 0958"],
        [("call me", "invalid_phone"), ("+1 415 555 0100 0000000", "too_long")],
    ),
    (
        "url",
        {"length": 40},
        ["https://www.linkedin.com/in/ann"],
        [
            ("ftp://example.com/x", "invalid_url"),
            ("linkedin", "invalid_url"),
            ("https://example.com/" + "x" * 30, "too_long"),
        ],
    ),
    (
        "picklist",
        {
            "restrictedPicklist": True,
            "picklistValues": values("Full-time", "Part-time", "Old", inactive=("Old",)),
        },
        ["Full-time", "Part-time"],
        [("Old", "not_allowed"), ("full-time", "not_allowed"), ("Test", "not_allowed")],
    ),
    (
        "picklist",
        {"restrictedPicklist": False, "length": 255, "picklistValues": values("LinkedIn")},
        ["LinkedIn", "A newspaper ad"],
        [("x" * 256, "too_long")],
    ),
    (
        "multipicklist",
        {"restrictedPicklist": True, "picklistValues": values("Python", "SQL", "Go")},
        [["Python"], ["Python", "SQL"], []],
        [(["Python", "Cobol"], "not_allowed"), ("Python", "invalid_type")],
    ),
    (
        "boolean",
        {"nillable": False, "defaultedOnCreate": True},
        [True, False],
        [("yes", "invalid_type"), (1, "invalid_type"), (None, "null")],
    ),
    ("date", {}, ["2026-11-22"], [("22/11/2026", "invalid_date"), ("2026-13-01", "invalid_date")]),
    (
        "datetime",
        {},
        ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000+0100"],
        [("2026-11-22T10:00:00", "invalid_datetime"), ("tomorrow", "invalid_datetime")],
    ),
    ("time", {}, ["10:30:00", "23:59"], [("25:00", "invalid_time")]),
    (
        "currency",
        {"precision": 6, "scale": 2},
        [1234.5, 0, 9999.99, -5],
        [
            (10000, "too_many_digits"),
            (1.234, "too_many_decimals"),
            ("12", "invalid_number"),
            (True, "invalid_number"),
        ],
    ),
    (
        "double",
        {"precision": 3, "scale": 0},
        [1, 999],
        [(1000, "too_many_digits"), (1.5, "too_many_decimals")],
    ),
    ("percent", {"precision": 5, "scale": 2}, [12.5, 100], [(1000, "too_many_digits")]),
    (
        "int",
        {"digits": 3},
        [0, 999, -999],
        [(1000, "too_many_digits"), (1.5, "invalid_number"), ("7", "invalid_number")],
    ),
    (
        "reference",
        {"referenceTo": ["bpats__Job__c"]},
        ["a0M5g00000AbCdE", "a0M5g00000AbCdEAAZ"],
        [
            ("a0M5g00000AbCd", "invalid_id"),
            ("a0M5g00000AbCdEAA", "invalid_id"),
            ("a0M5g00000AbCdE!", "invalid_id"),
        ],
    ),
    ("id", {}, ["0035g00000XyZaBAAV"], [("123", "invalid_id")]),
]


def schema_for(type_: str, attrs: dict[str, Any], *, required: bool = False):
    describe = ObjectDescribe({"name": "X__c", "fields": [fd("F__c", type_, **attrs)]})
    contract = Contract(
        name="thing",
        object="X__c",
        connection="c",
        kind="input",
        fields={"value": ContractField("value", "F__c", required=required)},
    )
    return build_schema(contract, describe)


def ids(case) -> str:
    return case[0] + ("-restricted" if case[1].get("restrictedPicklist") else "")


@pytest.mark.parametrize("case", CASES, ids=[ids(c) for c in CASES])
def test_each_describe_type_accepts_valid_and_names_what_is_wrong(case):
    type_, attrs, valid, invalid = case
    schema = schema_for(type_, attrs)()
    for value in valid:
        assert "value" in schema.load({"value": value}), (type_, value)
    for value, code in invalid:
        with pytest.raises(ValidationError) as info:
            schema.load({"value": value})
        errors = error_list(schema, info.value.messages, resource="thing")
        assert [e["code"] for e in errors] == [code], (type_, value, errors)
        assert errors[0]["field"].startswith("value")
        assert errors[0]["message"].startswith("value ")


def test_restricted_picklist_message_lists_the_active_values():
    attrs = {
        "restrictedPicklist": True,
        "picklistValues": values("Full-time", "Part-time", "Contract", "Gone", inactive=("Gone",)),
    }
    schema = schema_for("picklist", attrs)()
    with pytest.raises(ValidationError) as info:
        schema.load({"value": "Gone"})
    [error] = error_list(schema, info.value.messages)
    assert error["message"] == "value must be one of: Full-time, Part-time, Contract"


def test_length_message_says_the_limit():
    schema = schema_for("string", {"length": 40})()
    with pytest.raises(ValidationError) as info:
        schema.load({"value": "x" * 41})
    [error] = error_list(schema, info.value.messages)
    assert error == {
        "field": "value",
        "code": "too_long",
        "message": "value must be at most 40 characters",
    }


def test_picklist_values_with_braces_are_quoted_literally():
    attrs = {"restrictedPicklist": True, "picklistValues": values("{a}", "b")}
    schema = schema_for("picklist", attrs)()
    with pytest.raises(ValidationError) as info:
        schema.load({"value": "c"})
    assert error_list(schema, info.value.messages)[0]["message"] == "value must be one of: {a}, b"


@pytest.mark.parametrize(
    ("createable", "nillable", "defaulted", "contract_required", "required"),
    [
        (True, False, False, False, True),  # what Salesforce insists on
        (True, True, False, False, False),  # nillable
        (True, False, True, False, False),  # defaulted on create (e.g. a boolean)
        (False, False, False, False, False),  # not createable (auto number, formula)
        (True, True, False, True, True),  # the contract requires it
    ],
)
def test_required_rule(createable, nillable, defaulted, contract_required, required):
    attrs = {
        "length": 10,
        "createable": createable,
        "nillable": nillable,
        "defaultedOnCreate": defaulted,
    }
    assert FieldDescribe(fd("F__c", "string", **attrs)).required_on_create == (
        createable and not nillable and not defaulted
    )
    schema = schema_for("string", attrs, required=contract_required)()
    errors = schema.validate({})
    assert ("value" in errors) == required
    if required:
        assert error_list(schema, errors)[0]["code"] == "required"
        assert schema.validate({"value": None})["value"]
        # Salesforce stores "" as null: blank is missing
        for blank in ("", "   "):
            [error] = error_list(schema, schema.validate({"value": blank}))
            assert error["code"] == "required", blank
    else:
        assert schema.validate({"value": ""}) == {}


def test_unknown_fields_are_rejected_with_what_is_allowed():
    schema = schema_for("string", {"length": 5})()
    with pytest.raises(ValidationError) as info:
        schema.load({"value": "a", "Value__c": "b"})
    [error] = error_list(schema, info.value.messages, resource="thing")
    assert error == {
        "field": "Value__c",
        "code": "unknown_field",
        "message": "Value__c is not a field of thing; allowed: value",
    }


def test_body_that_is_not_an_object():
    schema = schema_for("string", {"length": 5})()
    with pytest.raises(ValidationError) as info:
        schema.load(["value"])
    [error] = error_list(schema, info.value.messages)
    assert error["code"] == "invalid_type" and error["field"] == "(body)"


def test_schema_names_are_stable_and_unique_per_resource():
    first = schema_for("string", {"length": 5})
    second = schema_for("string", {"length": 6})
    assert first.__name__ == second.__name__ == "ThingInput"
    assert first is not second
