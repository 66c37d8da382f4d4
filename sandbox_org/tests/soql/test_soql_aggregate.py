"""Aggregate queries: GROUP BY, COUNT(f), COUNT_DISTINCT, SUM, AVG, MIN, MAX."""

from __future__ import annotations

import pytest

from sandbox_org.soql import SoqlError, execute

from .fixtures import MemorySource

AGG = {"type": "AggregateResult"}


@pytest.fixture
def source() -> MemorySource:
    return MemorySource()


def rows(source, soql):
    result = execute(soql, source)
    assert result.total_size == len(result.records)
    assert all(r["attributes"] == AGG for r in result.records)
    return [{k: v for k, v in r.items() if k != "attributes"} for r in result.records]


def test_group_by_with_every_function(source):
    got = rows(
        source,
        "SELECT bpats__Status__c, COUNT(Id) n, MAX(CreatedDate), "
        "COUNT_DISTINCT(bpats__Account__c), SUM(bpats__Salary_Min__c), "
        "AVG(bpats__Openings__c), MIN(bpats__Job_Title__c) "
        "FROM bpats__Job__c GROUP BY bpats__Status__c ORDER BY COUNT(Id) DESC, bpats__Status__c",
    )
    assert got == [
        {
            "bpats__Status__c": "Open",
            "n": 2,
            "expr0": "2024-01-04T10:00:00.000+0000",
            "expr1": 1,
            "expr2": 90000.0,
            "expr3": 3.5,
            "expr4": "Engineer_Intern",
        },
        {
            "bpats__Status__c": None,
            "n": 1,
            "expr0": "2024-01-06T10:00:00.000+0000",
            "expr1": 0,
            "expr2": None,
            "expr3": None,
            "expr4": "It's a job",
        },
        {
            "bpats__Status__c": "Closed",
            "n": 1,
            "expr0": "2024-01-03T10:00:00.000+0000",
            "expr1": 0,
            "expr2": 70000.5,
            "expr3": None,
            "expr4": "Data Analyst 100%",
        },
        {
            "bpats__Status__c": "On Hold",
            "n": 1,
            "expr0": "2024-01-02T10:00:00.000+0000",
            "expr1": 1,
            "expr2": 50000.0,
            "expr3": 1.0,
            "expr4": "sales lead",
        },
    ]


def test_aggregate_without_group_by_answers_one_row_even_when_nothing_matches(source):
    assert rows(source, "SELECT COUNT(Id), SUM(bpats__Salary_Min__c) FROM bpats__Job__c") == [
        {"expr0": 5, "expr1": 210000.5}
    ]
    assert rows(source, "SELECT COUNT(Id), MAX(Name) FROM bpats__Job__c WHERE Name = 'nobody'") == [
        {"expr0": 0, "expr1": None}
    ]


def test_count_of_a_field_skips_nulls(source):
    assert rows(source, "SELECT COUNT(bpats__Salary_Min__c) c FROM bpats__Job__c") == [{"c": 3}]


def test_group_by_is_case_insensitive_and_keeps_the_first_spelling(source):
    source.rows["bpats__Job__c"][1]["bpats__Status__c"] = "OPEN"
    got = rows(
        source,
        "SELECT bpats__Status__c s, COUNT(Id) FROM bpats__Job__c WHERE bpats__Status__c != null "
        "GROUP BY bpats__Status__c ORDER BY bpats__Status__c",
    )
    assert got == [{"s": "Closed", "expr0": 1}, {"s": "Open", "expr0": 3}]


def test_group_by_parent_field_with_limit_and_offset(source):
    soql = (
        "SELECT bpats__Account__r.Name, COUNT(Id) FROM bpats__Job__c "
        "GROUP BY bpats__Account__r.Name ORDER BY bpats__Account__r.Name NULLS LAST"
    )
    assert rows(source, soql) == [
        {"Name": "Acme", "expr0": 1},
        {"Name": "Globex", "expr0": 1},
        {"Name": None, "expr0": 3},
    ]
    assert rows(source, soql + " LIMIT 1 OFFSET 1") == [{"Name": "Globex", "expr0": 1}]


def test_group_by_two_fields(source):
    got = rows(
        source,
        "SELECT bpats__Status__c, bpats__Post_to_Job_Board__c, COUNT(Id) FROM bpats__Job__c "
        "GROUP BY bpats__Status__c, bpats__Post_to_Job_Board__c "
        "ORDER BY bpats__Status__c NULLS LAST, bpats__Post_to_Job_Board__c",
    )
    assert [(r["bpats__Status__c"], r["bpats__Post_to_Job_Board__c"], r["expr0"]) for r in got] == [
        ("Closed", True, 1),
        ("On Hold", False, 1),
        ("Open", False, 1),
        ("Open", True, 1),
        (None, False, 1),
    ]


@pytest.mark.parametrize(
    ("soql", "code", "reason"),
    [
        (
            "SELECT Name, COUNT(Id) FROM bpats__Job__c",
            "MALFORMED_QUERY",
            "Field must be grouped or aggregated: Name",
        ),
        (
            "SELECT SUM(Name) FROM bpats__Job__c",
            "INVALID_FIELD",
            "field Name does not support aggregate operator SUM",
        ),
        (
            "SELECT bpats__Skills__c FROM bpats__Job__c GROUP BY bpats__Skills__c",
            "INVALID_FIELD",
            "field 'bpats__Skills__c' can not be grouped in a query call",
        ),
        (
            "SELECT bpats__Status__c FROM bpats__Job__c GROUP BY bpats__Status__c ORDER BY Name",
            "MALFORMED_QUERY",
            "Ordered field must be grouped or aggregated: Name",
        ),
        (
            "SELECT COUNT(Foo) FROM bpats__Job__c",
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'bpats__Job__c'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ),
        (
            "SELECT COUNT(Id), (SELECT Id FROM bpats__Job_Board_Applications__r) "
            "FROM bpats__Job__c",
            "MALFORMED_QUERY",
            None,
        ),
        (
            "SELECT Id, (SELECT COUNT(Id) FROM bpats__Job_Board_Applications__r) "
            "FROM bpats__Job__c",
            "MALFORMED_QUERY",
            "unexpected token: 'COUNT'",
        ),
        ("SELECT Id FROM bpats__Job__c ORDER BY COUNT(Id)", "MALFORMED_QUERY", None),
        ("SELECT Name n FROM bpats__Job__c", "MALFORMED_QUERY", "unexpected token: 'n'"),
        ("SELECT COUNT(Id), FIELDS(STANDARD) FROM bpats__Job__c", "MALFORMED_QUERY", None),
        ("SELECT COUNT(Id), COUNT() FROM bpats__Job__c", "MALFORMED_QUERY", None),
        (
            "SELECT Id FROM bpats__Job__c WHERE Id IN (SELECT bpats__Job__c j "
            "FROM bpats__Job_Board_Application__c)",
            "MALFORMED_QUERY",
            "semi join sub-selects can only select a single id field",
        ),
        (
            "SELECT Id FROM bpats__Job__c WHERE Id IN (SELECT COUNT(Id) "
            "FROM bpats__Job_Board_Application__c)",
            "MALFORMED_QUERY",
            "semi join sub-selects can only select a single id field",
        ),
    ],
)
def test_aggregate_errors(source, soql, code, reason):
    with pytest.raises(SoqlError) as info:
        execute(soql, source)
    assert info.value.error_code == code
    if reason is not None:
        assert info.value.message.split("\n")[-1] == reason
