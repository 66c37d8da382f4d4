"""Running queries against a small in-memory org: filters, ordering, shapes, errors."""

from __future__ import annotations

import pytest

from sandbox_org.soql import QueryResult, RecordSource, SoqlError, execute

from .fixtures import ACC_1, ACC_2, APP, CON_1, JOB, MemorySource


@pytest.fixture
def source() -> MemorySource:
    return MemorySource()


def names(source: MemorySource, soql: str, **kwargs) -> list[str]:
    return [record["Name"] for record in execute(soql, source, **kwargs).records]


def test_memory_source_satisfies_the_protocol(source):
    assert isinstance(source, RecordSource)


JOB_FILTERS = [
    ("bpats__Status__c = 'Open'", [1, 4]),
    ("bpats__Status__c = 'OPEN'", [1, 4]),
    ("BPATS__STATUS__C = 'open'", [1, 4]),
    ("bpats__Status__c != 'Open'", [2, 3, 6]),
    ("bpats__Status__c <> 'Open'", [2, 3, 6]),
    ("bpats__Status__c = null", [6]),
    ("bpats__Status__c = ''", [6]),
    ("bpats__Status__c != null", [1, 2, 3, 4]),
    ("bpats__Status__c IN ('open', 'closed')", [1, 3, 4]),
    ("bpats__Status__c NOT IN ('Open')", [2, 3, 6]),
    ("bpats__Status__c IN ('Open', null)", [1, 4, 6]),
    ("bpats__Job_Title__c LIKE '%engineer%'", [1, 4]),
    ("bpats__Job_Title__c LIKE 'engineer_intern'", [4]),
    (r"bpats__Job_Title__c LIKE 'Engineer\_%'", [4]),
    (r"bpats__Job_Title__c LIKE 'Senior\_%'", []),
    (r"bpats__Job_Title__c LIKE '%100\%'", [3]),
    ("bpats__Job_Title__c LIKE '%100%'", [3]),
    ("bpats__Job_Title__c LIKE 's_les%'", [2]),
    ("bpats__Job_Title__c LIKE 'sales'", []),
    ("bpats__Job_Title__c LIKE null", []),
    (r"bpats__Job_Title__c = 'It\'s a job'", [6]),
    ("bpats__Job_Title__c > 'r'", [1, 2]),
    ("bpats__Job_Title__c <= 'Engineer_Intern'", [3, 4]),
    ("bpats__Salary_Min__c > 60000", [1, 3]),
    ("bpats__Salary_Min__c >= 70000.5", [1, 3]),
    ("bpats__Salary_Min__c < 70000.5", [2]),
    ("bpats__Salary_Min__c <= 50000", [2]),
    ("bpats__Salary_Min__c = null", [4, 6]),
    ("bpats__Salary_Min__c != 50000", [1, 3, 4, 6]),
    ("bpats__Salary_Min__c > null", []),
    ("bpats__Openings__c IN (1, 5)", [2, 4]),
    ("bpats__Openings__c = 2.0", [1]),
    ("bpats__Post_to_Job_Board__c = true", [1, 3]),
    ("bpats__Post_to_Job_Board__c = FALSE", [2, 4, 6]),
    ("bpats__Post_to_Job_Board__c != true", [2, 4, 6]),
    ("bpats__End_Date__c < 2024-03-01", [2]),
    ("bpats__End_Date__c >= 2024-02-15", [1, 2]),
    ("bpats__End_Date__c != 2024-02-15", [1, 3, 4, 6]),
    ("bpats__End_Date__c IN (2024-02-15, 2024-03-31)", [1, 2]),
    ("CreatedDate > 2024-01-03T10:00:00Z", [4, 6]),
    ("CreatedDate >= 2024-01-03T11:00:00+01:00", [3, 4, 6]),
    ("CreatedDate < 2024-01-02T10:00:00.001Z", [1, 2]),
    ("CreatedDate = 2024-01-02T10:00:00.000Z", [2]),
    ("bpats__Skills__c INCLUDES ('python')", [1, 3]),
    ("bpats__Skills__c INCLUDES ('sql;excel', 'negotiation')", [2, 3]),
    ("bpats__Skills__c INCLUDES ('sql;negotiation')", []),
    ("bpats__Skills__c EXCLUDES ('sql')", [2, 4, 6]),
    ("bpats__Skills__c = 'sql;python'", [1]),
    ("bpats__Skills__c != 'sql;python'", [2, 3, 4, 6]),
    ("bpats__Account__c = null", [3, 4, 6]),
    (f"bpats__Account__c = '{ACC_1}'", [1]),
    (f"bpats__Account__c = '{ACC_1[:15]}'", [1]),
    (f"bpats__Account__c != '{ACC_1}'", [2, 3, 4, 6]),
    (f"Id IN ('{JOB[0]}', '{JOB[2][:15]}')", [1, 3]),
    (f"Id > '{JOB[3]}'", [6]),
    ("bpats__Account__r.Name = 'acme'", [1]),
    ("bpats__Account__r.Industry = null", [2, 3, 4, 6]),
    ("bpats__Account__r.Name != 'Acme'", [2, 3, 4, 6]),
    ("Owner.Name LIKE 'integration%'", [1, 2, 3, 4, 6]),
    ("NOT bpats__Status__c = 'Open'", [2, 3, 6]),
    (
        "(bpats__Status__c = 'Open' OR bpats__Status__c = 'Closed') "
        "AND bpats__Post_to_Job_Board__c = true",
        [1, 3],
    ),
    ("bpats__Status__c = 'Open' OR bpats__Salary_Min__c > 60000 OR Name = 'JOB-6'", [1, 3, 4, 6]),
    ("Name != 'JOB-1' AND Name != 'JOB-2' AND Name != 'JOB-3'", [4, 6]),
    ("NOT (bpats__Status__c = 'Open' OR bpats__Status__c = null)", [2, 3]),
    ("NOT NOT bpats__Status__c = 'Open'", [1, 4]),
    (
        "Id IN (SELECT bpats__Job__c FROM bpats__Job_Board_Application__c "
        "WHERE bpats__Status__c = 'Rejected')",
        [2],
    ),
    ("Id NOT IN (SELECT bpats__Job__c FROM bpats__Job_Board_Application__c)", [3, 4, 6]),
    ("bpats__Account__c IN (SELECT Id FROM Account WHERE Industry = 'energy')", [1]),
    ("bpats__Job__c.Name = 'JOB-1'", [1]),
    ("name = 'job-1'", [1]),
]


