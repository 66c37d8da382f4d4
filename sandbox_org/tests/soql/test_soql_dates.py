"""Date literals (TODAY, LAST_N_DAYS:n, ...) on date and dateTime fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sandbox_org.soql import SoqlError, execute
from sandbox_org.soql.literals import relative_date_range

from .fixtures import MemorySource, fld, make_id

# A Wednesday; the week (en_US) starts on Sunday 2024-05-12.
NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
D = date

RANGES = [
    ("TODAY", None, D(2024, 5, 15), D(2024, 5, 16)),
    ("YESTERDAY", None, D(2024, 5, 14), D(2024, 5, 15)),
    ("TOMORROW", None, D(2024, 5, 16), D(2024, 5, 17)),
    ("THIS_WEEK", None, D(2024, 5, 12), D(2024, 5, 19)),
    ("LAST_WEEK", None, D(2024, 5, 5), D(2024, 5, 12)),
    ("NEXT_WEEK", None, D(2024, 5, 19), D(2024, 5, 26)),
    ("THIS_MONTH", None, D(2024, 5, 1), D(2024, 6, 1)),
    ("LAST_MONTH", None, D(2024, 4, 1), D(2024, 5, 1)),
    ("NEXT_MONTH", None, D(2024, 6, 1), D(2024, 7, 1)),
    ("THIS_QUARTER", None, D(2024, 4, 1), D(2024, 7, 1)),
    ("LAST_QUARTER", None, D(2024, 1, 1), D(2024, 4, 1)),
    ("NEXT_QUARTER", None, D(2024, 7, 1), D(2024, 10, 1)),
    ("THIS_YEAR", None, D(2024, 1, 1), D(2025, 1, 1)),
    ("LAST_YEAR", None, D(2023, 1, 1), D(2024, 1, 1)),
    ("NEXT_YEAR", None, D(2025, 1, 1), D(2026, 1, 1)),
    ("LAST_90_DAYS", None, D(2024, 2, 15), D(2024, 5, 16)),
    ("NEXT_90_DAYS", None, D(2024, 5, 16), D(2024, 8, 14)),
    ("LAST_N_DAYS", 7, D(2024, 5, 8), D(2024, 5, 16)),
    ("NEXT_N_DAYS", 7, D(2024, 5, 16), D(2024, 5, 23)),
    ("N_DAYS_AGO", 3, D(2024, 5, 12), D(2024, 5, 13)),
    ("LAST_N_WEEKS", 2, D(2024, 4, 28), D(2024, 5, 12)),
    ("NEXT_N_WEEKS", 2, D(2024, 5, 19), D(2024, 6, 2)),
    ("N_WEEKS_AGO", 1, D(2024, 5, 5), D(2024, 5, 12)),
    ("LAST_N_MONTHS", 3, D(2024, 2, 1), D(2024, 5, 1)),
    ("NEXT_N_MONTHS", 2, D(2024, 6, 1), D(2024, 8, 1)),
    ("N_MONTHS_AGO", 5, D(2023, 12, 1), D(2024, 1, 1)),
    ("LAST_N_QUARTERS", 2, D(2023, 10, 1), D(2024, 4, 1)),
    ("NEXT_N_QUARTERS", 1, D(2024, 7, 1), D(2024, 10, 1)),
    ("N_QUARTERS_AGO", 1, D(2024, 1, 1), D(2024, 4, 1)),
    ("LAST_N_YEARS", 2, D(2022, 1, 1), D(2024, 1, 1)),
    ("NEXT_N_YEARS", 1, D(2025, 1, 1), D(2026, 1, 1)),
    ("N_YEARS_AGO", 2, D(2022, 1, 1), D(2023, 1, 1)),
    ("THIS_FISCAL_YEAR", None, D(2024, 1, 1), D(2025, 1, 1)),
    ("LAST_FISCAL_QUARTER", None, D(2024, 1, 1), D(2024, 4, 1)),
    ("LAST_N_FISCAL_YEARS", 1, D(2023, 1, 1), D(2024, 1, 1)),
]


@pytest.mark.parametrize(("name", "n", "start", "end"), RANGES)
def test_ranges(name, n, start, end):
    assert relative_date_range(name, n, NOW.date()) == (start, end)


def _source() -> MemorySource:
    describe = {
        "name": "Event__c",
        "keyPrefix": "a0E",
        "fields": [
            fld("Id", "id"),
            fld("IsDeleted", "boolean"),
            fld("D__c", "date"),
            fld("DT__c", "datetime"),
        ],
        "childRelationships": [],
    }
    rows = []
    day = D(2021, 12, 1)
    i = 0
    while day <= D(2026, 2, 1):
        for time in ("00:00:00", "23:59:59"):
            i += 1
            rows.append(
                {
                    "Id": make_id("a0E", i),
                    "IsDeleted": False,
                    "D__c": day.isoformat(),
                    "DT__c": f"{day.isoformat()}T{time}.000+0000",
                }
            )
        day += timedelta(days=1 if day.year == 2024 else 9)
    rows.append({"Id": make_id("a0E", i + 1), "IsDeleted": False, "D__c": None, "DT__c": None})
    return MemorySource({"Event__c": describe}, {"Event__c": rows})


SOURCE = _source()
ALL_ROWS = SOURCE.rows["Event__c"]

_OPS = {
    "=": lambda v, s, e: v is not None and s <= v < e,
    "!=": lambda v, s, e: not (v is not None and s <= v < e),
    "<": lambda v, s, e: v is not None and v < s,
    "<=": lambda v, s, e: v is not None and v < e,
    ">": lambda v, s, e: v is not None and v >= e,
    ">=": lambda v, s, e: v is not None and v >= s,
}


@pytest.mark.parametrize("op", list(_OPS))
@pytest.mark.parametrize(("name", "n", "start", "end"), RANGES)
def test_date_literals_filter_date_and_datetime_fields(op, name, n, start, end):
    literal = name if n is None else f"{name}:{n}"
    for field, key in (
        ("D__c", lambda r: r["D__c"] and D.fromisoformat(r["D__c"])),
        ("DT__c", lambda r: r["DT__c"] and D.fromisoformat(r["DT__c"][:10])),
    ):
        result = execute(f"SELECT Id FROM Event__c WHERE {field} {op} {literal}", SOURCE, now=NOW)
        expected = [r["Id"] for r in ALL_ROWS if _OPS[op](key(r), start, end)]
        assert [r["Id"] for r in result.records] == expected, field


def test_date_literal_in_list():
    result = execute(
        "SELECT D__c FROM Event__c WHERE D__c IN (YESTERDAY, TOMORROW) ORDER BY D__c",
        SOURCE,
        now=NOW,
    )
    assert {r["D__c"] for r in result.records} == {"2024-05-14", "2024-05-16"}


def test_today_is_taken_in_utc():
    evening_in_new_york = datetime(2024, 5, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    result = execute(
        "SELECT D__c FROM Event__c WHERE D__c = TODAY", SOURCE, now=evening_in_new_york
    )
    assert {r["D__c"] for r in result.records} == {"2024-05-16"}


def test_naive_now_counts_as_utc():
    result = execute(
        "SELECT D__c FROM Event__c WHERE D__c = TODAY", SOURCE, now=NOW.replace(tzinfo=None)
    )
    assert {r["D__c"] for r in result.records} == {"2024-05-15"}


def test_datetime_literal_boundaries():
    soql = (
        "SELECT DT__c FROM Event__c "
        "WHERE DT__c >= 2024-05-15T00:00:00Z AND DT__c < 2024-05-16T00:00:00Z"
    )
    values = [r["DT__c"] for r in execute(soql, SOURCE).records]
    assert values == ["2024-05-15T00:00:00.000+0000", "2024-05-15T23:59:59.000+0000"]


def test_datetime_literal_with_offset_compares_instants():
    soql = "SELECT DT__c FROM Event__c WHERE DT__c = 2024-05-16T01:59:59+02:00"
    assert [r["DT__c"] for r in execute(soql, SOURCE).records] == ["2024-05-15T23:59:59.000+0000"]


def test_stored_datetimes_in_other_offsets_are_normalised():
    source = _source()
    first = source.rows["Event__c"][0]
    first["DT__c"] = "2021-12-01T01:00:00.000+0100"
    soql = "SELECT Id FROM Event__c WHERE DT__c = 2021-12-01T00:00:00Z"
    assert [r["Id"] for r in execute(soql, source).records] == [first["Id"]]


def test_date_literal_on_a_number_field_is_a_type_error():
    source = _source()
    source.describes["Event__c"]["fields"].append(fld("N__c", "double"))
    with pytest.raises(SoqlError) as info:
        execute("SELECT Id FROM Event__c WHERE N__c > TODAY", source)
    assert info.value.error_code == "INVALID_FIELD"
