"""The pure jobs engine: filters, full-text q, sort, keyset cursors, facets.

Queries are made the way the service makes them: parsed by the metadata layer's `job_filters`
schema (offline, over the shipped describe snapshots), then translated by ``from_listing``.
How bad parameters are reported is tested with that schema (tests/unit/metadata)."""

from __future__ import annotations

import functools
import random
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import MultiDict

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.metadata.cache import DescribeCache
from ats_gateway.metadata.contracts import load_contracts
from ats_gateway.metadata.service import Metadata
from ats_gateway.services.jobs.contract import FilterParam, JobField, JobsContract
from ats_gateway.services.jobs.engine import (
    CursorCodec,
    CursorKey,
    JobIndex,
    JobQuery,
    SortSpec,
    from_listing,
)
from ats_gateway.services.jobs.errors import CursorGone, QueryInvalid
from ats_gateway.services.jobs.service import load_query
from ats_gateway.services.jobs.text import fold, words

DEPARTMENTS = ("Engineering", "Sales", "Marketing")
CONTRACT = JobsContract(
    sobject="bpats__Job__c",
    fields=(
        JobField("id", "Id", "id", sortable=True),
        JobField("title", "bpats__Job_Title__c", "string", sortable=True, searchable=True),
        JobField(
            "department",
            "bpats__Department__c",
            "picklist",
            sortable=True,
            facet=True,
            values=DEPARTMENTS,
        ),
        JobField("city", "bpats__City__c", "string", sortable=True, facet=True),
        JobField("description", "bpats__Description__c", "html", searchable=True),
        JobField("salary_min", "bpats__Salary_Min__c", "number", sortable=True),
        JobField("posted_at", "bpats__Date_Posted__c", "date", sortable=True),
    ),
    filters=(
        FilterParam("department", "department"),
        FilterParam("city", "city"),
        FilterParam("posted_after", "posted_at", "gte"),
        FilterParam("salary_min", "salary_min", "gte"),
    ),
    default_sort="-posted_at",
)


def job(n: int, **values) -> dict:
    base = {
        "id": f"a0M000000000{n:03d}AAA",
        "title": f"Job {n}",
        "department": "Engineering",
        "city": "Berlin",
        "description": "<p>Nice job</p>",
        "salary_min": 50000,
        "posted_at": "2026-01-01",
    }
    base.update(values)
    return base


SCHEMAS = PROJECT_ROOT / "ats_gateway" / "schemas"
METADATA = Metadata(load_contracts(SCHEMAS), DescribeCache(None, SCHEMAS, {}))  # snapshots only


def q(**args) -> JobQuery:
    """The query of these parameters, parsed as a request's are (a list: repeated)."""
    pairs = [(k, v) for k, vs in args.items() for v in (vs if isinstance(vs, list) else [vs])]
    loader = functools.partial(METADATA.load_query, "job_filters")
    return load_query(loader, MultiDict(pairs), CONTRACT)


def listing(index: JobIndex, query: JobQuery) -> list[str]:
    """Every id of a query, page after page, through the keyset cursor."""
    matched = index.match(query)
    out: list[str] = []
    after = None
    for _ in range(index.n + 2):  # a cursor that never ends is a failure, not a hang
        positions, after = index.page(query, matched, after)
        out += [index.ids[i] for i in positions]
        if after is None:
            return out
    raise AssertionError("paging did not end")


@pytest.fixture
def index() -> JobIndex:
    return JobIndex(
        [
            job(1, title="Senior Software Engineer", city="Zürich", salary_min=120000),
            job(2, title="Sales Manager", department="Sales", city="Berlin", salary_min=None),
            job(3, title="École Teacher", department="Marketing", city="Paris"),
            job(4, title="Backend engineering lead", description="<strong>Python</strong> APIs"),
            job(5, title="Account Executive", department="Sales", posted_at="2026-03-01"),
        ],
        CONTRACT,
        version="7",
    )


# --------------------------------------------------------------------------- text


def test_fold_removes_case_and_accents():
    assert fold("Zürich ÉCOLE Straße") == "zurich ecole strasse"
    assert words("Front-end/Back-end, Zürich!") == ["front", "end", "back", "end", "zurich"]


# --------------------------------------------------------------------------- parsing


def test_unknown_parameters_are_listed_with_what_is_allowed():
    with pytest.raises(QueryInvalid) as err:
        q(colour="red")
    (problem,) = err.value.errors
    assert problem["field"] == "colour"
    assert problem["code"] == "unknown_field"
    assert "department" in problem["message"] and "posted_after" in problem["message"]


def test_picklist_value_outside_the_org_is_refused_with_the_allowed_values():
    with pytest.raises(QueryInvalid) as err:
        q(department="Astronomy")
    (problem,) = err.value.errors
    assert problem["field"] == "department[0]"
    assert "Engineering, Sales, Marketing" in problem["message"]


