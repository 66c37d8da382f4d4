"""Behaviour that must hold against recorded wire shapes and against the sandbox org alike.

Each test registers what a real org answers (``org.expect``; a no-op for the sandbox) and then
asserts only what is true of both: typed errors, outcomes in input order, and the number of
API calls (requests seen by ``responses``, or the sandbox's own ``/__sandbox__/usage`` counter).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from requests import ReadTimeout
from responses import matchers
from sf_fakes import ACCESS_TOKEN, INSTANCE, TOKEN_BODY, TOKEN_URL

from ats_gateway.salesforce import (
    Grants,
    Graph,
    MalformedQuery,
    NotFound,
    RecordInvalid,
    RecordLocked,
    RequestLimitExceeded,
    Subrequest,
    Token,
    Unavailable,
)
from ats_gateway.salesforce.soql import field, select

JBA = "bpats__Job_Board_Application__c"
RECORDED_JOB = "a0MEm000004fFnBMAU"
RECORDED_CONTACT = "003Em00000cqRQ3IAM"
REQUIRED_LASTNAME = {
    "statusCode": "REQUIRED_FIELD_MISSING",
    "message": "Required fields are missing: [LastName]",
    "fields": ["LastName"],
}


def _id(prefix: str, i: int) -> str:
    return f"{prefix}{i:012d}AAA"


def _save_results(prefix: str, start: int, size: int, bad: set[int] = frozenset()) -> list:
    return [
        {"success": False, "errors": [REQUIRED_LASTNAME]}
        if i in bad
        else {"id": _id(prefix, i), "success": True, "errors": []}
        for i in range(start, start + size)
    ]


def _contacts(n: int, tag: str, bad: set[int] = frozenset()) -> list[dict]:
    return [
        {"Email": f"{tag}-{i}@example.com"}
        if i in bad
        else {"LastName": f"Candidate {i}", "Email": f"{tag}-{i}@example.com"}
        for i in range(n)
    ]


def _job_id(org, client) -> str:
    if org.kind == "recorded":
        return RECORDED_JOB
    return next(iter(client.query("SELECT Id FROM bpats__Job__c LIMIT 1")))["Id"]


def _contact_id(org, client) -> str:
    if org.kind == "recorded":
        return RECORDED_CONTACT
    return client.create("Contact", {"LastName": "Tree", "Email": "tree@example.com"})


# --------------------------------------------------------------------------- single records


def test_create_then_get(org):
    client = org.client()
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    org.expect(
        "POST",
        "/sobjects/Contact",
        status=201,
        body={"id": "003D000000IqhSLIAZ", "success": True, "errors": []},
        match=[matchers.json_params_matcher({"LastName": "Smith", "Email": email})],
    )
    new_id = client.create("Contact", {"LastName": "Smith", "Email": email})
    org.expect(
        "GET",
        f"/sobjects/Contact/{new_id}",
        body={
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v62.0/sobjects/Contact/{new_id}",
            },
            "Id": new_id,
            "LastName": "Smith",
            "Email": email,
        },
        match=[matchers.query_param_matcher({"fields": "Id,LastName,Email"})],
    )
    record = client.get("Contact", new_id, ["Id", "LastName", "Email"])
    assert new_id.startswith("003") and len(new_id) == 18
    assert (record["Id"], record["LastName"], record["Email"]) == (new_id, "Smith", email)
    assert record["attributes"]["type"] == "Contact"


def test_invalid_record_is_record_invalid_and_not_retryable(org):
    client = org.client()
    org.expect(
        "POST",
        "/sobjects/Contact",
        status=400,
        body=[{**REQUIRED_LASTNAME, "errorCode": "REQUIRED_FIELD_MISSING"}],
    )
    with pytest.raises(RecordInvalid) as info:
        client.create("Contact", {"Email": "nobody@example.com"})
    assert info.value.error_code == "REQUIRED_FIELD_MISSING"
    assert "LastName" in info.value.fields
    assert info.value.retryable is False


def test_missing_record_is_not_found(org):
    client = org.client()
    missing = "0035g00000ZZZZZAA5"  # valid checksum, no such record
    org.expect(
        "GET",
        f"/sobjects/Contact/{missing}",
        status=404,
        body=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
    )
    with pytest.raises(NotFound):
        client.get("Contact", missing)


def test_bad_soql_is_malformed_query(org):
    client = org.client()
    org.expect(
        "GET",
        "/query",
        status=400,
        body=[
            {
                "message": "\nSELECT Nope__c FROM Contact\n       ^\nERROR at Row:1:Column:8\n"
                "No such column 'Nope__c' on entity 'Contact'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
                "errorCode": "INVALID_FIELD",
            }
        ],
    )
    with pytest.raises(MalformedQuery):
        list(client.query("SELECT Nope__c FROM Contact"))


def test_query_with_the_builder(org):
    client = org.client()
    jobs = [
        {
            "attributes": {
                "type": "bpats__Job__c",
                "url": f"/services/data/v62.0/sobjects/bpats__Job__c/{_id('a0M', i)}",
            },
            "Id": _id("a0M", i),
            "bpats__Status__c": "Open",
        }
        for i in range(3)
    ]
    q = (
        select("Id", "bpats__Status__c")
        .from_("bpats__Job__c")
        .where(field("bpats__Status__c").eq("Open"))
        .order_by("Name")
        .limit(3)
    )
    org.expect(
        "GET",
        "/query",
        body={"totalSize": 3, "done": True, "records": jobs},
        match=[matchers.query_param_matcher({"q": q.render()})],
    )
    result = client.query(q)
    records = list(result)
    assert len(records) == 3 and result.total_size == 3
    assert {r["bpats__Status__c"] for r in records} == {"Open"}


# --------------------------------------------------------------------------- API economy


def test_collections_create_1000_records_takes_5_calls(org):
    client = org.client()
    client.limits() if org.kind == "sandbox" else None  # log in before counting
    tag = uuid.uuid4().hex[:8]
    records = _contacts(1000, tag, bad={3, 777})
    for start in range(0, 1000, 200):
        org.expect(
            "POST",
            "/composite/sobjects",
            body=_save_results("003", start, 200, bad={3, 777}),
            match=[
                matchers.json_params_matcher(
                    {
                        "allOrNone": False,
                        "records": [
                            {"attributes": {"type": "Contact"}, **r}
                            for r in records[start : start + 200]
                        ],
                    }
                )
            ],
        )
    before = org.api_calls()
    outcomes = client.collections_create("Contact", records, all_or_none=False)
    assert org.api_calls() - before == 5
    assert [o.index for o in outcomes] == list(range(1000))
    assert [i for i, o in enumerate(outcomes) if not o.success] == [3, 777]
    assert isinstance(outcomes[777].error, RecordInvalid)
    assert "LastName" in outcomes[777].error.fields
    ids = [o.id for o in outcomes if o.success]
    assert len(set(ids)) == 998 and all(i.startswith("003") for i in ids)


def test_tree_450_records_takes_3_calls(org):
    client = org.client()
    job = _job_id(org, client)
    contact = _contact_id(org, client)
    tag = uuid.uuid4().hex[:8]
    records = [
        {
            "bpats__Contact__c": contact,
            "bpats__Job__c": job,
            "bpats__Email__c": f"{tag}-{i}@example.com",
            "bpats__First_Name__c": "Tree",
            "bpats__Last_Name__c": f"Candidate {i}",
        }
        for i in range(450)
    ]
    for start, size in ((0, 200), (200, 200), (400, 50)):
        org.expect(
            "POST",
            f"/composite/tree/{JBA}",
            status=201,
            body={
                "hasErrors": False,
                "results": [
                    {"referenceId": f"ref{i + 1}", "id": _id("a0J", i)}
                    for i in range(start, start + size)
                ],
            },
        )
    before = org.api_calls()
    outcomes = client.tree(JBA, records)
    assert org.api_calls() - before == 3
    assert all(o.success for o in outcomes) and len(outcomes) == 450
    assert [o.reference_id for o in outcomes] == [f"ref{i + 1}" for i in range(450)]
    assert len({o.id for o in outcomes}) == 450


def test_bulk_create_1000_records_takes_1_call_with_outcomes_mapped(org):
    client = org.client()
    client.limits() if org.kind == "sandbox" else None  # log in before counting
    tag = uuid.uuid4().hex[:8]
    bad = {0, 450, 999}
    records = _contacts(1000, tag, bad=bad)
    org.expect(
        "POST",
        "/composite",
        body={
            "compositeResponse": [
                {
                    "body": _save_results("003", start, 200, bad=bad),
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": f"c{start}",
                }
                for start in range(0, 1000, 200)
            ]
        },
    )
    before = org.api_calls()
    outcomes = client.bulk_create("Contact", records)
    assert org.api_calls() - before == 1
    assert [o.index for o in outcomes] == list(range(1000))
    assert {i for i, o in enumerate(outcomes) if not o.success} == bad
    assert all(isinstance(outcomes[i].error, RecordInvalid) for i in bad)
    assert len({o.id for o in outcomes if o.success}) == 997


def test_query_many_takes_one_call_per_five_queries(org):
    client = org.client()
    client.limits() if org.kind == "sandbox" else None
    queries = [
        select("Id").from_("Contact").where(field("Email").eq(f"nobody-{i}@example.com"))
        for i in range(7)
    ]
    for group in (range(5), range(5, 7)):
        org.expect(
            "POST",
            "/composite",
            body={
                "compositeResponse": [
                    {
                        "body": {"totalSize": 0, "done": True, "records": []},
                        "httpHeaders": {},
                        "httpStatusCode": 200,
                        "referenceId": f"q{i}",
                    }
                    for i in group
                ]
            },
        )
    before = org.api_calls()
    assert client.query_many(queries) == [[]] * 7
    assert org.api_calls() - before == 2


# --------------------------------------------------------------------------- sessions and limits


def _expire_sessions(org, client) -> None:
    """Make the org forget every session, as a real org does after its timeout."""
    if org.kind == "sandbox":
        org.http.post(
            org.handle.url + "/__sandbox__/faults", json={"expire_sessions": True}, timeout=5
        ).raise_for_status()
    else:
        cached = client.auth.cached()
        org.redis.set(
            client.auth.key,
            Token("00Dexpired!token", cached.instance_url, cached.identity_url, 0).dumps(),
        )


def test_token_expiring_mid_run_reauthenticates_once_across_8_threads(org, sf_redis_server):
    first = org.client()
    org.expect(
        "GET",
        "/limits",
        body={"DailyApiRequests": {"Max": 15000, "Remaining": 14990}},
        match=[matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"})],
    )
    first.limits()  # a session exists and is cached
    _expire_sessions(org, first)
    if org.kind == "recorded":
        org.rsps.post(
            TOKEN_URL,
            json={**TOKEN_BODY, "access_token": "00Dfresh!token"},
        )
        org.rsps.add(
            "GET",
            f"{INSTANCE}/services/data/v62.0/limits",
            status=401,
            json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            match=[matchers.header_matcher({"Authorization": "Bearer 00Dexpired!token"})],
        )
        org.rsps.add(
            "GET",
            f"{INSTANCE}/services/data/v62.0/limits",
            json={"DailyApiRequests": {"Max": 15000, "Remaining": 14990}},
            match=[matchers.header_matcher({"Authorization": "Bearer 00Dfresh!token"})],
        )
    clients = []
    for _ in range(8):
        c = org.client()
        c.redis = c.auth.redis = redis.Redis.from_url(sf_redis_server.url)
        clients.append(c)
    barrier = threading.Barrier(8)

    def work(client):
        barrier.wait()
        return [client.limits()["DailyApiRequests"]["Max"] > 0 for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, clients))
    assert results == [[True] * 3] * 8
    assert sum(c.auth.logins for c in clients) == 1


def test_request_limit_exceeded(org):
    client = org.client()
    limit_error = [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    if org.kind == "sandbox":
        client.limits()
        usage = org.http.get(org.handle.url + "/__sandbox__/usage", timeout=5).json()
        org.http.post(
            org.handle.url + "/__sandbox__/usage", json={"used": usage["limit"]}, timeout=5
        )
    org.expect("GET", "/limits", status=403, body=limit_error)
    try:
        with pytest.raises(RequestLimitExceeded) as info:
            client.limits()
    finally:
        if org.kind == "sandbox":
            org.http.post(
                org.handle.url + "/__sandbox__/usage", json={"used": usage["used"]}, timeout=5
            )
    assert info.value.retryable
    assert client.may_spend() is False
    assert client.status()["api_usage"]["exhausted"] is True


def test_budget_follows_the_orgs_counter(org):
    client = org.client()
    org.expect("GET", "/limits", body={"DailyApiRequests": {"Max": 15000, "Remaining": 14982}})
    client.limits()
    snapshot = client.budget().snapshot()
    if org.kind == "sandbox":
        usage = org.http.get(org.handle.url + "/__sandbox__/usage", timeout=5).json()
        assert (snapshot.used, snapshot.limit) == (usage["used"], usage["limit"])
    else:
        assert (snapshot.used, snapshot.limit) == (18, 15000)
    assert snapshot.reserve == snapshot.limit // 10
    assert client.may_spend(snapshot.remaining - snapshot.reserve) is True
    assert client.may_spend(snapshot.remaining - snapshot.reserve + 1) is False


# --------------------------------------------------------------------------- faults and metadata


class _Faults:
    """Switch sandbox faults on for one test (and off again whatever happens)."""

    def __init__(self, org, **faults) -> None:
        self.org, self.faults = org, faults

    def __enter__(self) -> None:
        if self.org.kind == "sandbox":
            url = self.org.handle.url + "/__sandbox__/faults"
            self.org.http.post(url, json={**self.faults, "seed": 1}, timeout=5).raise_for_status()

    def __exit__(self, *exc) -> None:
        if self.org.kind == "sandbox":
            self.org.http.delete(self.org.handle.url + "/__sandbox__/faults", timeout=5)


def test_locked_rows_are_retryable_record_locked(org):
    client = org.client()
    client.limits() if org.kind == "sandbox" else None
    locked = {
        "success": False,
        "errors": [
            {
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record or 1 records: "
                "0035cFAKEIDAQBGAA4",
                "fields": [],
            }
        ],
    }
    org.expect("POST", "/composite/sobjects", body=[locked, locked])
    with _Faults(org, lock_rate=1.0):
        outcomes = client.collections_create(
            "Contact", _contacts(2, uuid.uuid4().hex[:8]), all_or_none=False
        )
    assert [type(o.error) for o in outcomes] == [RecordLocked, RecordLocked]
    assert all(o.retryable for o in outcomes)


def test_a_timeout_is_unavailable(org):
    client = org.client()
    client.limits() if org.kind == "sandbox" else None  # log in before slowing the org down
    if org.kind == "recorded":
        org.rsps.add("GET", f"{INSTANCE}/services/data/v62.0/limits", body=ReadTimeout("slow"))
    else:
        client.settings = dataclasses.replace(client.settings, read_timeout=0.05)
    with _Faults(org, latency_ms=400), pytest.raises(Unavailable) as info:
        client.limits()
    assert info.value.retryable


def test_describe_revalidates_with_if_modified_since(org):
    client = org.client()
    describe = {"name": "Contact", "keyPrefix": "003", "fields": [{"name": "Id"}]}
    org.expect("GET", "/sobjects/Contact/describe", body=describe)
    org.expect(
        "GET",
        "/sobjects/Contact/describe",
        status=304,
        match=[matchers.header_matcher({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})],
    )
    assert client.describe("Contact")["keyPrefix"] == "003"
    assert (
        client.describe("Contact", if_modified_since=dt.datetime(2100, 1, 1, tzinfo=dt.UTC)) is None
    )


def test_create_file_links_it_to_the_record(org):
    client = org.client()
    contact = _contact_id(org, client)
    data = b"%PDF-1.4 resume"
    org.expect(
        "POST",
        "/sobjects/ContentVersion",
        status=201,
        body={"id": "068D00000000pgOIAQ", "errors": [], "success": True},
        match=[
            matchers.json_params_matcher(
                {
                    "Title": "resume.pdf",
                    "PathOnClient": "resume.pdf",
                    "VersionData": base64.b64encode(data).decode(),
                    "FirstPublishLocationId": contact,
                }
            )
        ],
    )
    file_id = client.create_file(
        "resume.pdf", "resume.pdf", data, first_publish_location_id=contact
    )
    assert file_id.startswith("068") and len(file_id) == 18


# --------------------------------------------------------------------------- paging and changes


def _contact_record(rid: str, name: str) -> dict:
    return {
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{rid}"},
        "Id": rid,
        "LastName": name,
    }


def test_query_pages_lazily_through_next_records_url(org):
    client = org.client()
    tag = uuid.uuid4().hex[:10]
    org.expect(
        "POST",
        "/composite",
        body={
            "compositeResponse": [
                {
                    "body": _save_results("003", start, min(200, 250 - start)),
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": f"c{start}",
                }
                for start in (0, 200)
            ]
        },
    )
    created = client.bulk_create(
        "Contact", [{"LastName": f"{tag}-{i:03d}", "Email": f"{tag}@x.io"} for i in range(250)]
    )
    assert all(o.success for o in created)
    q = (
        select("Id", "LastName")
        .from_("Contact")
        .where(field("LastName").startswith(tag))
        .order_by("LastName")
    )
    ids = [o.id for o in created]
    org.expect(
        "GET",
        "/query",
        body={
            "totalSize": 250,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-200",
            "records": [_contact_record(ids[i], f"{tag}-{i:03d}") for i in range(200)],
        },
        match=[
            matchers.query_param_matcher({"q": q.render()}),
            matchers.header_matcher({"Sforce-Query-Options": "batchSize=200"}),
        ],
    )
    org.expect(
        "GET",
        "/query/01gD0000002HU6KIAW-200",
        body={
            "totalSize": 250,
            "done": True,
            "records": [_contact_record(ids[i], f"{tag}-{i:03d}") for i in range(200, 250)],
        },
    )
    before = org.api_calls()
    result = client.query(q, batch_size=200)
    first = next(iter(result.pages()))
    assert org.api_calls() - before == 1
    assert (first.total_size, first.done, len(first.records)) == (250, False, 200)
    assert first.next_records_url.startswith("/services/data/v62.0/query/")
    names = [r["LastName"] for r in client.query(q, batch_size=200)]
    assert names == [f"{tag}-{i:03d}" for i in range(250)]


def test_update_delete_and_query_all(org):
    client = org.client("admin")
    client.grants = Grants.everything()
    tag = uuid.uuid4().hex[:10]
    org.expect(
        "POST",
        "/composite/sobjects",
        body=_save_results("001", 0, 3),
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": True,
                    "records": [
                        {"attributes": {"type": "Account"}, "Name": f"{tag} {i}"} for i in range(3)
                    ],
                }
            )
        ],
    )
    ids = [
        o.id
        for o in client.collections_create(
            "Account", [{"Name": f"{tag} {i}"} for i in range(3)], all_or_none=True
        )
    ]
    org.expect(
        "PATCH",
        f"/sobjects/Account/{ids[0]}",
        status=204,
        match=[matchers.json_params_matcher({"Name": f"{tag} renamed"})],
    )
    client.update("Account", ids[0], {"Name": f"{tag} renamed"})
    org.expect(
        "PATCH",
        "/composite/sobjects",
        body=[{"id": ids[1], "success": True, "errors": []}],
    )
    (updated,) = client.collections_update(
        "Account", [{"Id": ids[1], "Name": f"{tag} bulk"}], all_or_none=False
    )
    assert updated.success and updated.id == ids[1]
    org.expect("DELETE", f"/sobjects/Account/{ids[2]}", status=204)
    client.delete("Account", ids[2])
    org.expect(
        "DELETE",
        "/composite/sobjects",
        body=[{"id": ids[1], "success": True, "errors": []}],
        match=[matchers.query_param_matcher({"ids": ids[1], "allOrNone": "false"})],
    )
    (deleted,) = client.collections_delete("Account", [ids[1]], all_or_none=False)
    assert deleted.success
    q = select("Id", "Name", "IsDeleted").from_("Account").where(field("Name").startswith(tag))
    rows = [
        {"attributes": {"type": "Account"}, "Id": rid, "Name": name, "IsDeleted": deleted}
        for rid, name, deleted in (
            (ids[0], f"{tag} renamed", False),
            (ids[1], f"{tag} bulk", True),
            (ids[2], f"{tag} 2", True),
        )
    ]
    org.expect("GET", "/query", body={"totalSize": 1, "done": True, "records": rows[:1]})
    org.expect("GET", "/queryAll", body={"totalSize": 3, "done": True, "records": rows})
    live = {r["Name"] for r in client.query(q)}
    everything = {r["Name"]: r["IsDeleted"] for r in client.query_all(q)}
    assert live == {f"{tag} renamed"}
    assert everything == {f"{tag} renamed": False, f"{tag} bulk": True, f"{tag} 2": True}
    org.expect(
        "GET",
        f"/sobjects/Account/{ids[2]}",
        status=404,
        body=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
    )
    with pytest.raises(NotFound):
        client.get("Account", ids[2])


# --------------------------------------------------------------------------- composite and graph


def test_composite_references_and_per_item_errors(org):
    client = org.client()
    job = _job_id(org, client)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    org.expect(
        "POST",
        "/composite",
        body={
            "compositeResponse": [
                {
                    "body": {"id": "003R00000025R22IAE", "success": True, "errors": []},
                    "httpHeaders": {
                        "Location": "/services/data/v62.0/sobjects/Contact/003R00000025R22IAE"
                    },
                    "httpStatusCode": 201,
                    "referenceId": "contact",
                },
                {
                    "body": {"id": "a0JR00000025R22IAE", "success": True, "errors": []},
                    "httpHeaders": {},
                    "httpStatusCode": 201,
                    "referenceId": "application",
                },
                {
                    "body": [{**REQUIRED_LASTNAME, "errorCode": "REQUIRED_FIELD_MISSING"}],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "bad",
                },
            ]
        },
    )
    before = org.api_calls()
    contact, application, bad = client.composite(
        [
            Subrequest("POST", "/sobjects/Contact", "contact", {"LastName": "C", "Email": email}),
            Subrequest(
                "POST",
                f"/sobjects/{JBA}",
                "application",
                {
                    "bpats__Contact__c": "@{contact.id}",
                    "bpats__Job__c": job,
                    "bpats__Email__c": email,
                    "bpats__First_Name__c": "Comp",
                    "bpats__Last_Name__c": "Osite",
                },
            ),
            Subrequest("POST", "/sobjects/Contact", "bad", {"Email": email}),
        ]
    )
    assert org.api_calls() - before == 1
    assert contact.ok and contact.status == 201 and contact.body["id"].startswith("003")
    assert application.ok and application.body["id"].startswith("a0J")
    assert not bad.ok and bad.status == 400 and isinstance(bad.error, RecordInvalid)


def test_graphs_are_atomic_and_reported_one_by_one(org):
    client = org.client("admin")
    client.grants = Grants.everything()
    tag = uuid.uuid4().hex[:8]

    def graph(gid: str, last_name: str | None) -> Graph:
        contact = {"Email": f"{tag}-{gid}@example.com"}
        if last_name:
            contact["LastName"] = last_name
        return Graph(
            gid,
            (
                Subrequest("POST", "/sobjects/Account", "acct", {"Name": f"{tag} {gid}"}),
                Subrequest(
                    "POST", "/sobjects/Contact", "person", {**contact, "AccountId": "@{acct.id}"}
                ),
            ),
        )

    def node(ref: str, rid: str) -> dict:
        return {
            "body": {"id": rid, "success": True, "errors": []},
            "httpHeaders": {},
            "httpStatusCode": 201,
            "referenceId": ref,
        }

    halted = {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": "acct",
    }
    failed = {
        "body": [{**REQUIRED_LASTNAME, "errorCode": "REQUIRED_FIELD_MISSING"}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": "person",
    }
    org.expect(
        "POST",
        "/composite/graph",
        body={
            "graphs": [
                {
                    "graphId": "g1",
                    "graphResponse": {
                        "compositeResponse": [
                            node("acct", "001R00000064wdtIAA"),
                            node("person", "003R00000025R22IAE"),
                        ]
                    },
                    "isSuccessful": True,
                },
                {
                    "graphId": "g2",
                    "graphResponse": {"compositeResponse": [halted, failed]},
                    "isSuccessful": False,
                },
            ]
        },
    )
    before = org.api_calls()
    ok, broken = client.graph([graph("g1", "Graph"), graph("g2", None)])
    assert org.api_calls() - before == 1
    assert ok.successful and ok.error is None
    assert [r.body["id"][:3] for r in ok.responses] == ["001", "003"]
    assert not broken.successful
    assert isinstance(broken.error, RecordInvalid) and "LastName" in broken.error.fields


@pytest.mark.parametrize("flow", ["client_credentials", "refresh_token"])
def test_other_auth_flows_reach_the_api(org, flow):
    client = org.client(flow=flow)
    org.expect("GET", "/limits", body={"DailyApiRequests": {"Max": 15000, "Remaining": 14990}})
    assert client.limits()["DailyApiRequests"]["Max"] > 0
    assert client.auth.logins == 1
    assert client.status()["authenticated"] is True
