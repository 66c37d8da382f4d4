"""Batch operations against literal wire shapes: collections, tree, bulk_create, composite,
graph and files. Call counts are the requests ``responses`` saw (the token request excluded)."""

from __future__ import annotations

import base64
import json

import pytest
from responses import matchers
from sf_fakes import BASE, LIMIT_HEADERS

from ats_gateway.salesforce import (
    Grants,
    Graph,
    RecordInvalid,
    RecordLocked,
    RolledBack,
    Subrequest,
    Unavailable,
)

JBA = "bpats__Job_Board_Application__c"
JOB_ID = "a0MEm000004fFnBMAU"


def _json(rsps, method, url, body, status=200, match=()):
    return rsps.add(
        method,
        url,
        body=json.dumps(body),
        status=status,
        content_type="application/json;charset=UTF-8",
        headers=LIMIT_HEADERS,
        match=list(match),
    )


def _application(i: int) -> dict:
    return {
        "bpats__Contact__c": "003Em00000cqRQ3IAM",
        "bpats__Job__c": JOB_ID,
        "bpats__Email__c": f"c{i}@example.com",
        "bpats__First_Name__c": "candidate",
        "bpats__Last_Name__c": f"new {i}",
    }


def _rid(i: int) -> str:
    return f"a0J{i:012d}AAA"


def _save(i: int) -> dict:
    return {"id": _rid(i), "success": True, "errors": []}