def test_every_problem_is_reported_at_once():
    with pytest.raises(QueryInvalid) as err:
        q(sort="-colour", limit="500", fields="title,secret", posted_after="yesterday")
    fields = sorted(e["field"] for e in err.value.errors)
    assert fields == ["fields[1]", "limit", "posted_after", "sort"]
    sort_message = next(e["message"] for e in err.value.errors if e["field"] == "sort")
    assert "salary_min" in sort_message and "prefix - for descending" in sort_message


def test_in_filters_take_commas_or_repeats_and_fold_values():
    assert q(department="Sales,Engineering").filters == (("department", ("engineering", "sales")),)
    assert (
        q(department=["Sales", "Engineering"]).filters == q(department="Sales,Engineering").filters
    )


def test_defaults():
    query = q()
    assert query.sort == SortSpec((("posted_at", True),))
    assert query.limit == 20 and query.fields is None and query.cursor is None


def test_fields_always_include_the_id():
    assert q(fields="title").fields == ("id", "title")


# --------------------------------------------------------------------------- matching


def test_equality_is_case_and_accent_insensitive(index):
    assert listing(index, q(city="zurich", sort="id")) == [index.ids[0]]


def test_in_and_combined_filters(index):
    assert len(listing(index, q(department="Sales,Marketing"))) == 3
    both = listing(index, q(department="Sales", posted_after="2026-02-01"))
    assert both == ["a0M000000000005AAA"]


def test_ranges_include_the_bound_and_skip_empty_values(index):
    assert listing(index, q(salary_min="120000")) == ["a0M000000000001AAA"]
    assert "a0M000000000002AAA" not in listing(index, q(salary_min="0"))


def test_q_words_are_anded_prefixes_case_and_accent_insensitive(index):
    assert set(listing(index, q(q="ENGINEER"))) == {"a0M000000000001AAA", "a0M000000000004AAA"}
    assert listing(index, q(q="engineer senior")) == ["a0M000000000001AAA"]
    assert listing(index, q(q="ecole")) == ["a0M000000000003AAA"]
    assert listing(index, q(q="python")) == ["a0M000000000004AAA"]  # in the description


def test_q_does_not_match_html_markup(index):
    assert listing(index, q(q="strong")) == []


def test_nothing_matches_an_unseen_value(index):
    query = q(city="Atlantis")
    assert index.match(query) == frozenset()
    assert listing(index, query) == []


# --------------------------------------------------------------------------- sorting


def test_sort_both_ways_with_empty_values_last(index):
    up = listing(index, q(sort="salary_min"))
    down = listing(index, q(sort="-salary_min"))
    assert up[0] != "a0M000000000002AAA" and up[-1] == "a0M000000000002AAA"
    assert down[0] == "a0M000000000001AAA" and down[-1] == "a0M000000000002AAA"


def test_ties_are_broken_by_id(index):
    ids = listing(index, q(sort="department"))
    assert ids == [
        "a0M000000000001AAA",
        "a0M000000000004AAA",  # Engineering
        "a0M000000000003AAA",  # Marketing
        "a0M000000000002AAA",
        "a0M000000000005AAA",  # Sales
    ]


def test_sort_on_several_fields(index):
    ids = listing(index, q(sort="-department,title"))
    assert ids[:2] == ["a0M000000000005AAA", "a0M000000000002AAA"]  # Sales: A..., S...


def test_string_sort_ignores_case_and_accents(index):
    titles = [index.get(i)["title"] for i in listing(index, q(sort="title"))]
    assert titles == sorted(titles, key=fold)
    assert titles.index("École Teacher") < titles.index("Sales Manager")


# --------------------------------------------------------------------------- paging


def _big_index(n: int = 300, seed: int = 5) -> JobIndex:
    rng = random.Random(seed)
    records = [
        job(
            i,
            title=rng.choice(["Engineer", "Manager", "Analyst"]) + f" {rng.randint(1, 20)}",
            department=rng.choice(DEPARTMENTS),
            city=rng.choice(["Berlin", "Paris", None]),
            salary_min=rng.choice([None, 40000, 60000, 80000]),
            posted_at=f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        )
        for i in range(n)
    ]
    return JobIndex(records, CONTRACT, version="1")


@pytest.mark.parametrize("sort", ["-posted_at", "salary_min", "-salary_min", "city,-title", "id"])
@pytest.mark.parametrize("limit", ["1", "7", "100"])
@pytest.mark.parametrize("filters", [{}, {"department": "Sales"}, {"q": "engineer"}])
def test_paging_visits_every_match_once_in_order(sort, limit, filters):
    index = _big_index()
    query = q(sort=sort, limit=limit, **filters)
    matched = index.match(query)
    ids = listing(index, query)
    expected_count = index.n if matched is None else len(matched)
    assert len(ids) == len(set(ids)) == expected_count
    order, _ = index.order(query.sort)
    positions = [index.ids.index(i) for i in ids]
    ranks = [order.index(p) for p in positions]
    assert ranks == sorted(ranks)