@pytest.mark.parametrize(("condition", "expected"), JOB_FILTERS)
def test_where(source, condition, expected):
    got = names(source, f"SELECT Name FROM bpats__Job__c WHERE {condition}")
    assert got == [f"JOB-{i}" for i in expected]


def test_deleted_rows_only_with_include_deleted(source):
    assert names(source, "SELECT Name FROM bpats__Job__c") == [
        "JOB-1",
        "JOB-2",
        "JOB-3",
        "JOB-4",
        "JOB-6",
    ]
    assert "JOB-5" in names(source, "SELECT Name FROM bpats__Job__c", include_deleted=True)


def test_deleted_rows_are_dropped_even_if_the_source_returns_them(source):
    class Leaky(MemorySource):
        def records(self, sobject, *, include_deleted):
            return super().records(sobject, include_deleted=True)

    assert "JOB-5" not in names(Leaky(), "SELECT Name FROM bpats__Job__c")


JOB_ORDERS = [
    ("bpats__Salary_Min__c", [4, 6, 2, 3, 1]),
    ("bpats__Salary_Min__c ASC", [4, 6, 2, 3, 1]),
    ("bpats__Salary_Min__c DESC", [1, 3, 2, 4, 6]),
    ("bpats__Salary_Min__c ASC NULLS LAST", [2, 3, 1, 4, 6]),
    ("bpats__Salary_Min__c DESC NULLS FIRST", [4, 6, 1, 3, 2]),
    ("bpats__Status__c, Name DESC", [6, 3, 2, 4, 1]),
    ("bpats__Job_Title__c", [3, 4, 6, 2, 1]),
    ("bpats__Account__r.Name DESC, Name", [2, 1, 3, 4, 6]),
    ("bpats__Post_to_Job_Board__c DESC, Name", [1, 3, 2, 4, 6]),
    ("bpats__End_Date__c DESC NULLS LAST, CreatedDate DESC", [1, 2, 6, 4, 3]),
    ("CreatedDate DESC LIMIT 2", [6, 4]),
    ("Name LIMIT 2 OFFSET 1", [2, 3]),
    ("Name OFFSET 4", [6]),
    ("Name OFFSET 40", []),
    ("Name LIMIT 0", []),
]