INVALID_EMAIL = {
    "success": False,
    "errors": [
        {
            "statusCode": "INVALID_EMAIL_ADDRESS",
            "message": "Email: invalid email address: 123",
            "fields": ["bpats__Email__c"],
        }
    ],
}
LOCKED = {
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


def _typed(records: list[dict], sobject: str = JBA) -> list[dict]:
    return [{"attributes": {"type": sobject}, **r} for r in records]


# --------------------------------------------------------------------------- collections


def test_collections_create_1000_records_is_5_calls_with_outcomes_in_order(sf, rsps):
    records = [_application(i) for i in range(1000)]
    for start in range(0, 1000, 200):
        results = [_save(i) for i in range(start, start + 200)]
        if start == 200:
            results[7] = INVALID_EMAIL  # record 207
            results[8] = LOCKED  # record 208
        _json(
            rsps,
            "POST",
            f"{BASE}/composite/sobjects",
            results,
            match=[
                matchers.json_params_matcher(
                    {"allOrNone": False, "records": _typed(records[start : start + 200])}
                )
            ],
        )
    outcomes = sf.collections_create(JBA, records, all_or_none=False)
    assert sf.api_calls == 5
    assert [o.index for o in outcomes] == list(range(1000))
    assert outcomes[0].id == _rid(0) and outcomes[999].id == _rid(999)
    assert sum(o.success for o in outcomes) == 998
    assert isinstance(outcomes[207].error, RecordInvalid) and not outcomes[207].retryable
    assert outcomes[207].error.fields == ("bpats__Email__c",)
    assert isinstance(outcomes[208].error, RecordLocked) and outcomes[208].retryable


def test_all_or_none_is_chosen_per_call_and_rollbacks_are_retryable(sf, rsps):
    records = [_application(i) for i in range(3)]
    rolled = {
        "id": _rid(0),
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    _json(
        rsps,
        "POST",
        f"{BASE}/composite/sobjects",
        [rolled, INVALID_EMAIL, {**rolled, "id": _rid(2)}],
        match=[matchers.json_params_matcher({"allOrNone": True, "records": _typed(records)})],
    )
    outcomes = sf.collections_create(JBA, records, all_or_none=True)
    assert [type(o.error) for o in outcomes] == [RolledBack, RecordInvalid, RolledBack]
    assert [o.retryable for o in outcomes] == [True, False, True]


def test_all_or_none_has_no_default(sf_redis):
    from sf_fakes import settings

    from ats_gateway.salesforce import SalesforceClient

    client = SalesforceClient(settings(), sf_redis)
    with pytest.raises(TypeError):
        client.collections_create(JBA, [_application(0)])  # type: ignore[call-arg]


def test_a_failed_chunk_does_not_hide_the_others(sf, rsps):
    records = [_application(i) for i in range(250)]
    _json(rsps, "POST", f"{BASE}/composite/sobjects", [_save(i) for i in range(200)])
    _json(
        rsps,
        "POST",
        f"{BASE}/composite/sobjects",
        [{"message": "An unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}],
        status=500,
    )
    outcomes = sf.collections_create(JBA, records, all_or_none=False)
    assert all(o.success for o in outcomes[:200])
    assert all(isinstance(o.error, Unavailable) for o in outcomes[200:])
    assert len(outcomes) == 250


def test_collections_update_upsert_delete(sf, rsps):
    sf.grants = Grants.everything()
    updates = [{"Id": _rid(i), "bpats__Status__c": "In Review"} for i in range(2)]
    _json(
        rsps,
        "PATCH",
        f"{BASE}/composite/sobjects",
        [_save(0), _save(1)],
        match=[matchers.json_params_matcher({"allOrNone": False, "records": _typed(updates)})],
    )
    upserts = [{"Ext__c": "x1", "Name": "A"}, {"Ext__c": "x2", "Name": "B"}]
    _json(
        rsps,
        "PATCH",
        f"{BASE}/composite/sobjects/Account/Ext__c",
        [
            {"id": "001xx0000004GxDAAU", "success": True, "errors": [], "created": True},
            {"id": "001xx0000004GxEAAU", "success": True, "errors": [], "created": False},
        ],
        match=[
            matchers.json_params_matcher({"allOrNone": True, "records": _typed(upserts, "Account")})
        ],
    )
    _json(
        rsps,
        "DELETE",
        f"{BASE}/composite/sobjects",
        [
            {"id": "001RM000003oLrfYAE", "success": True, "errors": []},
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "MALFORMED_ID",
                        "message": "malformed id 001RM000003oLrB000",
                        "fields": [],
                    }
                ],
            },
        ],
        match=[
            matchers.query_param_matcher(
                {"ids": "001RM000003oLrfYAE,001RM000003oLrB000", "allOrNone": "false"}
            )
        ],
    )
    assert [o.success for o in sf.collections_update(JBA, updates, all_or_none=False)] == [
        True,
        True,
    ]
    upserted = sf.collections_upsert("Account", "Ext__c", upserts, all_or_none=True)
    assert [o.created for o in upserted] == [True, False]
    deleted = sf.collections_delete(
        "Account", ["001RM000003oLrfYAE", "001RM000003oLrB000"], all_or_none=False
    )
    assert deleted[0].success and isinstance(deleted[1].error, RecordInvalid)


# --------------------------------------------------------------------------- tree


def test_tree_450_records_is_3_calls_mapped_back(sf, rsps):
    records = [_application(i) for i in range(450)]
    for start, size in ((0, 200), (200, 200), (400, 50)):
        body_records = [
            {"attributes": {"type": JBA, "referenceId": f"ref{i + 1}"}, **records[i]}
            for i in range(start, start + size)
        ]
        _json(
            rsps,
            "POST",
            f"{BASE}/composite/tree/{JBA}",
            {
                "hasErrors": False,
                "results": [
                    {"referenceId": f"ref{i + 1}", "id": _rid(i)}
                    for i in range(start, start + size)
                ],
            },
            status=201,
            match=[matchers.json_params_matcher({"records": body_records})],
        )
    outcomes = sf.tree(JBA, records)
    assert sf.api_calls == 3
    assert [o.id for o in outcomes] == [_rid(i) for i in range(450)]
    assert all(o.success for o in outcomes)


def test_tree_failure_names_the_culprit_and_rolls_back_the_rest(sf, rsps):
    sf.grants = Grants.everything()
    records = [
        {
            "attributes": {"type": "Account", "referenceId": "ref1"},
            "name": "SampleAccount",
            "Contacts": {
                "records": [
                    {
                        "attributes": {"type": "Contact", "referenceId": "ref2"},
                        "lastname": "Smith",
                        "email": "123",
                    }
                ]
            },
        },
        {"attributes": {"type": "Account", "referenceId": "ref3"}, "name": "Other"},
    ]
    _json(
        rsps,
        "POST",
        f"{BASE}/composite/tree/Account",
        {
            "hasErrors": True,
            "results": [
                {
                    "referenceId": "ref2",
                    "errors": [
                        {
                            "statusCode": "INVALID_EMAIL_ADDRESS",
                            "message": "Email: invalid email address: 123",
                            "fields": ["Email"],
                        }
                    ],
                }
            ],
        },
        status=400,
        match=[matchers.json_params_matcher({"records": records})],
    )
    first, second = sf.tree("Account", records)
    assert isinstance(first.error, RecordInvalid) and first.error.fields == ("Email",)
    assert isinstance(second.error, RolledBack) and second.retryable


def test_tree_maps_children_ids(sf, rsps):
    sf.grants = Grants.everything()
    records = [
        {
            "Name": "Acme",
            "Contacts": {"records": [{"attributes": {"type": "Contact"}, "LastName": "Smith"}]},
        }
    ]
    _json(
        rsps,
        "POST",
        f"{BASE}/composite/tree/Account",
        {
            "hasErrors": False,
            "results": [
                {"referenceId": "ref1", "id": "001D000000K0fXOIAZ"},
                {"referenceId": "ref2", "id": "003D000000QV9n2IAD"},
            ],
        },
        status=201,
    )
    (outcome,) = sf.tree("Account", records)
    assert outcome.id == "001D000000K0fXOIAZ"
    assert outcome.related == {"ref2": "003D000000QV9n2IAD"}


# --------------------------------------------------------------------------- bulk_create


def _collection_sub(ref: str, records: list[dict], all_or_none: bool = False) -> dict:
    return {
        "method": "POST",
        "url": "/services/data/v62.0/composite/sobjects",
        "referenceId": ref,
        "body": {"allOrNone": all_or_none, "records": _typed(records)},
    }


def test_bulk_create_1000_records_is_one_call_with_each_outcome_mapped(sf, rsps):
    records = [_application(i) for i in range(1000)]
    responses_ = []
    for start in range(0, 1000, 200):
        results = [_save(i) for i in range(start, start + 200)]
        if start == 600:
            results[5] = INVALID_EMAIL  # record 605
        responses_.append(
            {"body": results, "httpHeaders": {}, "httpStatusCode": 200, "referenceId": f"c{start}"}
        )
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {"compositeResponse": responses_},
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        _collection_sub(f"c{s}", records[s : s + 200]) for s in range(0, 1000, 200)
                    ],
                }
            )
        ],
    )
    outcomes = sf.bulk_create(JBA, records)
    assert sf.api_calls == 1
    assert [o.index for o in outcomes] == list(range(1000))
    assert [o.id for o in outcomes if o.success] == [_rid(i) for i in range(1000) if i != 605]
    assert isinstance(outcomes[605].error, RecordInvalid)


