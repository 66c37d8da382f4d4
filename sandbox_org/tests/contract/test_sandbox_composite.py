"""Composite family (wire-shapes §6): tree, collections, composite, graph, batch."""

from __future__ import annotations

import pytest

from .conftest import VERSION, error_of

V = f"/services/data/v{VERSION}"


@pytest.fixture(scope="module")
def job(admin) -> str:
    return admin.create("bpats__Job__c", {"Name": "Composite job", "bpats__Status__c": "Open"})


def _contact_tree(n: int, bad_at: int | None = None) -> dict:
    records = []
    for i in range(n):
        email = "not an email" if i == bad_at else f"tree{i}@example.com"
        records.append(
            {
                "attributes": {"type": "Contact", "referenceId": f"c{i}"},
                "LastName": f"Tree {i}",
                "Email": email,
            }
        )
    return {"records": records}


def test_tree_with_children_success(admin):
    body = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "ref1"},
                "Name": "Tree Account",
                "Contacts": {
                    "records": [
                        {
                            "attributes": {"type": "Contact", "referenceId": "ref2"},
                            "LastName": "Smith",
                        },
                        {
                            "attributes": {"type": "Contact", "referenceId": "ref3"},
                            "LastName": "Evans",
                        },
                    ]
                },
            },
            {"attributes": {"type": "Account", "referenceId": "ref4"}, "Name": "Second"},
        ]
    }
    r = admin.post("/composite/tree/Account", json=body)
    assert r.status_code == 201
    out = r.json()
    assert out["hasErrors"] is False
    assert [x["referenceId"] for x in out["results"]] == ["ref1", "ref4", "ref2", "ref3"]
    ids = {x["referenceId"]: x["id"] for x in out["results"]}
    child = admin.get(f"/sobjects/Contact/{ids['ref2']}?fields=AccountId").json()
    assert child["AccountId"] == ids["ref1"]


def test_tree_is_all_or_nothing(admin):
    before = admin.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Tree %'").json()[
        "totalSize"
    ]
    r = admin.post("/composite/tree/Contact", json=_contact_tree(3, bad_at=1))
    assert r.status_code == 400
    assert r.json() == {
        "hasErrors": True,
        "results": [
            {
                "referenceId": "c1",
                "errors": [
                    {
                        "statusCode": "INVALID_EMAIL_ADDRESS",
                        "message": "Email: invalid email address: not an email",
                        "fields": ["Email"],
                    }
                ],
            }
        ],
    }
    after = admin.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Tree %'").json()[
        "totalSize"
    ]
    assert after == before


def test_tree_limits(admin):
    r = admin.post("/composite/tree/Contact", json=_contact_tree(201))
    assert r.status_code == 400
    assert error_of(r)["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert admin.post("/composite/tree/Contact", json=_contact_tree(200)).status_code == 201


def test_collections_partial_failure_without_all_or_none(admin):
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Coll ok"},
            {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
            {"attributes": {"type": "Account"}, "Name": "Coll account"},
        ],
    }
    r = admin.post("/composite/sobjects", json=body)
    assert r.status_code == 200
    res = r.json()
    assert res[0]["success"] is True and res[0]["id"].startswith("003") and res[0]["errors"] == []
    assert res[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    assert res[2]["id"].startswith("001")
    assert admin.get(f"/sobjects/Contact/{res[0]['id']}").status_code == 200


def test_collections_all_or_none_rolls_back(admin):
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Rolled back"},
            {"attributes": {"type": "Contact"}, "FirstName": "no last name"},
        ],
    }
    res = admin.post("/composite/sobjects", json=body).json()
    assert res[0]["success"] is False
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert res[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert admin.get(f"/sobjects/Contact/{res[0]['id']}").status_code == 404


def test_collections_update_retrieve_delete(admin):
    a = admin.create("Contact", {"LastName": "U1"})
    b = admin.create("Contact", {"LastName": "U2"})
    upd = admin.patch(
        "/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Contact"}, "id": a, "Title": "T1"},
                {"attributes": {"type": "Contact"}, "id": b, "Email": "bad"},
            ],
        },
    ).json()
    assert upd[0] == {"id": a, "success": True, "errors": []}
    assert (
        upd[1]["success"] is False and upd[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    )
    got = admin.get(
        "/composite/sobjects/Contact", params={"ids": f"{a},{b}", "fields": "Id,Title"}
    ).json()
    assert [g["Title"] for g in got] == ["T1", None]
    deleted = admin.delete(
        "/composite/sobjects", params={"ids": f"{a},001RM000003oLrB000", "allOrNone": "false"}
    ).json()
    assert deleted[0] == {"id": a, "success": True, "errors": []}
    assert deleted[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "MALFORMED_ID",
                "message": "malformed id 001RM000003oLrB000",
                "fields": [],
            }
        ],
    }