@pytest.mark.parametrize(("order", "expected"), JOB_ORDERS)
def test_order_by_limit_offset(source, order, expected):
    got = names(source, f"SELECT Name FROM bpats__Job__c ORDER BY {order}")
    assert got == [f"JOB-{i}" for i in expected]


def test_limit_without_order_keeps_source_order(source):
    assert names(source, "SELECT Name FROM bpats__Job__c LIMIT 2") == ["JOB-1", "JOB-2"]


def test_record_shape_and_canonical_case(source):
    result = execute(
        "select name, BPATS__ACCOUNT__R.NAME, id from BPATS__JOB__C where name = 'JOB-1'", source
    )
    assert isinstance(result, QueryResult)
    assert result.total_size == 1
    assert result.is_count is False
    assert result.records == [
        {
            "attributes": {
                "type": "bpats__Job__c",
                "url": f"/services/data/v62.0/sobjects/bpats__Job__c/{JOB[0]}",
            },
            "Name": "JOB-1",
            "bpats__Account__r": {
                "attributes": {
                    "type": "Account",
                    "url": f"/services/data/v62.0/sobjects/Account/{ACC_1}",
                },
                "Name": "Acme",
            },
            "Id": JOB[0],
        }
    ]
    assert list(result.records[0]) == ["attributes", "Name", "bpats__Account__r", "Id"]


def test_values_keep_their_json_types(source):
    record = execute(
        "SELECT bpats__Salary_Min__c, bpats__Openings__c, bpats__Post_to_Job_Board__c, "
        "bpats__End_Date__c, CreatedDate, bpats__Skills__c, bpats__Description__c "
        "FROM bpats__Job__c WHERE Name = 'JOB-1'",
        source,
    ).records[0]
    assert record["bpats__Salary_Min__c"] == 90000.0
    assert record["bpats__Openings__c"] == 2
    assert record["bpats__Post_to_Job_Board__c"] is True
    assert record["bpats__End_Date__c"] == "2024-03-31"
    assert record["CreatedDate"] == "2024-01-01T10:00:00.000+0000"
    assert record["bpats__Skills__c"] == "Python;SQL"
    assert record["bpats__Description__c"] is None


def test_empty_lookup_renders_null(source):
    record = execute(
        "SELECT Name, bpats__Account__r.Name FROM bpats__Job__c WHERE Name = 'JOB-3'", source
    ).records[0]
    assert record["bpats__Account__r"] is None


def test_several_levels_of_parents_merge_into_one_object(source):
    record = execute(
        "SELECT Name, bpats__Job__r.bpats__Account__r.Name, bpats__Job__r.Name, "
        "bpats__Contact__r.Account.Industry "
        "FROM bpats__Job_Board_Application__c WHERE Name = 'JBA-000001'",
        source,
    ).records[0]
    job = record["bpats__Job__r"]
    assert list(job) == ["attributes", "bpats__Account__r", "Name"]
    assert job["Name"] == "JOB-1"
    assert job["bpats__Account__r"]["Name"] == "Acme"
    assert job["bpats__Account__r"]["attributes"]["type"] == "Account"
    assert record["bpats__Contact__r"]["Account"]["Industry"] == "Energy"


