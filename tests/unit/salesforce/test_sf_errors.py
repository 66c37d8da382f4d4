"""Error parsing: every wire shape (salesforce-wire-shapes.md sections 1b, 2b-2d, 5, 6) becomes
the right typed error, with status, code, message, fields and retryability."""

from __future__ import annotations

import pickle

import pytest

from ats_gateway.salesforce import errors as e

# (status, body, class, errorCode, fields) - bodies are the literal shapes of the reference.
REST_ERRORS = [
    (
        401,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        e.SessionExpired,
        "INVALID_SESSION_ID",
        (),
    ),
    (
        401,
        [{"message": "INVALID_HEADER_TYPE", "errorCode": "INVALID_AUTH_HEADER"}],
        e.AuthenticationFailed,
        "INVALID_AUTH_HEADER",
        (),
    ),
    (
        403,
        [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        e.RequestLimitExceeded,
        "REQUEST_LIMIT_EXCEEDED",
        (),
    ),
    (
        404,
        [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
        e.NotFound,
        "NOT_FOUND",
        (),
    ),
    (
        404,
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"},
        e.NotFound,
        "NOT_FOUND",
        (),
    ),
    (
        404,
        [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}],
        e.NotFound,
        "ENTITY_IS_DELETED",
        (),
    ),
    (
        403,
        [
            {
                "message": "You do not have permission to view this record.",
                "errorCode": "INSUFFICIENT_ACCESS",
            }
        ],
        e.PermissionDenied,
        "INSUFFICIENT_ACCESS",
        (),
    ),
    (
        400,
        [
            {
                "message": "insufficient access rights on object id",
                "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY",
            }
        ],
        e.PermissionDenied,
        "INSUFFICIENT_ACCESS_OR_READONLY",
        (),
    ),
    (
        400,
        [{"message": "unexpected token: 'FROM'", "errorCode": "MALFORMED_QUERY"}],
        e.MalformedQuery,
        "MALFORMED_QUERY",
        (),
    ),
    (
        400,
        [
            {
                "fields": ["Id"],
                "message": "Account ID: id value of incorrect type: 001900K0001pPuOAAU",
                "errorCode": "MALFORMED_ID",
            }
        ],
        e.RecordInvalid,
        "MALFORMED_ID",
        ("Id",),
    ),
    (
        400,
        [
            {
                "message": "Required fields are missing: [Name]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["Name"],
            }
        ],
        e.RecordInvalid,
        "REQUIRED_FIELD_MISSING",
        ("Name",),
    ),
    (
        400,
        [
            {
                "message": "Status: bad value for restricted picklist field: Test",
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "fields": ["bpats__Status__c"],
            }
        ],
        e.RecordInvalid,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ("bpats__Status__c",),
    ),
    (
        400,
        [
            {
                "message": "duplicate value found: ERP_Id__c duplicates value on record with id: "
                "a015f00000KxRpaAAF",
                "errorCode": "DUPLICATE_VALUE",
                "fields": [],
            }
        ],
        e.RecordInvalid,
        "DUPLICATE_VALUE",
        (),
    ),
    (
        400,
        [
            {
                "message": "Close date must be in the future",
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            }
        ],
        e.RecordInvalid,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        (),
    ),
    (
        400,
        [
            {
                "message": "unable to obtain exclusive access to this record or 1 records: "
                "0035cFAKEIDAQBGAA4",
                "errorCode": "UNABLE_TO_LOCK_ROW",
                "fields": [],
            }
        ],
        e.RecordLocked,
        "UNABLE_TO_LOCK_ROW",
        (),
    ),
    (
        409,
        [{"message": "the entity is locked for editing", "errorCode": "ENTITY_IS_LOCKED"}],
        e.RecordLocked,
        "ENTITY_IS_LOCKED",
        (),
    ),
    (503, None, e.Unavailable, None, ()),
    (
        500,
        [{"message": "An unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}],
        e.Unavailable,
        "UNKNOWN_EXCEPTION",
        (),
    ),
    (
        300,
        [
            "/services/data/v60.0/sobjects/Contact/003Dn00000srto9IAA",
            "/services/data/v60.0/sobjects/Contact/003Dn00000srtA8IAI",
        ],
        e.RecordInvalid,
        "DUPLICATE_EXTERNAL_ID",
        (),
    ),
    (418, "not json", e.SalesforceError, None, ()),
]


@pytest.mark.parametrize(("status", "body", "cls", "code", "fields"), REST_ERRORS)
def test_rest_error_bodies(status, body, cls, code, fields):
    err = e.from_response(status, body)
    assert type(err) is cls
    assert err.status == status
    assert err.error_code == code
    assert err.fields == fields
    if isinstance(body, list) and body and isinstance(body[0], dict):
        assert err.message == body[0]["message"]


def test_invalid_field_is_a_query_error_in_a_query_and_a_record_error_in_dml():
    body = [
        {
            "message": "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such "
            "column 'Foo' on entity 'Account'.",
            "errorCode": "INVALID_FIELD",
        }
    ]
    assert type(e.from_response(400, body, query=True)) is e.MalformedQuery
    assert type(e.from_response(400, body)) is e.RecordInvalid


TOKEN_ERRORS = [
    (400, {"error": "invalid_grant", "error_description": "authentication failure"}),
    (400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}),
    (400, {"error": "invalid_grant", "error_description": "Audience validation failed"}),
    (400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}),
    (400, {"error": "invalid_client", "error_description": "invalid client credentials"}),
    (400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
]


@pytest.mark.parametrize(("status", "body"), TOKEN_ERRORS)
def test_token_endpoint_errors(status, body):
    for err in (e.from_token_response(status, body), e.from_response(status, body)):
        assert type(err) is e.AuthenticationFailed
        assert err.error_code == body["error"]
        assert err.message == body["error_description"]
        assert not err.retryable


def test_token_endpoint_outage_is_unavailable():
    assert type(e.from_token_response(503, None)) is e.Unavailable


def test_record_errors_use_status_code_key():
    err = e.from_record_errors(
        [
            {
                "statusCode": "INVALID_EMAIL_ADDRESS",
                "message": "Email: invalid email address: 123",
                "fields": ["Email"],
            }
        ]
    )
    assert type(err) is e.RecordInvalid
    assert (err.error_code, err.fields) == ("INVALID_EMAIL_ADDRESS", ("Email",))


def test_rolled_back_records_are_retryable_but_the_culprit_leads():
    rolled = e.from_record_errors(
        [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
        ]
    )
    assert type(rolled) is e.RolledBack and rolled.retryable
    both = e.from_record_errors(
        [
            {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "x", "fields": []},
            {"statusCode": "STRING_TOO_LONG", "message": "too long", "fields": ["FirstName"]},
        ]
    )
    assert type(both) is e.RecordInvalid
    assert both.error_code == "STRING_TOO_LONG"
    assert len(both.errors) == 2


def test_tree_errors_map_reference_ids():
    body = {
        "hasErrors": True,
        "results": [
            {
                "referenceId": "ref3",
                "errors": [
                    {
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": "Required fields are missing: [LastName]",
                        "fields": ["LastName"],
                    }
                ],
            }
        ],
    }
    errs = e.tree_errors(body, 400)
    assert list(errs) == ["ref3"]
    assert type(errs["ref3"]) is e.RecordInvalid
    assert errs["ref3"].fields == ("LastName",)
    assert type(e.from_response(400, body)) is e.RecordInvalid


def test_composite_subresponses_are_judged_one_by_one():
    ok = {
        "body": {"id": "001R00000064wdtIAA", "success": True, "errors": []},
        "httpHeaders": {"Location": "/services/data/v55.0/sobjects/Account/001R00000064wdtIAA"},
        "httpStatusCode": 201,
        "referenceId": "refAccount",
    }
    bad = {
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
        "referenceId": "acmeHQ",
    }
    not_modified = {"body": None, "httpHeaders": {}, "httpStatusCode": 304, "referenceId": "m"}
    assert e.from_subresponse(ok) is None
    assert e.from_subresponse(not_modified) is None
    assert type(e.from_subresponse(bad)) is e.RecordInvalid
    assert type(e.from_subresponse(halted)) is e.RolledBack
    assert type(e.from_subresponse({"referenceId": "x"})) is e.Unavailable


def test_graph_errors_name_the_failing_node():
    failed = {
        "graphId": "2",
        "isSuccessful": False,
        "graphResponse": {
            "compositeResponse": [
                {
                    "body": [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "a",
                },
                {
                    "body": [
                        {
                            "errorCode": "REQUIRED_FIELD_MISSING",
                            "message": "Required fields are missing: [LastName]",
                            "fields": ["LastName"],
                        }
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": "b",
                },
            ]
        },
    }
    err = e.graph_error(failed)
    assert type(err) is e.RecordInvalid and err.fields == ("LastName",)
    assert e.graph_error({"graphId": "1", "isSuccessful": True}) is None


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (e.RecordLocked, True),
        (e.Unavailable, True),
        (e.RequestLimitExceeded, True),
        (e.RolledBack, True),
        (e.RecordInvalid, False),
        (e.MalformedQuery, False),
        (e.NotFound, False),
        (e.PermissionDenied, False),
        (e.OperationNotAllowed, False),
        (e.AuthenticationFailed, False),
        (e.SessionExpired, False),
    ],
)
def test_retryability(cls, retryable):
    assert cls("x").retryable is retryable
    assert issubclass(cls, e.SalesforceError)


def test_errors_survive_pickling_for_celery():
    err = e.from_response(
        400,
        [{"message": "too long", "errorCode": "STRING_TOO_LONG", "fields": ["FirstName"]}],
    )
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is e.RecordInvalid
    assert (copy.status, copy.error_code, copy.fields, copy.message) == (
        400,
        "STRING_TOO_LONG",
        ("FirstName",),
        "too long",
    )
    assert "STRING_TOO_LONG" in str(copy) and "RecordInvalid" in repr(copy)