def test_collections_upsert(admin):
    body = {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Contact"},
                "Email": "coll-upsert@example.com",
                "LastName": "Up",
            },
        ],
    }
    first = admin.patch("/composite/sobjects/Contact/Email", json=body).json()
    assert first[0]["created"] is True
    second = admin.patch("/composite/sobjects/Contact/Email", json=body).json()
    assert second == [{"id": first[0]["id"], "success": True, "errors": [], "created": False}]


def test_collections_limit(admin):
    records = [{"attributes": {"type": "Contact"}, "LastName": f"x{i}"} for i in range(201)]
    r = admin.post("/composite/sobjects", json={"records": records})
    assert r.status_code == 400
    assert error_of(r) == {
        "message": "record limit reached. cannot submit more than 200 records into this call",
        "errorCode": "EXCEEDED_ID_LIMIT",
    }


def test_composite_references_and_results(admin, job):
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "newContact",
                "body": {"LastName": "Composite", "Email": "composite@example.com"},
            },
            {
                "method": "GET",
                "url": f"{V}/query/?q=SELECT Id FROM Contact WHERE Id = '@{{newContact.id}}'",
                "referenceId": "found",
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/bpats__Job_Board_Application__c",
                "referenceId": "app",
                "body": {
                    "bpats__Contact__c": "@{found.records[0].Id}",
                    "bpats__Job__c": job,
                    "bpats__Email__c": "composite@example.com",
                    "bpats__First_Name__c": "C",
                    "bpats__Last_Name__c": "Composite",
                },
            },
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Contact/@{{newContact.id}}",
                "referenceId": "upd",
                "body": {"Email": "Not a real email address"},
            },
        ],
    }
    r = admin.post("/composite", json=body)
    assert r.status_code == 200
    out = r.json()["compositeResponse"]
    assert [o["httpStatusCode"] for o in out] == [201, 200, 201, 400]
    assert out[0]["body"]["success"] is True
    assert out[0]["httpHeaders"]["Location"] == f"{V}/sobjects/Contact/{out[0]['body']['id']}"
    assert out[1]["body"]["records"][0]["Id"] == out[0]["body"]["id"]
    assert out[3]["body"] == [
        {
            "message": "Email: invalid email address: Not a real email address",
            "errorCode": "INVALID_EMAIL_ADDRESS",
            "fields": ["Email"],
        }
    ]
    assert out[3]["referenceId"] == "upd"


