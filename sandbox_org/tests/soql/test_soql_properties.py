"""Property tests: escaping round-trips, LIKE escaping, and the engine agrees with plain Python."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox_org.soql import SoqlError, escape, execute, parse
from sandbox_org.soql import nodes as n
from sandbox_org.soql.literals import unescape

from .fixtures import MemorySource, fld, make_id

TEXT = st.text(max_size=40)


@settings(deadline=None)
@given(TEXT)
def test_escaped_string_round_trips_through_the_parser(value):
    query = parse(f"SELECT Id FROM Account WHERE Name = '{escape(value)}'")
    assert isinstance(query.where, n.Compare)
    assert isinstance(query.where.value, n.StringLit)
    assert unescape(query.where.value.raw) == value


_NAMED = {"\n": "nN", "\r": "rR", "\t": "tT", "\b": "bB", "\f": "fF", "'": "'", '"': '"'}
_NAMED["\\"] = "\\"


@st.composite
def _any_escaping(draw, value: str) -> str:
    """``value`` written with any mix of the escapes Salesforce accepts for each character."""
    out = []
    for ch in value:
        options = [f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"] if ord(ch) <= 0xFFFF else []
        options += ["\\" + e for e in _NAMED.get(ch, "")]
        if ch not in "'\\":
            options.append(ch)
        out.append(draw(st.sampled_from(options)))
    return "".join(out)


@settings(deadline=None)
@given(st.data(), TEXT)
def test_any_salesforce_escaping_round_trips_through_the_parser(data, value):
    body = data.draw(_any_escaping(value))
    query = parse(f"SELECT Id FROM Account WHERE Name = '{body}'")
    assert isinstance(query.where, n.Compare)
    assert isinstance(query.where.value, n.StringLit)
    assert unescape(query.where.value.raw) == value


def _one_object(values: list, type_: str = "string") -> MemorySource:
    describe = {
        "name": "Thing__c",
        "keyPrefix": "a0X",
        "fields": [fld("Id", "id"), fld("IsDeleted", "boolean"), fld("V__c", type_)],
        "childRelationships": [],
    }
    rows = [
        {"Id": make_id("a0X", i + 1), "IsDeleted": False, "V__c": value}
        for i, value in enumerate(values)
    ]
    return MemorySource({"Thing__c": describe}, {"Thing__c": rows})


@settings(max_examples=60, deadline=None)
@given(TEXT, TEXT)
def test_escaped_string_equality_finds_exactly_that_value(value, other):
    source = _one_object([value, other])
    result = execute(f"SELECT V__c FROM Thing__c WHERE V__c = '{escape(value)}'", source)
    got = [r["V__c"] for r in result.records]
    expected = [v for v in (value, other) if (v or None) and v.lower() == value.lower()]
    if not value:  # '' is null in Salesforce
        expected = [v for v in (value, other) if not v]
    assert got == expected


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_like_with_escaped_wildcards_matches_the_value_itself(value):
    pattern = escape(value).replace("%", "\\%").replace("_", "\\_")
    source = _one_object([value, value + "x", "x" + value])
    soql = f"SELECT V__c FROM Thing__c WHERE V__c LIKE '{pattern}'"
    got = [r["V__c"] for r in execute(soql, source).records]
    assert got == ([value] if value else [])


NUMBERS = st.one_of(st.none(), st.integers(-50, 50), st.floats(-50, 50, allow_nan=False))
OPS = {
    "=": lambda v, k: v is not None and v == k,
    "!=": lambda v, k: v is None or v != k,
    "<": lambda v, k: v is not None and v < k,
    "<=": lambda v, k: v is not None and v <= k,
    ">": lambda v, k: v is not None and v > k,
    ">=": lambda v, k: v is not None and v >= k,
}


@settings(max_examples=80, deadline=None)
@given(st.lists(NUMBERS, max_size=20), st.sampled_from(sorted(OPS)), st.integers(-50, 50))
def test_number_comparisons_agree_with_python(values, op, bound):
    source = _one_object(values, "double")
    result = execute(f"SELECT Id, V__c FROM Thing__c WHERE V__c {op} {bound}", source)
    assert [r["V__c"] for r in result.records] == [v for v in values if OPS[op](v, bound)]


WORDS = st.one_of(st.none(), st.sampled_from(["a", "B", "b", "A", "c", "ab", "Ab", "C"]))


@settings(max_examples=80, deadline=None)
@given(st.lists(WORDS, max_size=20), st.booleans(), st.sampled_from([None, True, False]))
def test_order_by_agrees_with_python(values, descending, nulls_first):
    source = _one_object(values)
    clause = "DESC" if descending else "ASC"
    if nulls_first is not None:
        clause += " NULLS FIRST" if nulls_first else " NULLS LAST"
    result = execute(f"SELECT V__c FROM Thing__c ORDER BY V__c {clause}", source)
    first = (not descending) if nulls_first is None else nulls_first
    nulls = [v for v in values if v is None]
    others = sorted((v for v in values if v is not None), key=str.lower, reverse=descending)
    assert [r["V__c"] for r in result.records] == (nulls + others if first else others + nulls)


# Random WHERE trees over two number fields, checked against Python's own evaluation.
LEAF = st.tuples(st.sampled_from(["A__c", "B__c"]), st.sampled_from(sorted(OPS)), st.integers(0, 4))


def _trees():
    return st.recursive(
        LEAF,
        lambda children: st.one_of(
            st.tuples(st.just("NOT"), children),
            st.tuples(st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2, max_size=3)),
        ),
        max_leaves=8,
    )


def _soql(tree) -> str:
    if tree[0] == "NOT":
        return f"NOT ({_soql(tree[1])})"
    if tree[0] in ("AND", "OR"):
        return f" {tree[0]} ".join(f"({_soql(child)})" for child in tree[1])
    field, op, k = tree
    return f"{field} {op} {k}"


def _eval(tree, row) -> bool:
    if tree[0] == "NOT":
        return not _eval(tree[1], row)
    if tree[0] == "AND":
        return all(_eval(child, row) for child in tree[1])
    if tree[0] == "OR":
        return any(_eval(child, row) for child in tree[1])
    field, op, k = tree
    return OPS[op](row[field], k)


ROWS = [
    {"Id": make_id("a0X", i + 1), "IsDeleted": False, "A__c": a, "B__c": b}
    for i, (a, b) in enumerate((a, b) for a in (None, 0, 1, 2, 3, 4) for b in (None, 0, 2, 4))
]
TREE_SOURCE = MemorySource(
    {
        "Thing__c": {
            "name": "Thing__c",
            "keyPrefix": "a0X",
            "fields": [
                fld("Id", "id"),
                fld("IsDeleted", "boolean"),
                fld("A__c", "int"),
                fld("B__c", "int"),
            ],
            "childRelationships": [],
        }
    },
    {"Thing__c": ROWS},
)


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_where_trees_agree_with_python(tree):
    result = execute(f"SELECT Id FROM Thing__c WHERE {_soql(tree)}", TREE_SOURCE)
    assert [r["Id"] for r in result.records] == [r["Id"] for r in ROWS if _eval(tree, r)]


# Any token soup either runs or fails with SoqlError: never another exception.
_VOCABULARY = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "INCLUDES", "EXCLUDES",
    "ORDER", "BY", "GROUP", "ASC", "DESC", "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET",
    "COUNT", "COUNT_DISTINCT", "SUM", "MAX", "FIELDS", "ALL", "WITH", "FOR", "VIEW",
    "(", ")", ",", ".", "=", "!=", "<", ">=", ":", "null", "true", "TODAY", "LAST_N_DAYS:3",
    "'x'", "'a%'", "'\\\\'", "5", "2.5", "2024-01-01", "2024-01-01T00:00:00Z", "Id", "Name",
    "bpats__Job__c", "bpats__Job__r", "bpats__Status__c", "bpats__Skills__c",
    "bpats__Salary_Min__c", "bpats__Description__c", "bpats__Job_Board_Applications__r",
    "bpats__Account__r", "Account", "Owner", "j", "#",
]  # fmt: skip
_FUZZ_SOURCE = MemorySource()


_HEADS = [
    "",
    "SELECT Name FROM bpats__Job__c",
    "SELECT Name FROM bpats__Job__c WHERE",
    "SELECT Name FROM bpats__Job__c WHERE bpats__Status__c",
    "SELECT Name, (SELECT Id FROM bpats__Job_Board_Applications__r WHERE",
    "SELECT bpats__Status__c, COUNT(Id) FROM bpats__Job__c GROUP BY",
    "SELECT Id FROM bpats__Job__c WHERE Id IN (SELECT",
    "SELECT Name FROM bpats__Job__c ORDER BY",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=12), st.sampled_from(_HEADS))
def test_any_token_soup_runs_or_raises_soql_error(tokens, head):
    soql = " ".join([head, *tokens])
    try:
        result = execute(soql, _FUZZ_SOURCE)
    except SoqlError as exc:
        assert exc.error_code in {
            "MALFORMED_QUERY",
            "INVALID_FIELD",
            "INVALID_TYPE",
            "INVALID_QUERY_FILTER_OPERATOR",
            "NUMBER_OUTSIDE_VALID_RANGE",
        }
        assert exc.message
    else:
        assert result.total_size >= 0
