"""Query and QueryAll: paging across 5,000 records, batch sizes, locators, errors."""

from __future__ import annotations

import pytest

from sandbox_org import create_app
from sandbox_org.server import start_in_thread

from .conftest import VERSION, Org, error_of


@pytest.fixture(scope="module")
def big():
    handle = start_in_thread(create_app({"seed": "demo", "seed_jobs": 5000}))
    try:
        yield Org(handle).client("job_portal")
    finally:
        handle.stop()


def test_paging_across_5000_records(big):
    r = big.query("SELECT Id, Name FROM bpats__Job__c")
    first = r.json()
    assert list(first) == ["totalSize", "done", "nextRecordsUrl", "records"]
    assert first["totalSize"] == 5000 and first["done"] is False
    assert len(first["records"]) == 2000
    locator = first["nextRecordsUrl"]
    assert locator.startswith(f"/services/data/v{VERSION}/query/01g") and locator.endswith("-2000")
    seen = [rec["Id"] for rec in first["records"]]
    page = first
    pages = 1
    while not page["done"]:
        page = big.session.get(big.root + page["nextRecordsUrl"], timeout=30).json()
        assert page["totalSize"] == 5000
        seen += [rec["Id"] for rec in page["records"]]
        pages += 1
    assert pages == 3
    assert "nextRecordsUrl" not in page
    assert len(seen) == len(set(seen)) == 5000


@pytest.mark.parametrize(
    ("asked", "size"), [("batchSize=500", 500), ("batchSize=50", 200), ("batchSize=9999", 2000)]
)
def test_batch_size_header(big, asked, size):
    r = big.query("SELECT Id FROM bpats__Job__c", headers={"Sforce-Query-Options": asked})
    body = r.json()
    assert len(body["records"]) == size
    assert body["nextRecordsUrl"].endswith(f"-{size}")


def test_unknown_locator(big):
    r = big.get("/query/01g5g00000000ZZAAA-2000")
    assert r.status_code == 400
    assert error_of(r)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_count_and_filters(admin):
    r = admin.query("SELECT COUNT() FROM bpats__Job__c WHERE bpats__Status__c = 'Open'")
    body = r.json()
    assert body["records"] == [] and body["done"] is True and body["totalSize"] > 0
    rows = admin.query(
        "SELECT Id, bpats__Status__c FROM bpats__Job__c WHERE bpats__Status__c = 'open' LIMIT 5"
    ).json()["records"]
    assert rows and all(row["bpats__Status__c"] == "Open" for row in rows)


def test_parent_and_child_relationships(admin):
    r = admin.query(
        "SELECT Id, bpats__Job__r.Name, (SELECT Id FROM bpats__Interview_Feedback__r) "
        "FROM bpats__Interview__c LIMIT 3"
    )
    assert r.status_code == 200, r.text
    rec = r.json()["records"][0]
    assert rec["bpats__Job__r"]["attributes"]["type"] == "bpats__Job__c"
    assert "bpats__Interview_Feedback__r" in rec


def test_query_all_sees_deleted_rows(admin):
    rid = admin.create("Account", {"Name": "To be deleted for queryAll"})
    admin.delete(f"/sobjects/Account/{rid}")
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{rid}'"
    assert admin.query(soql).json()["totalSize"] == 0
    every = admin.get("/queryAll", params={"q": soql}).json()
    assert every["totalSize"] == 1 and every["records"][0]["IsDeleted"] is True


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Foo FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
        ("SELECT FROM Account", "MALFORMED_QUERY"),
    ],
)
def test_bad_queries(admin, soql, code):
    r = admin.query(soql)
    assert r.status_code == 400
    assert error_of(r)["errorCode"] == code


def test_missing_query_string(admin):
    r = admin.get("/query")
    assert r.status_code == 400
    assert error_of(r) == {
        "message": "A query string has to be specified",
        "errorCode": "MALFORMED_QUERY",
    }


def test_unreadable_object_is_invalid_type(portal):
    r = portal.query("SELECT Id FROM bpats__Interview__c")
    assert r.status_code == 400
    err = error_of(r)
    assert err["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'bpats__Interview__c' is not supported" in err["message"]
