"""Single-record methods, describe, limits and queries against literal wire shapes."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

import pytest
from responses import matchers
from sf_fakes import BASE, LIMIT_HEADERS, bearer, settings

from ats_gateway.salesforce import (
    Grants,
    MalformedQuery,
    NotFound,
    RecordInvalid,
    SalesforceClient,
)
from ats_gateway.salesforce.soql import field, select

CREATED = '{\n  "id" : "003D000000IqhSLIAZ",\n  "success" : true,\n  "errors" : [ ]\n}'


def _json(rsps, method, url, body, status=200, match=()):
    return rsps.add(
        method,
        url,
        body=body if isinstance(body, str) else json.dumps(body),
        status=status,
        content_type="application/json;charset=UTF-8",
        headers=LIMIT_HEADERS,
        match=list(match),
    )


def test_create_sends_the_fields_with_the_bearer_token_and_returns_the_id(sf, rsps):
    _json(
        rsps,
        "POST",
        f"{BASE}/sobjects/Contact",
        CREATED,
        status=201,
        match=[
            matchers.json_params_matcher({"LastName": "Smith", "Email": "a@example.com"}),
            bearer(),
        ],
    )
    assert sf.create("Contact", {"LastName": "Smith", "Email": "a@example.com"}) == (
        "003D000000IqhSLIAZ"
    )
    snapshot = sf.budget().snapshot()
    assert (snapshot.used, snapshot.limit, snapshot.remaining, snapshot.reserve) == (
        18,
        15000,
        14982,
        1500,
    )
    assert sf.status()["authenticated"] is True


def test_failed_create_is_a_typed_error(sf, rsps):
    body = [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    _json(rsps, "POST", f"{BASE}/sobjects/Contact", body, status=400)
    with pytest.raises(RecordInvalid) as info:
        sf.create("Contact", {"Email": "a@example.com"})
    assert info.value.fields == ("LastName",)
    assert info.value.retryable is False


def test_get_update_delete(sf, rsps):
    record = {
        "attributes": {
            "type": "Contact",
            "url": "/services/data/v62.0/sobjects/Contact/003D000000IqhSLIAZ",
        },
        "Id": "003D000000IqhSLIAZ",
        "LastName": "Smith",
    }
    _json(
        rsps,
        "GET",
        f"{BASE}/sobjects/Contact/003D000000IqhSLIAZ",
        record,
        match=[matchers.query_param_matcher({"fields": "Id,LastName"})],
    )
    rsps.add(
        "PATCH",
        f"{BASE}/sobjects/bpats__Interview_Feedback__c/a0FD000000IqhSLIAZ",
        status=204,
        match=[matchers.json_params_matcher({"bpats__Comments__c": "ok"})],
    )
    rsps.add(
        "DELETE", f"{BASE}/sobjects/bpats__Interview_Feedback__c/a0FD000000IqhSLIAZ", status=204
    )
    assert sf.get("Contact", "003D000000IqhSLIAZ", ["Id", "LastName"])["LastName"] == "Smith"
    sf.grants = Grants.everything()  # job_portal itself may neither edit nor delete feedback
    sf.update("bpats__Interview_Feedback__c", "a0FD000000IqhSLIAZ", {"bpats__Comments__c": "ok"})
    sf.delete("bpats__Interview_Feedback__c", "a0FD000000IqhSLIAZ")


def test_get_of_a_missing_record_is_not_found(sf, rsps):
    _json(
        rsps,
        "GET",
        f"{BASE}/sobjects/Contact/003D000000IqhSLIAZ",
        [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
        status=404,
    )
    with pytest.raises(NotFound):
        sf.get("Contact", "003D000000IqhSLIAZ")


@pytest.mark.parametrize("bad_id", ["003D000000IqhSLIAZ/../../x", "003", "003D000000IqhSL?x"])
def test_ids_are_checked_before_they_reach_a_url(sf_redis, bad_id):

    client = SalesforceClient(settings(), sf_redis)
    with pytest.raises(ValueError, match="record id"):
        client.get("Contact", bad_id)


@pytest.mark.parametrize(
    ("status", "body", "created"),
    [
        (
            201,
            {"id": "003D000000Kv3g5IAB", "success": True, "errors": [], "created": True},
            True,
        ),
        (
            200,
            {"id": "003D000000Kv3g5IAB", "success": True, "errors": [], "created": False},
            False,
        ),
    ],
)
def test_upsert(sf, rsps, status, body, created):
    sf.grants = Grants.everything()
    _json(
        rsps,
        "PATCH",
        f"{BASE}/sobjects/Contact/Ext_Id__c/a%2Fb%20c",
        body,
        status=status,
        match=[matchers.json_params_matcher({"LastName": "Smith"})],
    )
    result = sf.upsert("Contact", "Ext_Id__c", "a/b c", {"LastName": "Smith"})
    assert (result.id, result.created) == ("003D000000Kv3g5IAB", created)


def test_upsert_matching_several_records_is_an_error(sf, rsps):
    sf.grants = Grants.everything()
    _json(
        rsps,
        "PATCH",
        f"{BASE}/sobjects/Contact/Ext_Id__c/42",
        [
            "/services/data/v60.0/sobjects/Contact/003Dn00000srto9IAA",
            "/services/data/v60.0/sobjects/Contact/003Dn00000srtA8IAI",
        ],
        status=300,
    )
    with pytest.raises(RecordInvalid) as info:
        sf.upsert("Contact", "Ext_Id__c", "42", {"LastName": "Smith"})
    assert info.value.error_code == "DUPLICATE_EXTERNAL_ID"


def test_describe_revalidates_with_if_modified_since(sf, rsps):
    describe = {"name": "Contact", "fields": [{"name": "Id"}], "keyPrefix": "003"}
    since = dt.datetime(2013, 7, 3, 19, 43, 31, tzinfo=dt.UTC)
    _json(rsps, "GET", f"{BASE}/sobjects/Contact/describe", describe)
    rsps.add(
        "GET",
        f"{BASE}/sobjects/Contact/describe",
        status=304,
        match=[matchers.header_matcher({"If-Modified-Since": "Wed, 03 Jul 2013 19:43:31 GMT"})],
    )
    assert sf.describe("Contact")["keyPrefix"] == "003"
    assert sf.describe("Contact", if_modified_since=since) is None


def test_describe_global_and_limits(sf, rsps):
    _json(
        rsps,
        "GET",
        f"{BASE}/sobjects",
        {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [{"name": "Account"}]},
    )
    _json(
        rsps,
        "GET",
        f"{BASE}/limits",
        {"DailyApiRequests": {"Max": 15000, "Remaining": 14980}},
    )
    assert sf.describe_global()["maxBatchSize"] == 200
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 14980


# --------------------------------------------------------------------------- queries

JOB_QUERY = "SELECT Id, Name FROM bpats__Job__c WHERE bpats__Status__c = 'Open'"


def _job(i: int) -> dict:
    rid = f"a0MEm{i:010d}AAU"
    return {
        "attributes": {
            "type": "bpats__Job__c",
            "url": f"/services/data/v62.0/sobjects/bpats__Job__c/{rid}",
        },
        "Id": rid,
        "Name": f"Job {i}",
    }


def test_query_follows_next_records_url_lazily(sf, rsps):
    first = _json(
        rsps,
        "GET",
        f"{BASE}/query",
        {
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-2",
            "records": [_job(0), _job(1)],
        },
        match=[matchers.query_param_matcher({"q": JOB_QUERY})],
    )
    second = _json(
        rsps,
        "GET",
        f"{BASE}/query/01gD0000002HU6KIAW-2",
        {"totalSize": 3, "done": True, "records": [_job(2)]},
    )
    result = sf.query(select("Id", "Name").from_("bpats__Job__c").where(bpats__Status__c="Open"))
    assert first.call_count == 0  # nothing fetched until iteration
    records = iter(result)
    assert next(records)["Name"] == "Job 0"
    assert (first.call_count, second.call_count) == (1, 0)
    assert result.total_size == 3
    assert [r["Name"] for r in records] == ["Job 1", "Job 2"]
    assert second.call_count == 1
    assert result.pages_fetched == 2


def test_query_all_uses_query_all_and_batch_size_header(sf, rsps):
    _json(
        rsps,
        "GET",
        f"{BASE}/queryAll",
        {"totalSize": 0, "done": True, "records": []},
        match=[
            matchers.query_param_matcher({"q": JOB_QUERY}),
            matchers.header_matcher({"Sforce-Query-Options": "batchSize=500"}),
        ],
    )
    assert list(sf.query_all(JOB_QUERY, batch_size=500)) == []


def test_query_page_is_one_call(sf, rsps):
    _json(
        rsps,
        "GET",
        f"{BASE}/query",
        {"totalSize": 17, "done": True, "records": []},
        match=[matchers.query_param_matcher({"q": "SELECT count() FROM bpats__Job__c"})],
    )
    page = sf.query_page("SELECT count() FROM bpats__Job__c")
    assert (page.total_size, page.done, page.records, page.next_records_url) == (
        17,
        True,
        [],
        None,
    )


def test_a_bad_query_is_malformed_query(sf, rsps):
    _json(
        rsps,
        "GET",
        f"{BASE}/query",
        [
            {
                "message": "\nSELECT Foo FROM bpats__Job__c\n       ^\nERROR at Row:1:Column:8\n"
                "No such column 'Foo' on entity 'bpats__Job__c'.",
                "errorCode": "INVALID_FIELD",
            }
        ],
        status=400,
    )
    with pytest.raises(MalformedQuery):
        list(sf.query("SELECT Foo FROM bpats__Job__c"))


def test_next_records_url_must_stay_on_the_api(sf_redis):

    client = SalesforceClient(settings(), sf_redis)
    with pytest.raises(ValueError):
        client.query_page(next_url="https://evil.example/steal")


def test_query_many_packs_five_queries_per_call(sf, rsps):
    emails = [f"c{i}@example.com" for i in range(6)]
    queries = [
        select("Id", "Email").from_("Contact").where(field("Email").eq(email)) for email in emails
    ]
    texts = [q.render() for q in queries]

    def sub(i: int, body: dict, status: int = 200) -> dict:
        return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": f"q{i}"}

    def record(i: int) -> dict:
        rid = f"003D00000{i:06d}AAA"
        return {
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v62.0/sobjects/Contact/{rid}",
            },
            "Id": rid,
            "Email": emails[i],
        }

    def composite_request(indexes: range) -> dict:
        return {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": "/services/data/v62.0/query?q=" + quote(texts[i], safe=""),
                    "referenceId": f"q{i}",
                }
                for i in indexes
            ],
        }

    first = [sub(i, {"totalSize": 1, "done": True, "records": [record(i)]}) for i in range(5)]
    first[1] = sub(
        1,
        {
            "totalSize": 2,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-1",
            "records": [record(1)],
        },
    )
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {"compositeResponse": first},
        match=[matchers.json_params_matcher(composite_request(range(5)))],
    )
    _json(
        rsps,
        "GET",
        f"{BASE}/query/01gD0000002HU6KIAW-1",
        {"totalSize": 2, "done": True, "records": [record(1)]},
    )
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {"compositeResponse": [sub(5, {"totalSize": 0, "done": True, "records": []})]},
        match=[matchers.json_params_matcher(composite_request(range(5, 6)))],
    )
    results = sf.query_many(queries)
    assert [len(r) for r in results] == [1, 2, 1, 1, 1, 0]
    assert results[0][0]["Email"] == "c0@example.com"
    assert sf.api_calls == 3
