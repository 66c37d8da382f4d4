"""Parsing: every construct of the grammar, and syntax errors worded as Salesforce does."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sandbox_org.soql import SoqlError, parse
from sandbox_org.soql import nodes as n


def where(soql_tail: str) -> n.Condition:
    query = parse(f"SELECT Id FROM Account WHERE {soql_tail}")
    assert query.where is not None
    return query.where


def test_select_list_with_fields_parent_paths_count_and_subquery():
    query = parse(
        "SELECT Id, bpats__Job__r.bpats__Account__r.Name, Owner.Name, "
        "(SELECT Id FROM bpats__Job_Board_Applications__r WHERE Name != null "
        "ORDER BY Name DESC LIMIT 3) FROM bpats__Job__c"
    )
    assert query.sobject.value == "bpats__Job__c"
    first, deep, owner, sub = query.select
    assert first == n.FieldPath(("Id",), 1, 8)
    assert deep.parts == ("bpats__Job__r", "bpats__Account__r", "Name")
    assert owner.parts == ("Owner", "Name")
    assert isinstance(sub, n.Query)
    assert sub.sobject.value == "bpats__Job_Board_Applications__r"
    assert sub.limit == 3
    assert sub.order_by[0].descending is True
    assert isinstance(sub.where, n.Compare) and sub.where.op == "!="


def test_count():
    query = parse("select count() from Account")
    assert query.select == (n.CountAll(1, 8),)


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Account",
        "select id from account",
        "SeLeCt Id FrOm Account WhErE Name = 'x' OrDeR bY Name AsC nUlLs LaSt LiMiT 1 OfFsEt 1",
        "SELECT Id\nFROM Account\nWHERE Name = 'x'",
        "SELECT Id FROM Account WITH SECURITY_ENFORCED",
        "SELECT Id FROM Account LIMIT 1 FOR VIEW",
        "SELECT Id FROM Account FOR REFERENCE, UPDATE",
    ],
)
def test_keywords_are_case_insensitive_and_optional_clauses(soql):
    assert parse(soql).sobject.value.lower() == "account"


@pytest.mark.parametrize(
    ("tail", "op"),
    [
        ("Name = 'a'", "="),
        ("Name != 'a'", "!="),
        ("Name <> 'a'", "!="),
        ("Name < 'a'", "<"),
        ("Name <= 'a'", "<="),
        ("Name > 'a'", ">"),
        ("Name >= 'a'", ">="),
        ("Name>='a'", ">="),
    ],
)
def test_comparison_operators(tail, op):
    cond = where(tail)
    assert isinstance(cond, n.Compare)
    assert cond.op == op


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("X = null", n.NullLit),
        ("X = NULL", n.NullLit),
        ("X = true", n.BoolLit),
        ("X = FALSE", n.BoolLit),
        ("X = 'a'", n.StringLit),
        ("X = 42", n.NumberLit),
        ("X = -4.5", n.NumberLit),
        ("X = 2024-01-31", n.DateLit),
        ("X = 2024-01-31T10:00:00Z", n.DateTimeLit),
        ("X = TODAY", n.RelativeDate),
        ("X = last_n_days:30", n.RelativeDate),
    ],
)
def test_literal_kinds(tail, expected):
    cond = where(tail)
    assert isinstance(cond, n.Compare)
    assert isinstance(cond.value, expected)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00:00+01:00", datetime(2024, 1, 31, 9, tzinfo=UTC)),
        ("2024-01-31T10:00:00-0830", datetime(2024, 1, 31, 18, 30, tzinfo=UTC)),
        ("2024-01-31T10:00:00.250Z", datetime(2024, 1, 31, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-01-01T00:30:00+01:00", datetime(2023, 12, 31, 23, 30, tzinfo=UTC)),
    ],
)
def test_datetime_literals_are_converted_to_utc(text, value):
    cond = where(f"CreatedDate > {text}")
    assert isinstance(cond, n.Compare)
    assert cond.value == n.DateTimeLit(value, cond.value.line, cond.value.column)


def test_number_and_date_values():
    values = where("X IN (1, 2.5, -3, 2024-02-29)")
    assert isinstance(values, n.InList)
    assert [getattr(v, "value", None) for v in values.values] == [1, 2.5, -3, date(2024, 2, 29)]


def test_relative_date_with_n():
    cond = where("CreatedDate = NEXT_N_WEEKS:4")
    assert isinstance(cond, n.Compare)
    assert cond.value == n.RelativeDate("NEXT_N_WEEKS", 4, 1, 44)


def test_logic_nesting_and_not():
    cond = where("(A = 1 OR B = 2) AND NOT C = 3 AND NOT (D = 4 OR E = 5)")
    assert isinstance(cond, n.And)
    first, second, third = cond.items
    assert isinstance(first, n.Or) and len(first.items) == 2
    assert isinstance(second, n.Not) and isinstance(second.item, n.Compare)
    assert isinstance(third, n.Not) and isinstance(third.item, n.Or)


@pytest.mark.parametrize(
    ("tail", "node", "negated"),
    [
        ("X IN ('a', 'b')", n.InList, False),
        ("X NOT IN ('a')", n.InList, True),
        ("X in ('a')", n.InList, False),
        ("Id IN (SELECT AccountId FROM Contact)", n.InSubquery, False),
        ("Id NOT IN (SELECT AccountId FROM Contact WHERE LastName = 'x')", n.InSubquery, True),
        ("X INCLUDES ('a;b', 'c')", n.Includes, False),
        ("X excludes ('a')", n.Includes, True),
    ],
)
def test_set_operators(tail, node, negated):
    cond = where(tail)
    assert isinstance(cond, node)
    assert getattr(cond, "negate", getattr(cond, "exclude", None)) is negated


def test_like():
    cond = where(r"Name LIKE 'a\%b%'")
    assert isinstance(cond, n.Like)
    assert cond.value == n.StringLit(r"a\%b%", 1, 40)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("Name", [(False, True)]),
        ("Name ASC", [(False, True)]),
        ("Name DESC", [(True, False)]),
        ("Name DESC NULLS FIRST", [(True, True)]),
        ("Name ASC NULLS LAST", [(False, False)]),
        ("Name NULLS LAST, Id DESC", [(False, False), (True, False)]),
    ],
)
def test_order_by_defaults_follow_salesforce(order, expected):
    query = parse(f"SELECT Id FROM Account ORDER BY {order}")
    assert [(item.descending, item.nulls_first) for item in query.order_by] == expected


def test_limit_and_offset():
    query = parse("SELECT Id FROM Account LIMIT 10 OFFSET 20")
    assert (query.limit, query.offset) == (10, 20)


# (query, expected full message). Row/column are 1-based as in real orgs.
SYNTAX_ERRORS = [
    (
        "SELECT Id, From Account",
        "\nSELECT Id, From Account\n           ^\nERROR at Row:1:Column:12\n"
        "unexpected token: 'From'",
    ),
    (
        "SELECT FROM Account",
        "\nSELECT FROM Account\n       ^\nERROR at Row:1:Column:8\nunexpected token: 'FROM'",
    ),
    (
        "SELECT Id FROM",
        "\nSELECT Id FROM\n              ^\nERROR at Row:1:Column:15\nunexpected token: <EOF>",
    ),
    (
        # Salesforce needs parentheses to mix AND and OR.
        "SELECT Id FROM A WHERE a = 1 AND b = 2 OR c = 3",
        "\nSELECT Id FROM A WHERE a = 1 AND b = 2 OR c = 3\n"
        "                                       ^\nERROR at Row:1:Column:40\n"
        "unexpected token: 'OR'",
    ),
    (
        "SELECT Id\nFROM A\nWHERE x = FOO",
        "\nWHERE x = FOO\n          ^\nERROR at Row:3:Column:11\nunexpected token: 'FOO'",
    ),
    (
        "SELECT Id FROM A WHERE x = 'abc",
        "\nSELECT Id FROM A WHERE x = 'abc\n                           ^\n"
        "ERROR at Row:1:Column:28\nunexpected token: <EOF>",
    ),
    (
        "SELECT Id FROM A LIMIT 2.5",
        "\nSELECT Id FROM A LIMIT 2.5\n                       ^\nERROR at Row:1:Column:24\n"
        "unexpected token: '2.5'",
    ),
    (
        "SELECT Id FROM A WHERE d = LAST_N_DAYS",
        "\nSELECT Id FROM A WHERE d = LAST_N_DAYS\n                           ^\n"
        "ERROR at Row:1:Column:28\nunexpected token: 'LAST_N_DAYS'",
    ),
    (
        "SELECT Id FROM A WHERE d = TODAY:3",
        "\nSELECT Id FROM A WHERE d = TODAY:3\n                           ^\n"
        "ERROR at Row:1:Column:28\nunexpected token: 'TODAY'",
    ),
    (
        "SELECT Id FROM A WHERE d = 2024-02-30",
        "\nSELECT Id FROM A WHERE d = 2024-02-30\n                           ^\n"
        "ERROR at Row:1:Column:28\nInvalid date: 2024-02-30",
    ),
    (
        "SELECT Id FROM A WITH NOTHING",
        "\nSELECT Id FROM A WITH NOTHING\n                      ^\nERROR at Row:1:Column:23\n"
        "unexpected token: 'NOTHING'",
    ),
    ("SELECT # FROM A", "line 1:7 no viable alternative at character '#'"),
    ("", "SOQL statements cannot be empty or null"),
    ("   ", "SOQL statements cannot be empty or null"),
]


@pytest.mark.parametrize(("soql", "message"), SYNTAX_ERRORS)
def test_syntax_errors(soql, message):
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message == message
    assert str(info.value) == message


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Account HAVING Name = 'x'",
        "SELECT Id FROM Account GROUP BY",
        'SELECT Id FROM Account WHERE Name = "x"',
        "SELECT Id FROM Account WHERE Name == 'x'",
        "SELECT Id FROM Account WHERE (Name = 'x'",
        "SELECT Id FROM Account WHERE Name IN ()",
        "SELECT Id FROM Account ORDER BY",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account OFFSET x",
        "SELECT Id, FROM Account",
    ],
)
def test_other_malformed_queries(soql):
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.row == 1


def test_from_alias():
    query = parse("SELECT c.Name, (SELECT a.Id FROM Apps__r a) FROM Contact c WHERE c.Name != null")
    assert query.alias == "c"
    assert isinstance(query.select[1], n.Query)
    assert query.select[1].alias == "a"
    assert parse("SELECT Id FROM Contact").alias is None