def test_bulk_create_judges_each_subresponse(sf, rsps):
    records = [_application(i) for i in range(1201)]
    first = [
        {
            "body": [_save(i) for i in range(s, s + 200)],
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": f"c{s}",
        }
        for s in range(0, 1000, 200)
    ]
    first[2] = {  # the whole third collection refused: 400 error array in a 200 composite
        "body": [{"errorCode": "INVALID_FIELD", "message": "No such column 'X' on sobject"}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": "c400",
    }
    _json(rsps, "POST", f"{BASE}/composite", {"compositeResponse": first})
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {
            "compositeResponse": [
                {
                    "body": [_save(i) for i in range(1000, 1200)],
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": "c1000",
                },
                {
                    "body": [_save(1200)],
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": "c1200",
                },
            ]
        },
    )
    outcomes = sf.bulk_create(JBA, records)
    assert sf.api_calls == 2
    assert len(outcomes) == 1201
    assert all(isinstance(o.error, RecordInvalid) for o in outcomes[400:600])
    assert all(o.success for o in outcomes[:400] + outcomes[600:])


# --------------------------------------------------------------------------- composite / graph


def test_composite_never_trusts_its_200(sf, rsps):
    sf.grants = Grants.everything()
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {
            "compositeResponse": [
                {
                    "body": {"id": "001R00000064wdtIAA", "success": True, "errors": []},
                    "httpHeaders": {
                        "Location": "/services/data/v55.0/sobjects/Account/001R00000064wdtIAA"
                    },
                    "httpStatusCode": 201,
                    "referenceId": "refAccount",
                },
                {
                    "body": [
                        {
                            "message": "Email: invalid email address: Not a real email address",
                            "errorCode": "INVALID_EMAIL_ADDRESS",
                            "fields": ["Email"],
                        }
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "badContact",
                },
            ]
        },
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "POST",
                            "url": "/services/data/v62.0/sobjects/Account",
                            "referenceId": "refAccount",
                            "body": {"Name": "Acme"},
                        },
                        {
                            "method": "POST",
                            "url": "/services/data/v62.0/sobjects/Contact",
                            "referenceId": "badContact",
                            "body": {
                                "LastName": "Smith",
                                "Email": "Not a real email address",
                                "AccountId": "@{refAccount.id}",
                            },
                        },
                    ],
                }
            )
        ],
    )
    account, contact = sf.composite(
        [
            Subrequest("POST", "/sobjects/Account", "refAccount", {"Name": "Acme"}),
            Subrequest(
                "POST",
                "/sobjects/Contact",
                "badContact",
                {
                    "LastName": "Smith",
                    "Email": "Not a real email address",
                    "AccountId": "@{refAccount.id}",
                },
            ),
        ]
    )
    assert account.ok and account.status == 201 and account.body["id"] == "001R00000064wdtIAA"
    assert not contact.ok and isinstance(contact.error, RecordInvalid)