def test_composite_all_or_none_halts_and_rolls_back(admin):
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Halted"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "bad",
                "body": {"FirstName": "x"},
            },
            {"method": "GET", "url": f"{V}/limits", "referenceId": "after"},
        ],
    }
    out = admin.post("/composite", json=body).json()["compositeResponse"]
    halted = {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the "
                "same transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": "acct",
    }
    assert out[0] == halted
    assert out[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert (
        out[2]["referenceId"] == "after" and out[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    )
    assert admin.query("SELECT COUNT() FROM Account WHERE Name = 'Halted'").json()["totalSize"] == 0


def test_composite_bad_reference(admin):
    body = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/sobjects/Contact/@{{missing.id}}", "referenceId": "r1"},
        ]
    }
    out = admin.post("/composite", json=body).json()["compositeResponse"]
    assert out[0]["httpStatusCode"] == 400
    assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_composite_limits(admin):
    many = [{"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(26)]
    assert admin.post("/composite", json={"compositeRequest": many}).status_code == 400
    queries = [
        {
            "method": "GET",
            "url": f"{V}/query?q=SELECT Id FROM Account LIMIT 1",
            "referenceId": f"q{i}",
        }
        for i in range(6)
    ]
    r = admin.post("/composite", json={"compositeRequest": queries})
    assert r.status_code == 400
    assert admin.post("/composite", json={"compositeRequest": queries[:5]}).status_code == 200


def test_graph(admin):
    body = {
        "graphs": [
            {
                "graphId": "g1",
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{V}/sobjects/Account",
                        "referenceId": "a",
                        "body": {"Name": "Graph A"},
                    },
                    {
                        "method": "POST",
                        "url": f"{V}/sobjects/Contact",
                        "referenceId": "c",
                        "body": {"LastName": "Graph", "AccountId": "@{a.id}"},
                    },
                ],
            },
            {
                "graphId": "g2",
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{V}/sobjects/Account",
                        "referenceId": "a",
                        "body": {"Name": "Graph B"},
                    },
                    {
                        "method": "POST",
                        "url": f"{V}/sobjects/Contact",
                        "referenceId": "c",
                        "body": {},
                    },
                ],
            },
        ]
    }
    r = admin.post("/composite/graph", json=body)
    assert r.status_code == 200
    graphs = r.json()["graphs"]
    assert [g["isSuccessful"] for g in graphs] == [True, False]
    assert graphs[0]["graphResponse"]["compositeResponse"][1]["httpStatusCode"] == 201
    assert (
        admin.query("SELECT COUNT() FROM Account WHERE Name = 'Graph B'").json()["totalSize"] == 0
    )
    assert (
        admin.query("SELECT COUNT() FROM Account WHERE Name = 'Graph A'").json()["totalSize"] == 1
    )
    nodes = [{"method": "GET", "url": f"{V}/limits", "referenceId": f"n{i}"} for i in range(501)]
    assert (
        admin.post(
            "/composite/graph", json={"graphs": [{"graphId": "big", "compositeRequest": nodes}]}
        ).status_code
        == 400
    )


def test_batch(admin):
    rid = admin.create("Account", {"Name": "Batch"})
    body = {
        "batchRequests": [
            {
                "method": "PATCH",
                "url": f"v{VERSION}/sobjects/Account/{rid}",
                "richInput": {"Name": "Batch 2"},
            },
            {"method": "GET", "url": f"v{VERSION}/sobjects/Account/{rid}?fields=Name"},
        ]
    }
    out = admin.post("/composite/batch", json=body).json()
    assert out["hasErrors"] is False
    assert out["results"][0] == {"statusCode": 204, "result": None}
    assert out["results"][1]["result"]["Name"] == "Batch 2"


def test_composite_resource_list(admin):
    assert admin.get("/composite").json()["tree"] == f"{V}/composite/tree"


def test_describe_inside_composite(admin):
    body = {
        "compositeRequest": [
            {"method": "GET", "url": f"{V}/sobjects/Contact/describe", "referenceId": "d"},
        ]
    }
    out = admin.post("/composite", json=body).json()["compositeResponse"][0]
    assert out["httpStatusCode"] == 200
    assert out["body"]["name"] == "Contact"
    assert "Last-Modified" in out["httpHeaders"]


def test_outer_all_or_none_overrides_a_collections_subrequest(admin):
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Outer override"},
            },
            {
                "method": "POST",
                "url": f"{V}/composite/sobjects",
                "referenceId": "coll",
                "body": {
                    "allOrNone": False,
                    "records": [
                        {"attributes": {"type": "Contact"}, "LastName": "Outer ok"},
                        {"attributes": {"type": "Contact"}, "FirstName": "missing last"},
                    ],
                },
            },
        ],
    }
    out = admin.post("/composite", json=body).json()["compositeResponse"]
    assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert (
        admin.query("SELECT COUNT() FROM Account WHERE Name = 'Outer override'").json()["totalSize"]
        == 0
    )
    assert (
        admin.query("SELECT COUNT() FROM Contact WHERE LastName = 'Outer ok'").json()["totalSize"]
        == 0
    )