def test_parent_lookups_are_cached_per_query(source):
    execute("SELECT Owner.Name, Owner.Email FROM bpats__Job__c WHERE Owner.Name != null", source)
    assert source.record_calls == 1


def test_child_subquery(source):
    records = execute(
        "SELECT Name, (SELECT Name, bpats__Status__c FROM bpats__Job_Board_Applications__r "
        "ORDER BY Name DESC) FROM bpats__Job__c WHERE Name IN ('JOB-1', 'JOB-3') ORDER BY Name",
        source,
    ).records
    first, third = records
    assert list(first) == ["attributes", "Name", "bpats__Job_Board_Applications__r"]
    child = first["bpats__Job_Board_Applications__r"]
    assert child["totalSize"] == 2
    assert child["done"] is True
    assert [r["Name"] for r in child["records"]] == ["JBA-000002", "JBA-000001"]
    assert child["records"][0]["attributes"]["type"] == "bpats__Job_Board_Application__c"
    assert third["bpats__Job_Board_Applications__r"] is None


def test_child_subquery_where_limit_and_position(source):
    record = execute(
        "SELECT (SELECT Id FROM bpats__job_board_applications__r WHERE bpats__Status__c = 'New' "
        "LIMIT 5), Name FROM bpats__Job__c WHERE Name = 'JOB-1'",
        source,
    ).records[0]
    assert list(record) == ["attributes", "bpats__Job_Board_Applications__r", "Name"]
    assert record["bpats__Job_Board_Applications__r"]["records"] == [
        {
            "attributes": {
                "type": "bpats__Job_Board_Application__c",
                "url": f"/services/data/v62.0/sobjects/bpats__Job_Board_Application__c/{APP[0]}",
            },
            "Id": APP[0],
        }
    ]
    limited = execute(
        "SELECT (SELECT Id FROM bpats__Job_Board_Applications__r ORDER BY Name LIMIT 1) "
        "FROM bpats__Job__c WHERE Name = 'JOB-1'",
        source,
    ).records[0]
    assert limited["bpats__Job_Board_Applications__r"]["totalSize"] == 1


def test_child_subquery_includes_deleted_children_only_for_query_all(source):
    soql = (
        "SELECT (SELECT Name FROM bpats__Job_Board_Applications__r) "
        "FROM bpats__Job__c WHERE Name = 'JOB-1'"
    )
    assert execute(soql, source).records[0]["bpats__Job_Board_Applications__r"]["totalSize"] == 2
    result = execute(soql, source, include_deleted=True)
    assert result.records[0]["bpats__Job_Board_Applications__r"]["totalSize"] == 3


def test_child_subquery_on_contact_with_parent_fields(source):
    record = execute(
        "SELECT LastName, Account.Name, (SELECT bpats__Job__r.Name FROM "
        "bpats__Job_Board_Applications__r ORDER BY bpats__Job__r.Name) FROM Contact "
        f"WHERE Id = '{CON_1}'",
        source,
    ).records[0]
    apps = record["bpats__Job_Board_Applications__r"]["records"]
    assert [app["bpats__Job__r"]["Name"] for app in apps] == ["JOB-1", "JOB-2"]


def test_api_version_goes_into_urls(source):
    record = execute(
        "SELECT Id FROM Account WHERE Name = 'Acme'", source, api_version="58.0"
    ).records[0]
    assert record["attributes"]["url"] == f"/services/data/v58.0/sobjects/Account/{ACC_1}"


