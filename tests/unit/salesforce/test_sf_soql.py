"""SOQL builder: typed literals, escaping, describe checks, and that no value changes structure."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ats_gateway.salesforce import soql
from ats_gateway.salesforce.soql import (
    DateLiteral,
    SoqlError,
    UnknownField,
    escape,
    field,
    inspect,
    literal,
    select,
    tokenize,
    unescape,
)

OBJECTS = Path(__file__).resolve().parents[3] / "ats_gateway" / "schemas" / "objects"


def _describe(name: str) -> dict:
    return json.loads((OBJECTS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def catalog() -> dict:
    names = ["bpats__Job_Board_Application__c", "bpats__Job__c", "Contact", "Account"]
    return {n: _describe(n) for n in names}


# --------------------------------------------------------------------------- literals

LITERALS = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-42, "-42"),
    (1.5, "1.5"),
    (1e20, "100000000000000000000"),
    (Decimal("123.4500"), "123.4500"),
    (dt.date(2025, 4, 29), "2025-04-29"),
    (dt.datetime(2025, 4, 29, 15, 45, tzinfo=dt.UTC), "2025-04-29T15:45:00Z"),
    (
        dt.datetime(2025, 4, 29, 17, 45, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "2025-04-29T15:45:00.250Z",
    ),
    ("Open", "'Open'"),
    ("Bob's BBQ", "'Bob\\'s BBQ'"),
    ('say "hi"', "'say \\\"hi\\\"'"),
    ("back\\slash", "'back\\\\slash'"),
    ("line\nbreak\r\ttab\b\f", "'line\\nbreak\\r\\ttab\\b\\f'"),
    ("100%_sure", "'100%_sure'"),  # % and _ mean nothing outside LIKE
    ("' OR Name != '", "'\\' OR Name != \\''"),
    (DateLiteral("LAST_N_DAYS", 30), "LAST_N_DAYS:30"),
    (DateLiteral("TODAY"), "TODAY"),
]


@pytest.mark.parametrize(("value", "expected"), LITERALS)
def test_literal_rendering(value, expected):
    assert literal(value) == expected


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), Decimal("NaN"), dt.datetime(2025, 1, 1), object(), b"bytes"],
)
def test_literal_refuses_values_without_a_safe_rendering(value):
    with pytest.raises(SoqlError):
        literal(value)


def test_date_literal_names_are_checked():
    with pytest.raises(SoqlError):
        DateLiteral("TODAY OR Id != null")


# --------------------------------------------------------------------------- building

BUILT = [
    (
        select("Id", "Name").from_("bpats__Job__c"),
        "SELECT Id, Name FROM bpats__Job__c",
    ),
    (
        select("Id").from_("bpats__Job__c").where(bpats__Status__c="Open"),
        "SELECT Id FROM bpats__Job__c WHERE bpats__Status__c = 'Open'",
    ),
    (
        select("Id")
        .from_("Contact")
        .where(field("Email").in_(["a@x.io", "b'@x.io"]))
        .where(field("LastName").ne(None)),
        "SELECT Id FROM Contact WHERE (Email IN ('a@x.io', 'b\\'@x.io')) AND (LastName != null)",
    ),
    (
        select("Id").from_("Contact").where(field("Name").contains("50%_off")),
        "SELECT Id FROM Contact WHERE Name LIKE '%50\\%\\_off%'",
    ),
    (
        select("Id").from_("Contact").where(field("Name").startswith("O'B")),
        "SELECT Id FROM Contact WHERE Name LIKE 'O\\'B%'",
    ),
    (
        select("Id").from_("Contact").where(field("Name").like("Ter%")),
        "SELECT Id FROM Contact WHERE Name LIKE 'Ter\\%'",
    ),
    (
        select("Id").from_("Contact").where(field("Name").like("Ter%", wildcards=True)),
        "SELECT Id FROM Contact WHERE Name LIKE 'Ter%'",
    ),
    (
        select("Id")
        .from_("Contact")
        .where((field("A").eq(1) | field("B").eq(2)) & ~field("C").is_null()),
        "SELECT Id FROM Contact WHERE ((A = 1) OR (B = 2)) AND (NOT (C = null))",
    ),
    (
        select("Id").from_("Contact").where(soql.or_(field("A").gt(1), field("A").le(0))),
        "SELECT Id FROM Contact WHERE (A > 1) OR (A <= 0)",
    ),
    (
        select("Id").from_("Contact").order_by("-CreatedDate", "Name", nulls="last").limit(10),
        "SELECT Id FROM Contact ORDER BY CreatedDate DESC NULLS LAST, Name ASC NULLS LAST LIMIT 10",
    ),
    (
        select("Id").from_("Contact").limit(200).offset(400),
        "SELECT Id FROM Contact LIMIT 200 OFFSET 400",
    ),
    (
        select("COUNT()").from_("Contact"),
        "SELECT COUNT() FROM Contact",
    ),
    (
        select("Id", select("Id").from_("Contacts")).from_("Account"),
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    ),
    (
        select("Id").from_("X").where(field("Tags__c").includes(["a;b", "c"])),
        "SELECT Id FROM X WHERE Tags__c INCLUDES ('a;b', 'c')",
    ),
]


@pytest.mark.parametrize(("query", "expected"), BUILT)
def test_rendering(query, expected):
    assert query.render() == expected


def test_builder_is_immutable():
    base = select("Id").from_("Contact")
    narrowed = base.where(Email="a@b.c")
    assert base.render() == "SELECT Id FROM Contact"
    assert narrowed.render() != base.render()


@pytest.mark.parametrize(
    "build",
    [
        lambda: select("Id, Name FROM User --"),
        lambda: select("Id").from_("Contact WHERE Id != null"),
        lambda: select("Id").from_("Contact").where(field("x' OR 1=1").eq(1)),
        lambda: select("Id").from_("Contact").order_by("Name; DROP"),
        lambda: select("Id").from_("Contact").where(field("Id").in_([])),
        lambda: select("Id").from_("Contact").where(field("Id").in_("abc")),
        lambda: select("Id").from_("Contact").limit(-1),
        lambda: select("Id").from_("Contact").limit(True),
        lambda: select("Id").from_("Contact").order_by("Name", nulls="sideways"),
        lambda: select(),
        lambda: soql.and_(),
    ],
)
def test_refuses_what_it_cannot_render_safely(build):
    with pytest.raises(SoqlError):
        build()


# --------------------------------------------------------------------------- describe checks


def test_known_fields_and_relationship_paths_pass(catalog):
    q = (
        select("Id", "bpats__Email__c", "bpats__Job__r.Name", "bpats__Contact__r.Account.Name")
        .from_("bpats__Job_Board_Application__c", describes=catalog)
        .where(field("bpats__Job__r.bpats__Status__c").eq("Open"))
        .order_by("-CreatedDate")
    )
    assert "bpats__Job__r.Name" in q.render()


@pytest.mark.parametrize(
    ("items", "where", "message"),
    [
        (("Id", "Nope__c"), None, "no field 'Nope__c'"),
        (("bpats__Job__r.Nope__c",), None, "no field 'Nope__c'"),
        (("bpats__Nope__r.Name",), None, "no relationship"),
        (("Owner.Name",), None, "whose describe metadata was not given"),  # User not in catalog
        (("Id",), field("Nope__c").eq(1), "no field"),
    ],
)
def test_unknown_names_are_refused(catalog, items, where, message):
    q = select(*items).from_("bpats__Job_Board_Application__c", describes=catalog)
    if where is not None:
        q = q.where(where)
    with pytest.raises(UnknownField, match=message):
        q.render()


def test_field_names_are_case_insensitive_like_salesforce(catalog):
    q = select("id", "BPATS__EMAIL__C").from_("bpats__job_board_application__c", describes=catalog)
    assert q.render().startswith("SELECT id, BPATS__EMAIL__C")


def test_subqueries_resolve_through_child_relationships(catalog):
    ok = select("Id", select("Id", "bpats__Email__c").from_("bpats__Job_Board_Applications__r"))
    assert (
        "FROM bpats__Job_Board_Applications__r" in ok.from_("Contact", describes=catalog).render()
    )
    bad = select("Id", select("Id").from_("Nope__r")).from_("Contact", describes=catalog)
    with pytest.raises(UnknownField, match="no child relationship"):
        bad.render()
    wrong_field = select("Id", select("Nope__c").from_("bpats__Job_Board_Applications__r"))
    with pytest.raises(UnknownField):
        wrong_field.from_("Contact", describes=catalog).render()


def test_unfilterable_and_unsortable_fields_are_refused():
    describe = {
        "name": "X__c",
        "fields": [
            {"name": "Id"},
            {"name": "Body__c", "filterable": False, "sortable": False},
        ],
    }
    base = select("Id").from_("X__c", describes={"X__c": describe})
    with pytest.raises(UnknownField, match="not filterable"):
        base.where(field("Body__c").eq("x")).render()
    with pytest.raises(UnknownField, match="not sortable"):
        base.order_by("Body__c").render()


# --------------------------------------------------------------------------- reading back


def test_inspect_finds_objects_paths_subqueries_and_semi_joins():
    shape = inspect(
        "SELECT Id, bpats__Job__r.Name, (SELECT Id FROM bpats__Job_Board_Applications__r "
        "WHERE bpats__Job__r.Name = 'x (y) FROM Evil') FROM Contact "
        "WHERE Id IN (SELECT bpats__Contact__c FROM bpats__Job_Board_Application__c) "
        "AND (Account.Name = 'FROM User')"
    )
    assert shape.sobject == "Contact"
    assert shape.paths == {"bpats__Job__r.Name", "Account.Name"}
    assert [s.sobject for s in shape.subqueries] == ["bpats__Job_Board_Applications__r"]
    assert shape.subqueries[0].paths == {"bpats__Job__r.Name"}
    assert [s.sobject for s in shape.semi_joins] == ["bpats__Job_Board_Application__c"]


@pytest.mark.parametrize("text", ["SELECT Id", "SELECT Id FROM X WHERE (A = 1", "SELECT ` FROM X"])
def test_inspect_rejects_unreadable_soql(text):
    with pytest.raises(SoqlError):
        inspect(text)


# --------------------------------------------------------------------------- properties

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
_nasty = st.one_of(
    _text,
    st.sampled_from(
        [
            "' OR Id != null OR Name = '",
            "\\' OR 1=1 --",
            "x') FROM User WHERE (Name = 'y",
            "%' OR Name LIKE '%",
            "\\",
            "\\\\'",
            "'; DELETE FROM Contact; '",
        ]
    ),
)


def _kinds(text: str) -> list[tuple[str, str]]:
    """Token kinds, with identifiers and operators kept verbatim (the query's structure)."""
    return [(t.kind, "" if t.kind == "string" else t.text) for t in tokenize(text)]


@settings(max_examples=300, database=None, deadline=None)
@given(_nasty)
def test_escape_round_trips(value):
    assert unescape(escape(value)) == value


@settings(max_examples=300, database=None, deadline=None)
@given(_nasty)
def test_no_value_changes_an_equality_query(value):
    rendered = select("Id").from_("Contact").where(field("Email").eq(value)).render()
    reference = select("Id").from_("Contact").where(field("Email").eq("x")).render()
    assert _kinds(rendered) == _kinds(reference)
    strings = [t for t in tokenize(rendered) if t.kind == "string"]
    assert [s.value for s in strings] == [value]
    assert inspect(rendered).sobject == "Contact"


@settings(max_examples=200, database=None, deadline=None)
@given(st.lists(_nasty, min_size=1, max_size=5))
def test_no_value_changes_an_in_query(values):
    rendered = (
        select("Id")
        .from_("Contact")
        .where(field("Email").in_(values) | field("LastName").contains(values[0]))
        .render()
    )
    reference = (
        select("Id")
        .from_("Contact")
        .where(field("Email").in_(["x"] * len(values)) | field("LastName").contains("x"))
        .render()
    )
    assert _kinds(rendered) == _kinds(reference)
    strings = [t.value for t in tokenize(rendered) if t.kind == "string"]
    like_text = values[0].replace("%", "\\%").replace("_", "\\_")
    assert strings == [*values, f"%{like_text}%"]


@settings(max_examples=200, database=None, deadline=None)
@given(_nasty)
def test_an_independent_parser_reads_the_same_value(value):
    """The sandbox org's lark grammar parses the rendered query to one comparison whose value
    is exactly the input (a second, unrelated reader of SOQL)."""
    from sandbox_org.soql import literals, nodes, parser

    rendered = select("Id").from_("Contact").where(field("Email").eq(value)).render()
    tree = parser.parse(rendered)
    assert tree.sobject.value == "Contact"
    assert isinstance(tree.where, nodes.Compare)
    assert literals.unescape(tree.where.value.raw) == value


@settings(max_examples=300, database=None, deadline=None)
@given(_nasty)
def test_a_name_is_either_refused_or_a_single_identifier(name):
    """Names are never escaped, only accepted when they cannot be anything but a name."""
    try:
        rendered = select(name).from_("Contact").order_by(name).render()
    except SoqlError:
        return
    tokens = tokenize(rendered)
    # SELECT <name> FROM Contact ORDER BY <name> ASC
    assert [t.kind for t in tokens] == ["ident"] * 8
    assert tokens[1].text == name and tokens[6].text == name