def test_composite_limits_are_enforced_before_sending(sf_redis):
    from sf_fakes import settings

    from ats_gateway.salesforce import SalesforceClient

    client = SalesforceClient(settings(), sf_redis)
    client.grants = Grants.everything()
    with pytest.raises(ValueError, match="25"):
        client.composite([Subrequest("GET", "/sobjects/Contact", f"r{i}") for i in range(26)])
    six = [Subrequest("GET", "/query?q=SELECT+Id+FROM+Contact", f"q{i}") for i in range(6)]
    with pytest.raises(ValueError, match="5"):
        client.composite(six)


def _graph_answer(graph_id: str, ok: bool, nodes: int) -> dict:
    items = [
        {
            "body": {"id": f"001D0000{i:07d}AAA", "success": True, "errors": []},
            "httpHeaders": {},
            "httpStatusCode": 201,
            "referenceId": f"n{i}",
        }
        for i in range(nodes)
    ]
    if not ok:
        items[-1] = {
            "body": [
                {
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [Name]",
                    "fields": ["Name"],
                }
            ],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": f"n{nodes - 1}",
        }
    return {"graphId": graph_id, "graphResponse": {"compositeResponse": items}, "isSuccessful": ok}


def test_graph_chunks_by_500_nodes_and_reports_each_graph(sf, rsps):
    sf.grants = Grants.everything()
    graphs = [
        Graph(
            f"g{g}",
            tuple(
                Subrequest("POST", "/sobjects/Account", f"n{i}", {"Name": "x"}) for i in range(200)
            ),
        )
        for g in range(3)
    ]
    _json(
        rsps,
        "POST",
        f"{BASE}/composite/graph",
        {"graphs": [_graph_answer("g0", True, 200), _graph_answer("g1", False, 200)]},
    )
    _json(rsps, "POST", f"{BASE}/composite/graph", {"graphs": [_graph_answer("g2", True, 200)]})
    results = sf.graph(graphs)
    assert sf.api_calls == 2
    assert [r.successful for r in results] == [True, False, True]
    assert isinstance(results[1].error, RecordInvalid) and results[1].error.fields == ("Name",)
    assert len(results[0].responses) == 200