@pytest.mark.parametrize(
    ("soql", "total"),
    [
        ("SELECT COUNT() FROM bpats__Job__c", 5),
        ("select count() from bpats__job__c where bpats__Status__c = 'Open'", 2),
        ("SELECT COUNT() FROM bpats__Job__c LIMIT 3", 3),
        ("SELECT COUNT() FROM Account WHERE Name = 'nobody'", 0),
    ],
)
def test_count(source, soql, total):
    result = execute(soql, source)
    assert result.is_count is True
    assert result.total_size == total
    assert result.records == []


def test_count_with_query_all(source):
    assert (
        execute("SELECT COUNT() FROM bpats__Job__c", source, include_deleted=True).total_size == 6
    )


def test_no_match(source):
    result = execute("SELECT Id FROM Account WHERE Name = 'nobody'", source)
    assert (result.records, result.total_size) == ([], 0)


def test_offset_limit_of_2000_is_allowed(source):
    assert execute("SELECT Id FROM Account OFFSET 2000", source).records == []


_NO_COLUMN = (
    "No such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure "
    "to append the '__c' after the custom field name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)
_RELATIONSHIP = (
    "Didn't understand relationship '{}' in field path. If you are attempting to use a custom "
    "relationship, be sure to append the '__r' after the custom relationship name. Please "
    "reference your WSDL or the describe call for the appropriate names."
)
J = "SELECT Name FROM bpats__Job__c WHERE "

# (query, errorCode, last line of the message)
ERRORS = [
    ("SELECT Id FROM Nope__c", "INVALID_TYPE", None),
    ("SELECT Foo FROM Account", "INVALID_FIELD", _NO_COLUMN.format("Foo", "Account")),
    (
        "SELECT bpats__Account__r.Foo FROM bpats__Job__c",
        "INVALID_FIELD",
        _NO_COLUMN.format("Foo", "Account"),
    ),
    ("SELECT Owner__r.Name FROM Account", "INVALID_FIELD", _RELATIONSHIP.format("Owner__r")),
    (
        "SELECT bpats__Account__c.Name FROM bpats__Job__c",
        "INVALID_FIELD",
        _RELATIONSHIP.format("bpats__Account__c"),
    ),
    ("SELECT Name.Foo FROM Account", "INVALID_FIELD", _RELATIONSHIP.format("Name")),
    (J + "Foo = 1", "INVALID_FIELD", _NO_COLUMN.format("Foo", "bpats__Job__c")),
    ("SELECT Name FROM Account ORDER BY Foo", "INVALID_FIELD", _NO_COLUMN.format("Foo", "Account")),
    (
        "SELECT Id, (SELECT Id FROM Foos__r) FROM Account",
        "INVALID_TYPE",
        "Didn't understand relationship 'Foos__r' in FROM part of query call. If you are "
        "attempting to use a custom relationship, be sure to append the '__r' after the custom "
        "relationship name. Please reference your WSDL or the describe call for the appropriate "
        "names.",
    ),
    (
        J + "bpats__Description__c = 'x'",
        "INVALID_FIELD",
        "field 'bpats__Description__c' can not be filtered in query call",
    ),
    (
        J + "bpats__Description__c LIKE '%x%'",
        "INVALID_FIELD",
        "field 'bpats__Description__c' can not be filtered in query call",
    ),
    (
        "SELECT Name FROM bpats__Job__c ORDER BY bpats__Description__c",
        "INVALID_FIELD",
        "field 'bpats__Description__c' can not be sorted in a query call",
    ),
    (
        "SELECT Name FROM bpats__Job__c ORDER BY bpats__Skills__c",
        "INVALID_FIELD",
        "field 'bpats__Skills__c' can not be sorted in a query call",
    ),
    (
        J + "bpats__End_Date__c = '2024-01-01'",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__End_Date__c' must be of type date and "
        "should not be enclosed in quotes",
    ),
    (
        J + "bpats__End_Date__c = 2024-01-01T00:00:00Z",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__End_Date__c' must be of type date and "
        "should not be enclosed in quotes",
    ),
    (
        J + "CreatedDate > 2024-01-01",
        "INVALID_FIELD",
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
        "should not be enclosed in quotes",
    ),
    (
        J + "Name = 3999",
        "INVALID_FIELD",
        "value of filter criterion for field 'Name' must be of type string and should be "
        "enclosed in quotes",
    ),
    (
        J + "Name = TODAY",
        "INVALID_FIELD",
        "value of filter criterion for field 'Name' must be of type string and should be "
        "enclosed in quotes",
    ),
    (
        J + "bpats__Post_to_Job_Board__c = 'TRUE'",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__Post_to_Job_Board__c' must be of type "
        "boolean and should not be enclosed in quotes",
    ),
    (
        J + "bpats__Salary_Min__c > '5'",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__Salary_Min__c' must be of type double and "
        "should not be enclosed in quotes",
    ),
    (
        J + "bpats__Openings__c IN (1, '2')",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__Openings__c' must be of type int and "
        "should not be enclosed in quotes",
    ),
    (
        J + "bpats__Salary_Min__c = true",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__Salary_Min__c' must be of type double and "
        "should not be enclosed in quotes",
    ),
    (
        J + "bpats__Account__c = 5",
        "INVALID_FIELD",
        "value of filter criterion for field 'bpats__Account__c' must be of type id and should "
        "be enclosed in quotes",
    ),
    (J + "Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    (
        J + "bpats__Account__c IN ('001000000000001AAA', 'x')",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: x",
    ),
    (
        J + "bpats__Salary_Min__c LIKE '5%'",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid operator on currency field",
    ),
    (J + "Id LIKE 'a0M%'", "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on id field"),
    (
        J + "bpats__Post_to_Job_Board__c > false",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid operator on boolean field",
    ),
    (
        J + "bpats__Status__c INCLUDES ('Open')",
        "INVALID_QUERY_FILTER_OPERATOR",
        "includes or excludes operator only valid on multipicklist field",
    ),
    (J + "Name LIKE 5", "INVALID_FIELD", None),
    (
        J + r"Name = 'a\x'",
        "MALFORMED_QUERY",
        r"Invalid string literal 'a\x'. Illegal character sequence '\x' in string literal.",
    ),
    (
        J + r"Name = '100\%'",
        "MALFORMED_QUERY",
        r"Invalid string literal '100\%'. Illegal character sequence '\%' in string literal.",
    ),
    (
        J + r"Name LIKE '%\q'",
        "MALFORMED_QUERY",
        r"Invalid string literal '%\q'. Illegal character sequence '\q' in string literal.",
    ),
    ("SELECT Name, name FROM Account", "INVALID_FIELD", "duplicate field selected: Name"),
    (
        "SELECT Account.Name, Account.NAME FROM Contact",
        "INVALID_FIELD",
        "duplicate field selected: Name",
    ),
    ("SELECT Id, COUNT() FROM Account", "MALFORMED_QUERY", "unexpected token: 'COUNT'"),
    (
        "SELECT Id, (SELECT COUNT() FROM Contacts) FROM Account",
        "MALFORMED_QUERY",
        "unexpected token: 'COUNT'",
    ),
    (J + "Name IN (SELECT Id FROM Account)", "INVALID_FIELD", None),
    (J + "Id IN (SELECT Name FROM Account)", "INVALID_FIELD", None),
    (J + "Id IN (SELECT Id, Name FROM Account)", "MALFORMED_QUERY", None),
    (J + "Id IN (SELECT Id FROM Nope__c)", "INVALID_TYPE", None),
]


@pytest.mark.parametrize(("soql", "code", "reason"), ERRORS)
def test_errors(source, soql, code, reason):
    with pytest.raises(SoqlError) as info:
        execute(soql, source)
    assert info.value.error_code == code
    if reason is not None:
        assert info.value.message.split("\n")[-1] == reason
    assert info.value.message.startswith("\n" + soql.split("\n")[0] + "\n")


def test_invalid_type_message_matches_a_real_org(source):
    # The exact body of a recorded real-org answer (salesforce-wire-shapes.md §2c).
    with pytest.raises(SoqlError) as info:
        execute("select count() from XYZZY", source)
    assert info.value.error_code == "INVALID_TYPE"
    assert info.value.message == (
        "\nselect count() from XYZZY\n                    ^\nERROR at Row:1:Column:21\n"
        "sObject type 'XYZZY' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )


def test_invalid_field_message_matches_the_catalogue(source):
    with pytest.raises(SoqlError) as info:
        execute("SELECT Foo FROM Account", source)
    assert (
        info.value.message
        == "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\n"
        + (_NO_COLUMN.format("Foo", "Account"))
    )
    assert (info.value.row, info.value.column) == (1, 8)


def test_type_error_points_at_the_field(source):
    soql = "SELECT Id FROM Account WHERE Name = 3999"
    with pytest.raises(SoqlError) as info:
        execute(soql, source)
    assert info.value.column == soql.index("Name = ") + 1


def test_offset_over_2000(source):
    with pytest.raises(SoqlError) as info:
        execute("SELECT Id FROM Account OFFSET 2001", source)
    assert info.value.error_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert info.value.message == "Maximum SOQL offset allowed is 2000"


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Account",
        "SELECT bpats__Account__r.Name FROM bpats__Job__c",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    ],
)
def test_unreadable_objects_are_not_supported(soql):
    source = MemorySource(hidden=["Account"])
    with pytest.raises(SoqlError) as info:
        execute(soql, source)
    assert info.value.error_code in ("INVALID_TYPE", "INVALID_FIELD")


