"""The engine against the describe snapshots in sandbox_org/data/objects/*.json."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from sandbox_org.soql import SoqlError, execute

from .fixtures import MemorySource, make_id

SNAPSHOTS = Path(__file__).resolve().parents[2] / "data" / "objects"
DESCRIBES = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(SNAPSHOTS.glob("*.json"))}

pytestmark = pytest.mark.skipif(
    not DESCRIBES, reason="no describe snapshots in sandbox_org/data/objects"
)

STATUSES = ["Open", "On Hold", "Filled", "Closed", "Cancelled"]
CITIES = ["London", "Berlin", "Austin", "Toronto", "Sydney", "Pune", "Paris"]
DEPARTMENTS = ["Engineering", "Sales", "Marketing", "Finance", "Operations", "People"]


def _jobs(count: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    start = date(2024, 1, 1)
    rows = []
    for i in range(1, count + 1):
        posted = start + timedelta(days=rnd.randrange(400))
        rows.append(
            {
                "Id": make_id("a0M", i),
                "IsDeleted": rnd.random() < 0.02,
                "Name": f"Job {i:05d}",
                "OwnerId": make_id("005", 1),
                "CreatedDate": f"{posted.isoformat()}T09:{i % 60:02d}:00.000+0000",
                "bpats__Job_Title__c": f"{rnd.choice(DEPARTMENTS)} role {i}",
                "bpats__Status__c": rnd.choice(STATUSES),
                "bpats__Post_to_Job_Board__c": rnd.random() < 0.6,
                "bpats__Date_Posted__c": None if i % 13 == 0 else posted.isoformat(),
                "bpats__City__c": rnd.choice(CITIES),
                "bpats__Department__c": rnd.choice(DEPARTMENTS),
                "bpats__Salary_Min__c": None
                if i % 7 == 0
                else float(rnd.randrange(30, 200) * 1000),
                "bpats__Account__c": make_id("001", rnd.randrange(1, 51)),
                "bpats__Description__c": "<p>text</p>",
            }
        )
    return rows


def _source(jobs: int = 0) -> MemorySource:
    rows = {name: [] for name in DESCRIBES}
    rows["bpats__Job__c"] = _jobs(jobs)
    rows["Account"] = [
        {"Id": make_id("001", i), "IsDeleted": False, "Name": f"Client {i}"} for i in range(1, 51)
    ]
    rows["User"] = [{"Id": make_id("005", 1), "IsDeleted": False, "Name": "Integration User"}]
    return MemorySource(DESCRIBES, rows)


@pytest.fixture(scope="module")
def big() -> MemorySource:
    return _source(10_000)


@pytest.mark.parametrize("sobject", sorted(DESCRIBES))
def test_every_field_of_every_object_can_be_selected(sobject):
    fields = ", ".join(f["name"] for f in DESCRIBES[sobject]["fields"])
    empty = MemorySource(DESCRIBES, {})
    result = execute(f"SELECT {fields} FROM {sobject}", empty)
    assert (result.records, result.total_size) == ([], 0)
    assert execute(f"select count() from {sobject.upper()}", empty).is_count


@pytest.mark.parametrize("sobject", sorted(DESCRIBES))
def test_every_field_filters_on_null_or_refuses_like_salesforce(sobject):
    source = MemorySource(DESCRIBES, {})
    for field in DESCRIBES[sobject]["fields"]:
        soql = f"SELECT Id FROM {sobject} WHERE {field['name']} = null"
        if field["filterable"]:
            assert execute(soql, source).records == []
        else:
            with pytest.raises(SoqlError) as info:
                execute(soql, source)
            assert info.value.error_code == "INVALID_FIELD"
            assert info.value.message.endswith("can not be filtered in query call")


@pytest.mark.parametrize("sobject", sorted(DESCRIBES))
def test_every_relationship_resolves(sobject):
    describe = DESCRIBES[sobject]
    source = _source()
    for field in describe["fields"]:
        if field["relationshipName"] and field["referenceTo"][0] in DESCRIBES:
            execute(f"SELECT {field['relationshipName']}.Id FROM {sobject}", source)
    for child in describe["childRelationships"]:
        if child["relationshipName"] and child["childSObject"] in DESCRIBES:
            execute(
                f"SELECT Id, (SELECT Id FROM {child['relationshipName']}) FROM {sobject}", source
            )


def test_the_public_job_listing_query_over_10000_jobs(big):
    soql = (
        "SELECT Id, Name, bpats__Job_Title__c, bpats__City__c, bpats__Salary_Min__c, "
        "bpats__Date_Posted__c, bpats__Account__r.Name FROM bpats__Job__c "
        "WHERE bpats__Status__c = 'Open' AND bpats__Post_to_Job_Board__c = true "
        "ORDER BY bpats__Date_Posted__c DESC NULLS LAST, Name"
    )
    result = execute(soql, big)
    rows = [
        r
        for r in big.rows["bpats__Job__c"]
        if not r["IsDeleted"]
        and r["bpats__Status__c"] == "Open"
        and r["bpats__Post_to_Job_Board__c"]
    ]
    dated = sorted((r for r in rows if r["bpats__Date_Posted__c"]), key=lambda r: r["Name"])
    dated.sort(key=lambda r: r["bpats__Date_Posted__c"], reverse=True)
    undated = sorted((r for r in rows if not r["bpats__Date_Posted__c"]), key=lambda r: r["Name"])
    assert [r["Id"] for r in result.records] == [r["Id"] for r in dated + undated]
    assert result.total_size == len(rows) > 1000
    first = result.records[0]
    assert first["bpats__Account__r"]["attributes"]["type"] == "Account"
    assert first["bpats__Account__r"]["Name"].startswith("Client ")


def test_complex_filter_over_10000_jobs(big):
    soql = (
        "SELECT Id FROM bpats__Job__c WHERE (bpats__City__c IN ('london', 'Berlin') "
        "OR bpats__Job_Title__c LIKE 'sales%') AND bpats__Salary_Min__c >= 100000 "
        "AND bpats__Date_Posted__c > 2024-06-30 AND NOT bpats__Status__c = 'Closed' "
        "ORDER BY bpats__Salary_Min__c DESC, Name LIMIT 50 OFFSET 10"
    )
    result = execute(soql, big)
    rows = [
        r
        for r in big.rows["bpats__Job__c"]
        if not r["IsDeleted"]
        and (
            r["bpats__City__c"] in ("London", "Berlin")
            or r["bpats__Job_Title__c"].lower().startswith("sales")
        )
        and r["bpats__Salary_Min__c"] is not None
        and r["bpats__Salary_Min__c"] >= 100000
        and (r["bpats__Date_Posted__c"] or "") > "2024-06-30"
        and r["bpats__Status__c"] != "Closed"
    ]
    rows.sort(key=lambda r: r["Name"])
    rows.sort(key=lambda r: r["bpats__Salary_Min__c"], reverse=True)
    assert [r["Id"] for r in result.records] == [r["Id"] for r in rows[10:60]]
    assert len(result.records) == 50


def test_count_and_query_all_over_10000_jobs(big):
    live = sum(1 for r in big.rows["bpats__Job__c"] if not r["IsDeleted"])
    assert execute("SELECT COUNT() FROM bpats__Job__c", big).total_size == live
    assert (
        execute("SELECT COUNT() FROM bpats__Job__c", big, include_deleted=True).total_size == 10_000
    )


def test_description_is_not_filterable_in_the_snapshot(big):
    with pytest.raises(SoqlError) as info:
        execute("SELECT Id FROM bpats__Job__c ORDER BY bpats__Description__c", big)
    assert info.value.message.endswith(
        "field 'bpats__Description__c' can not be sorted in a query call"
    )


def test_picklists_sort_in_their_defined_order(big):
    defined = [
        v["value"]
        for f in DESCRIBES["bpats__Job__c"]["fields"]
        if f["name"] == "bpats__Status__c"
        for v in f["picklistValues"]
    ]
    assert defined != sorted(defined)
    for direction, expected in (("", defined), (" DESC", defined[::-1])):
        result = execute(
            f"SELECT bpats__Status__c FROM bpats__Job__c ORDER BY bpats__Status__c{direction}", big
        )
        seen = [r["bpats__Status__c"] for r in result.records]
        assert list(dict.fromkeys(seen)) == [v for v in expected if v in seen]
        assert len(set(seen)) == len(STATUSES)


def test_group_by_over_10000_jobs(big):
    result = execute(
        "SELECT bpats__City__c city, COUNT(Id) n, AVG(bpats__Salary_Min__c) pay FROM bpats__Job__c "
        "GROUP BY bpats__City__c ORDER BY bpats__City__c",
        big,
    )
    live = [r for r in big.rows["bpats__Job__c"] if not r["IsDeleted"]]
    assert [r["city"] for r in result.records] == sorted(CITIES)
    assert sum(r["n"] for r in result.records) == len(live)
    london = [r["bpats__Salary_Min__c"] for r in live if r["bpats__City__c"] == "London"]
    london = [v for v in london if v is not None]
    assert result.records[sorted(CITIES).index("London")]["pay"] == pytest.approx(
        sum(london) / len(london)
    )


def test_created_date_is_not_groupable_in_the_snapshot(big):
    with pytest.raises(SoqlError) as info:
        execute("SELECT CreatedDate FROM bpats__Job__c GROUP BY CreatedDate", big)
    assert info.value.error_code == "INVALID_FIELD"


def test_many_parents_are_loaded_in_one_scan():
    source = _source(0)
    jobs = _jobs(300)
    source.rows["bpats__Job__c"] = jobs
    source.by_id.update({row["Id"]: row for row in jobs})
    source.rows["bpats__Job_Board_Application__c"] = [
        {
            "Id": make_id("a0J", i + 1),
            "IsDeleted": False,
            "Name": f"JBA-{i + 1:06d}",
            "bpats__Job__c": job["Id"],
        }
        for i, job in enumerate(jobs)
    ]
    result = execute(
        "SELECT Name, bpats__Job__r.Name FROM bpats__Job_Board_Application__c "
        "ORDER BY bpats__Job__r.Name DESC",
        source,
    )
    live = sorted((job for job in jobs if not job["IsDeleted"]), key=lambda j: j["Name"])
    shown = [r["bpats__Job__r"] and r["bpats__Job__r"]["Name"] for r in result.records]
    assert shown == [job["Name"] for job in reversed(live)] + [None] * (300 - len(live))
    assert source.record_calls <= 64