# --------------------------------------------------------------------------- files


def test_create_file_uploads_base64_linked_to_the_record(sf, rsps):
    data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    _json(
        rsps,
        "POST",
        f"{BASE}/sobjects/ContentVersion",
        {"id": "068D00000000pgOIAQ", "errors": [], "success": True},
        status=201,
        match=[
            matchers.json_params_matcher(
                {
                    "Title": "resume.pdf",
                    "PathOnClient": "resume.pdf",
                    "VersionData": base64.b64encode(data).decode(),
                    "FirstPublishLocationId": "a0JEc000006Chx2IAC",
                }
            )
        ],
    )
    assert (
        sf.create_file(
            "resume.pdf", "resume.pdf", data, first_publish_location_id="a0JEc000006Chx2IAC"
        )
        == "068D00000000pgOIAQ"
    )


def test_tree_reference_ids_must_be_unique(sf_redis):
    from sf_fakes import settings

    from ats_gateway.salesforce import SalesforceClient

    client = SalesforceClient(settings(), sf_redis)
    records = [{"attributes": {"referenceId": "ref1"}}, {"attributes": {"referenceId": "ref1"}}]
    with pytest.raises(ValueError, match="unique"):
        client.tree(JBA, records)


def test_bulk_update_packs_collections_into_one_composite(sf, rsps):
    sf.grants = Grants.everything()
    updates = [{"Id": _rid(i), "bpats__Status__c": "In Review"} for i in range(300)]
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {
            "compositeResponse": [
                {
                    "body": [_save(i) for i in range(s, min(s + 200, 300))],
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": f"c{s}",
                }
                for s in (0, 200)
            ]
        },
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "PATCH",
                            "url": "/services/data/v62.0/composite/sobjects",
                            "referenceId": f"c{s}",
                            "body": {
                                "allOrNone": True,
                                "records": _typed(updates[s : s + 200]),
                            },
                        }
                        for s in (0, 200)
                    ],
                }
            )
        ],
    )
    outcomes = sf.bulk_update(JBA, updates, all_or_none=True)
    assert sf.api_calls == 1
    assert [o.id for o in outcomes] == [_rid(i) for i in range(300)]


def test_bulk_upsert_and_outcomes_as_dicts(sf, rsps):
    sf.grants = Grants.everything()
    records = [{"Ext__c": f"x{i}", "Name": f"N{i}"} for i in range(2)]
    _json(
        rsps,
        "POST",
        f"{BASE}/composite",
        {
            "compositeResponse": [
                {
                    "body": [
                        {
                            "id": "001xx0000004GxDAAU",
                            "success": True,
                            "errors": [],
                            "created": True,
                        },
                        {"success": False, "errors": [LOCKED["errors"][0]]},
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": "c0",
                }
            ]
        },
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "compositeRequest": [
                        {
                            "method": "PATCH",
                            "url": "/services/data/v62.0/composite/sobjects/Account/Ext__c",
                            "referenceId": "c0",
                            "body": {"allOrNone": False, "records": _typed(records, "Account")},
                        }
                    ],
                }
            )
        ],
    )
    created, locked = sf.bulk_upsert("Account", "Ext__c", records)
    assert created.as_dict() == {
        "index": 0,
        "success": True,
        "id": "001xx0000004GxDAAU",
        "created": True,
        "reference_id": None,
        "related": {},
        "error": None,
    }
    assert json.loads(json.dumps(locked.as_dict()))["error"] == {
        "type": "RecordLocked",
        "status": None,
        "error_code": "UNABLE_TO_LOCK_ROW",
        "message": LOCKED["errors"][0]["message"],
        "fields": [],
        "retryable": True,
    }