def test_unreadable_object_in_from_is_invalid_type():
    with pytest.raises(SoqlError) as info:
        execute("SELECT Id FROM Account", MemorySource(hidden=["Account"]))
    assert info.value.error_code == "INVALID_TYPE"
    assert "sObject type 'Account' is not supported." in info.value.message


def test_polymorphic_lookup_uses_the_key_prefix(source):
    source.describes["Contact"]["fields"].append(
        {
            "name": "WhatId",
            "type": "reference",
            "soapType": "tns:ID",
            "referenceTo": ["bpats__Job__c", "Account"],
            "relationshipName": "What",
            "filterable": True,
            "sortable": True,
        }
    )
    source.rows["Contact"][0]["WhatId"] = ACC_2
    source.rows["Contact"][1]["WhatId"] = JOB[1]
    records = execute("SELECT What.Name FROM Contact ORDER BY LastName", source).records
    whats = [r["What"] and (r["What"]["attributes"]["type"], r["What"]["Name"]) for r in records]
    assert whats == [("Account", "Globex"), None, ("bpats__Job__c", "JOB-2")]


def test_from_alias_prefixes_paths(source):
    records = execute(
        "SELECT c.LastName, c.Account.Name, (SELECT a.Name FROM bpats__Job_Board_Applications__r a "
        "WHERE a.bpats__Status__c = 'New') FROM Contact c WHERE c.LastName LIKE 'l%'",
        source,
    ).records
    assert records == [
        {
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v62.0/sobjects/Contact/{CON_1}",
            },
            "LastName": "Lovelace",
            "Account": {
                "attributes": {
                    "type": "Account",
                    "url": f"/services/data/v62.0/sobjects/Account/{ACC_1}",
                },
                "Name": "Acme",
            },
            "bpats__Job_Board_Applications__r": {
                "totalSize": 1,
                "done": True,
                "records": [
                    {
                        "attributes": {
                            "type": "bpats__Job_Board_Application__c",
                            "url": "/services/data/v62.0/sobjects/bpats__Job_Board_Application__c/"
                            + APP[0],
                        },
                        "Name": "JBA-000001",
                    }
                ],
            },
        }
    ]