def test_a_cursor_continues_in_a_newer_snapshot_without_repeating(index):
    codec = CursorCodec("secret")
    query = q(sort="title", limit="2")
    first, key = index.page(query, index.match(query))
    token = codec.encode(version=index.version, query=query, key=key)
    seen = [index.ids[i] for i in first]
    # The org changed: job 3 closed (it was on the next page), job 6 opened at the front.
    records = [d for d in index.docs if d["id"] != "a0M000000000003AAA"]
    records.append(job(6, title="Aaron's Job"))
    newer = JobIndex(records, CONTRACT, version="8")
    after, version = codec.decode(token, query)
    assert version == "7"
    rest = listing_from(newer, query, after)
    assert not set(seen) & set(rest)
    assert "a0M000000000003AAA" not in rest
    assert "a0M000000000006AAA" not in rest  # sorts before the cursor: belongs to page one
    titles = [newer.get(i)["title"] for i in rest]
    assert titles == sorted(titles, key=fold)
    assert len(seen) + len(rest) == newer.n - 1


def listing_from(index: JobIndex, query: JobQuery, after: CursorKey) -> list[str]:
    matched = index.match(query)
    out: list[str] = []
    for _ in range(index.n + 2):
        positions, after = index.page(query, matched, after)
        out += [index.ids[i] for i in positions]
        if after is None:
            return out
    raise AssertionError("paging did not end")


def test_a_cursor_is_bound_to_its_query(index):
    codec = CursorCodec("secret")
    query = q(sort="title", limit="1")
    _, key = index.page(query, index.match(query))
    token = codec.encode(version="7", query=query, key=key)
    with pytest.raises(QueryInvalid) as err:
        codec.decode(token, q(sort="-title", limit="1"))
    assert err.value.errors[0]["code"] == "mismatch"
    assert codec.decode(token, q(sort="title", limit="50"))[0] == key  # limit may change


def test_a_forged_cursor_is_refused(index):
    with pytest.raises(QueryInvalid) as err:
        CursorCodec("secret").decode("eyJ2IjoiMSJ9.forged", q())
    assert err.value.errors[0]["field"] == "cursor"
    other = CursorCodec("other-secret").encode(
        version="7", query=q(), key=CursorKey(("2026-01-01",), "a0M000000000001AAA")
    )
    with pytest.raises(QueryInvalid):
        CursorCodec("secret").decode(other, q())


def test_a_cursor_whose_key_no_longer_fits_is_gone(index):
    query = q(sort="salary_min")
    with pytest.raises(CursorGone):
        index.page(query, None, CursorKey(("not a number",), "a0M000000000001AAA"))
    with pytest.raises(CursorGone):
        index.page(query, None, CursorKey((1.0, 2.0), "a0M000000000001AAA"))


# --------------------------------------------------------------------------- facets, lookups


def test_facet_counts_equal_the_listing_totals():
    index = _big_index()
    base = {"q": "engineer", "city": "Berlin"}
    facets = index.facets(q(**base))
    assert facets["department"]
    for entry in facets["department"]:
        listed = index.match(q(**{**base, "department": entry["value"]}))
        assert entry["count"] == len(listed)
    for entry in facets["city"]:  # the city facet ignores the city filter itself
        listed = index.match(q(q="engineer", city=entry["value"]))
        assert entry["count"] == len(listed)


def test_lookup_by_15_or_18_character_id(index):
    assert index.get("a0M000000000001AAA")["title"] == "Senior Software Engineer"
    assert index.get("a0M000000000001")["title"] == "Senior Software Engineer"
    assert index.get("a0M000000000001aaa") is not None  # the suffix is case-insensitive
    assert index.get("a0M000000000001XYZ") is None
    assert index.get("a0M000000000099") is None
    assert index.get("../etc/passwd") is None


def test_projection_keeps_only_the_fields_asked_for(index):
    doc = index.get("a0M000000000001")
    assert index.project(doc, ("id", "city")) == {"id": "a0M000000000001AAA", "city": "Zürich"}
    assert set(index.project(doc, None)) == set(CONTRACT.exposed)


def test_from_listing_translates_the_metadata_layers_query():
    from datetime import date
    from decimal import Decimal

    listing_query = SimpleNamespace(
        filters=(
            SimpleNamespace(name="department", field="department", op="in", value=["Sales"]),
            SimpleNamespace(
                name="posted_after", field="posted_at", op="gte", value=date(2026, 2, 1)
            ),
            SimpleNamespace(
                name="salary_min", field="salary_min", op="gte", value=Decimal("1000.50")
            ),
        ),
        q="Senior  ENGINEER",
        sort=(SimpleNamespace(field="title", descending=True),),
        limit=5,
        cursor=None,
        fields=("title",),
    )
    query = from_listing(listing_query, CONTRACT)
    assert query == JobQuery(
        filters=(("department", ("sales",)),),
        ranges=(("posted_after", "2026-02-01"), ("salary_min", 1000.5)),
        words=("engineer", "senior"),
        sort=SortSpec((("title", True),)),
        limit=5,
        fields=("id", "title"),
    )
    assert (
        query.signature()
        == q(
            department="Sales",
            posted_after="2026-02-01",
            salary_min="1000.5",
            q="engineer senior",
            sort="-title",
        ).signature()
    )