def test_alias_in_semi_join(source):
    soql = "SELECT Name FROM Account acc WHERE acc.Id IN (SELECT x.AccountId FROM Contact x)"
    assert names(source, soql) == ["Acme", "Globex"]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r"It\'s a job", "It's a job"),
        (r"a\\b", "a\\b"),
        (r"say \"hi\"", 'say "hi"'),
        (r"line\nbreak", "line\nbreak"),
        (r"line\Nbreak", "line\nbreak"),
        (r"tab\tand\Ttab", "tab\tand\ttab"),
        (r"\r\R\b\B\f\F", "\r\r\b\b\f\f"),
        (r"caf\u00e9", "café"),
        (r"caf\u00E9", "café"),
    ],
)
def test_string_escapes(source, literal, value):
    source.rows["Account"][0]["Name"] = value
    soql = f"SELECT Name FROM Account WHERE Name = '{literal}'"
    assert names(source, soql) == [value]
    like = f"SELECT Name FROM Account WHERE Name LIKE '{literal}'"
    assert names(source, like) == [value]


@pytest.mark.parametrize(("literal", "sequence"), [(r"caf\u00g9", r"\u00g9"), (r"x\u12", r"\u12")])
def test_bad_unicode_escapes(source, literal, sequence):
    with pytest.raises(SoqlError) as info:
        execute(f"SELECT Name FROM Account WHERE Name = '{literal}'", source)
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message.endswith(
        f"Illegal character sequence '{sequence}' in string literal."
    )


def test_fields_standard_custom_and_all(source):
    standard = execute(
        "SELECT FIELDS(STANDARD) FROM bpats__Job__c WHERE Name = 'JOB-1'", source
    ).records[0]
    assert list(standard)[:3] == ["attributes", "Id", "IsDeleted"]
    assert "Name" in standard
    assert not any(key.endswith("__c") for key in standard)
    custom = execute("SELECT fields(custom) FROM bpats__Job__c LIMIT 1", source).records[0]
    assert set(custom) - {"attributes"} == {
        f["name"] for f in source.describes["bpats__Job__c"]["fields"] if f["name"].endswith("__c")
    }
    everything = execute("SELECT Id, FIELDS(ALL) FROM bpats__Job__c LIMIT 200", source).records
    assert len(everything) == 5
    assert len(everything[0]) == 1 + len(source.describes["bpats__Job__c"]["fields"])


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT FIELDS(ALL) FROM bpats__Job__c",
        "SELECT FIELDS(CUSTOM) FROM bpats__Job__c LIMIT 201",
        "SELECT FIELDS(SOME) FROM bpats__Job__c",
    ],
)
def test_fields_function_errors(source, soql):
    with pytest.raises(SoqlError) as info:
        execute(soql, source)
    assert info.value.error_code == "MALFORMED_QUERY"


def test_grandchild_subquery(source):
    records = execute(
        "SELECT Name, (SELECT LastName, (SELECT Name FROM bpats__Job_Board_Applications__r "
        "ORDER BY Name) FROM Contacts ORDER BY LastName) FROM Account ORDER BY Name",
        source,
    ).records
    acme, globex = records
    contacts = acme["Contacts"]["records"]
    assert [c["LastName"] for c in contacts] == ["Lovelace"]
    apps = contacts[0]["bpats__Job_Board_Applications__r"]["records"]
    assert [a["Name"] for a in apps] == ["JBA-000001", "JBA-000003"]
    assert globex["Contacts"]["records"][0]["LastName"] == "O'Brien"
    assert globex["Contacts"]["records"][0]["bpats__Job_Board_Applications__r"] is None


def test_multipicklist_ignores_blank_parts_and_order(source):
    source.rows["bpats__Job__c"][0]["bpats__Skills__c"] = "SQL;;Python;"
    assert names(
        source, "SELECT Name FROM bpats__Job__c WHERE bpats__Skills__c = 'python;sql'"
    ) == ["JOB-1"]
