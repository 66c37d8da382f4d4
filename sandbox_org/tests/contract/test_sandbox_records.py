"""sObject rows: create / get / update / delete / upsert, the org's validation, ids."""

from __future__ import annotations

import uuid

import pytest
import requests

from sandbox_org.ids import normalize, to18

from .conftest import VERSION, error_of


@pytest.fixture(scope="module")
def job_id(admin) -> str:
    return admin.create("bpats__Job__c", {"Name": "Contract test job", "bpats__Status__c": "Open"})


@pytest.fixture(scope="module")
def contact_id(admin) -> str:
    return admin.create("Contact", {"LastName": "Tester", "Email": "tester@example.com"})


def _application(job_id: str, contact_id: str, **over) -> dict:
    body = {
        "bpats__Job__c": job_id,
        "bpats__Contact__c": contact_id,
        "bpats__Email__c": "ada@example.com",
        "bpats__First_Name__c": "Ada",
        "bpats__Last_Name__c": "Lovelace",
    }
    body.update(over)
    return body


def test_checksum_matches_official_examples():
    assert to18("001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert to18("a0RE000000IJmcN") == "a0RE000000IJmcNMAT"
    assert to18("aBcDEfgHIJKLMNO") == "aBcDEfgHIJKLMNO025"
    assert normalize("001D000000IqhSLiaz") == "001D000000IqhSLIAZ"
    assert normalize("001D000000IqhSLAAA") is None
    assert normalize("not-an-id") is None


def test_create_get_update_delete(admin, job_id, contact_id):
    r = admin.post(
        "/sobjects/bpats__Job_Board_Application__c", json=_application(job_id, contact_id)
    )
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["id", "success", "errors"]
    assert body["success"] is True and body["errors"] == []
    rid = body["id"]
    assert len(rid) == 18 and rid.startswith("a0J") and normalize(rid) == rid

    got = admin.get(f"/sobjects/bpats__Job_Board_Application__c/{rid}").json()
    assert got["attributes"] == {
        "type": "bpats__Job_Board_Application__c",
        "url": f"/services/data/v{VERSION}/sobjects/bpats__Job_Board_Application__c/{rid}",
    }
    assert got["Name"].startswith("JBA-") and len(got["Name"]) == 10
    assert got["bpats__Status__c"] == "New"  # picklist default
    assert got["bpats__Consent__c"] is False
    assert got["OwnerId"].startswith("005")
    assert got["CreatedDate"].endswith("+0000") and got["CreatedDate"] == got["SystemModstamp"]
    assert got["bpats__Cover_Letter__c"] is None

    # 15-char ids are accepted
    short = admin.get(
        f"/sobjects/bpats__Job_Board_Application__c/{rid[:15]}?fields=Id,bpats__Email__c"
    )
    assert short.json() == {
        "attributes": got["attributes"],
        "Id": rid,
        "bpats__Email__c": "ada@example.com",
    }

    upd = admin.patch(
        f"/sobjects/bpats__Job_Board_Application__c/{rid}", json={"bpats__Status__c": "In Review"}
    )
    assert upd.status_code == 204 and upd.content == b""
    again = admin.get(f"/sobjects/bpats__Job_Board_Application__c/{rid}").json()
    assert again["bpats__Status__c"] == "In Review"

    assert admin.delete(f"/sobjects/bpats__Job_Board_Application__c/{rid}").status_code == 204
    gone = admin.get(f"/sobjects/bpats__Job_Board_Application__c/{rid}")
    assert gone.status_code == 404 and error_of(gone)["errorCode"] == "NOT_FOUND"
    twice = admin.delete(f"/sobjects/bpats__Job_Board_Application__c/{rid}")
    assert twice.status_code == 404
    assert error_of(twice) == {
        "message": "entity is deleted",
        "errorCode": "ENTITY_IS_DELETED",
        "fields": [],
    }
    patch_deleted = admin.patch(f"/sobjects/bpats__Job_Board_Application__c/{rid}", json={})
    assert error_of(patch_deleted)["errorCode"] == "ENTITY_IS_DELETED"


def test_method_override(admin, contact_id):
    r = admin.post(f"/sobjects/Contact/{contact_id}?_HttpMethod=PATCH", json={"Title": "QA"})
    assert r.status_code == 204
    assert admin.get(f"/sobjects/Contact/{contact_id}?fields=Title").json()["Title"] == "QA"


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        (
            {"bpats__First_Name__c": None, "bpats__Email__c": None},
            {
                "message": "Required fields are missing: [bpats__Email__c, bpats__First_Name__c]",
                "errorCode": "REQUIRED_FIELD_MISSING",
                "fields": ["bpats__Email__c", "bpats__First_Name__c"],
            },
        ),
        (
            {"bpats__First_Name__c": "x" * 41},
            {
                "message": f"First Name: data value too large: {'x' * 41} (max length=40)",
                "errorCode": "STRING_TOO_LONG",
                "fields": ["bpats__First_Name__c"],
            },
        ),
        (
            {"bpats__Status__c": "Test"},
            {
                "message": "Status: bad value for restricted picklist field: Test",
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "fields": ["bpats__Status__c"],
            },
        ),
        (
            {"bpats__Email__c": "Not a real email address"},
            {
                "message": "Email: invalid email address: Not a real email address",
                "errorCode": "INVALID_EMAIL_ADDRESS",
                "fields": ["bpats__Email__c"],
            },
        ),
        (
            {"bpats__Job__c": "001D000000IqhSLIAZ"},
            {
                "message": "Job: id value of incorrect type: 001D000000IqhSLIAZ",
                "errorCode": "MALFORMED_ID",
                "fields": ["bpats__Job__c"],
            },
        ),
        (
            {"bpats__Job__c": "garbage"},
            {
                "message": "Job: id value of incorrect type: garbage",
                "errorCode": "MALFORMED_ID",
                "fields": ["bpats__Job__c"],
            },
        ),
        (
            {"bpats__Job__c": to18("a0M5g0000099999")},
            {
                "message": "invalid cross reference id",
                "errorCode": "INVALID_CROSS_REFERENCE_KEY",
                "fields": ["bpats__Job__c"],
            },
        ),
        (
            {"Name": "JBA-1"},
            {
                "message": "Unable to create/update fields: Name. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                "fields": ["Name"],
            },
        ),
        (
            {"Favorite_Color__c": "blue"},
            {
                "message": "No such column 'Favorite_Color__c' on sobject of type "
                "bpats__Job_Board_Application__c",
                "errorCode": "INVALID_FIELD",
                "fields": [],
            },
        ),
    ],
)
def test_validation_errors(admin, job_id, contact_id, over, expected):
    r = admin.post(
        "/sobjects/bpats__Job_Board_Application__c", json=_application(job_id, contact_id, **over)
    )
    assert r.status_code == 400
    assert error_of(r) == expected


def test_reference_to_a_deleted_record(admin, contact_id):
    doomed = admin.create("bpats__Job__c", {"Name": "Doomed"})
    assert admin.delete(f"/sobjects/bpats__Job__c/{doomed}").status_code == 204
    r = admin.post(
        "/sobjects/bpats__Job_Board_Application__c", json=_application(doomed, contact_id)
    )
    assert error_of(r)["errorCode"] == "ENTITY_IS_DELETED"


def test_bad_json_and_wrong_types(admin):
    r = admin.post(
        "/sobjects/Contact", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and error_of(r)["errorCode"] == "JSON_PARSER_ERROR"
    r = admin.post(
        "/sobjects/bpats__Job__c", json={"Name": "J", "bpats__End_Date__c": "2024-13-45"}
    )
    assert r.status_code == 400 and error_of(r)["errorCode"] == "JSON_PARSER_ERROR"
    r = admin.post("/sobjects/bpats__Job__c", json={"Name": "J", "bpats__Salary_Min__c": 1e20})
    assert error_of(r)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_values_are_normalized(admin):
    rid = admin.create(
        "bpats__Job__c",
        {
            "Name": "Normalized",
            "bpats__Salary_Min__c": "1000.456",
            "bpats__Date_Posted__c": "2024-05-01",
            "bpats__City__c": "",
        },
    )
    row = admin.get(f"/sobjects/bpats__Job__c/{rid}").json()
    assert row["bpats__Salary_Min__c"] == 1000.46
    assert row["bpats__Date_Posted__c"] == "2024-05-01"
    assert row["bpats__City__c"] is None
    app_dt = admin.create("Contact", {"LastName": "Dt", "Email": "dt@example.com"})
    assert app_dt.startswith("003")


def test_bad_ids_in_the_url(admin):
    r = admin.get("/sobjects/Account/0035g0000000001AAA")
    assert r.status_code == 400
    assert error_of(r) == {
        "message": "Account ID: id value of incorrect type: 0035g0000000001AAA",
        "errorCode": "MALFORMED_ID",
        "fields": ["Id"],
    }
    r = admin.get("/sobjects/Account/" + to18("0015g0000099999"))
    assert r.status_code == 404 and error_of(r)["errorCode"] == "NOT_FOUND"
    r = admin.get("/sobjects/Account/NoSuchField__c/abc")
    assert r.status_code == 404
    assert "Provided external ID field does not exist" in error_of(r)["message"]
    assert admin.get("/sobjects/Account/Id?fields=Nope").status_code in (404, 405)
    bad_field = admin.get(f"/sobjects/Account/{admin.create('Account', {'Name': 'F'})}?fields=Nope")
    assert bad_field.status_code == 400 and error_of(bad_field)["errorCode"] == "INVALID_FIELD"


def test_upsert_by_external_id_created_updated_and_multiple(fresh):
    api = fresh.client("admin")
    requests.patch(
        f"{fresh.url}/__sandbox__/objects/bpats__Job__c/fields/bpats__Postal_Code__c",
        json={"externalId": True},
        timeout=10,
    )
    path = "/sobjects/bpats__Job__c/bpats__Postal_Code__c/EXT-1"
    created = api.patch(path, json={"Name": "Upserted"})
    assert created.status_code == 201
    assert list(created.json()) == ["id", "success", "errors", "created"]
    assert created.json()["created"] is True
    updated = api.patch(path, json={"Name": "Upserted again"})
    assert updated.status_code == 200
    assert updated.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    got = api.get(path).json()
    assert got["Name"] == "Upserted again" and got["bpats__Postal_Code__c"] == "EXT-1"
    api.create("bpats__Job__c", {"Name": "dupe 1", "bpats__Postal_Code__c": "EXT-2"})
    api.create("bpats__Job__c", {"Name": "dupe 2", "bpats__Postal_Code__c": "ext-2"})
    many = api.patch("/sobjects/bpats__Job__c/bpats__Postal_Code__c/EXT-2", json={"Name": "x"})
    assert many.status_code == 300
    assert len(many.json()) == 2
    assert all(
        u.startswith(f"/services/data/v{VERSION}/sobjects/bpats__Job__c/a0M") for u in many.json()
    )
    not_ext = api.patch("/sobjects/bpats__Job__c/bpats__City__c/x", json={"Name": "x"})
    assert not_ext.status_code == 404
    assert error_of(not_ext) == {
        "message": "Provided external ID field does not exist or is not accessible: bpats__City__c",
        "errorCode": "NOT_FOUND",
    }


def test_upsert_contact_by_email_idlookup(fresh):
    api = fresh.client("admin")
    email = f"{uuid.uuid4().hex}@example.com"
    r = api.patch(f"/sobjects/Contact/Email/{email}", json={"LastName": "Upsert"})
    assert r.status_code == 201
    r2 = api.patch(f"/sobjects/Contact/Email/{email.upper()}", json={"Title": "CTO"})
    assert r2.status_code == 200 and r2.json()["id"] == r.json()["id"]


def test_duplicate_value_on_unique_field(fresh):
    api = fresh.client("admin")
    requests.patch(
        f"{fresh.url}/__sandbox__/objects/Account/fields/Website",
        json={"unique": True},
        timeout=10,
    )
    first = api.create("Account", {"Name": "A", "Website": "https://a.example.com"})
    r = api.post("/sobjects/Account", json={"Name": "B", "Website": "https://a.example.com"})
    assert r.status_code == 400
    assert error_of(r) == {
        "message": f"duplicate value found: Website duplicates value on record with id: {first}",
        "errorCode": "DUPLICATE_VALUE",
        "fields": [],
    }


def test_custom_validation_rule(fresh):
    api = fresh.client("admin")
    rule = {
        "name": "Salary_Max_Required_When_Min",
        "errorMessage": "Enter a maximum salary",
        "errorDisplayField": "bpats__Salary_Max__c",
        "condition": {"field": "bpats__Salary_Max__c", "op": "blank"},
    }
    r = requests.post(
        f"{fresh.url}/__sandbox__/objects/bpats__Job__c/validation-rules", json=rule, timeout=10
    )
    assert r.status_code == 201
    bad = api.post("/sobjects/bpats__Job__c", json={"Name": "J"})
    assert error_of(bad) == {
        "message": "Enter a maximum salary",
        "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "fields": ["bpats__Salary_Max__c"],
    }
    assert (
        api.post(
            "/sobjects/bpats__Job__c", json={"Name": "J", "bpats__Salary_Max__c": 5}
        ).status_code
        == 201
    )
    assert (
        requests.delete(f"{fresh.url}/__sandbox__/validation-rules", timeout=10).status_code == 204
    )
    assert api.post("/sobjects/bpats__Job__c", json={"Name": "J"}).status_code == 201


def test_master_detail_cannot_be_reparented_and_cascades(admin):
    t1 = admin.create("bpats__Interview_Template__c", {"Name": "T1"})
    t2 = admin.create("bpats__Interview_Template__c", {"Name": "T2"})
    topic = admin.create("bpats__Interview_Topic__c", {"Name": "Topic"})
    detail = admin.create(
        "bpats__Interview_Template_Detail__c",
        {"bpats__Interview_Template__c": t1, "bpats__Interview_Topic__c": topic},
    )
    r = admin.patch(
        f"/sobjects/bpats__Interview_Template_Detail__c/{detail}",
        json={"bpats__Interview_Template__c": t2},
    )
    assert error_of(r)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert admin.delete(f"/sobjects/bpats__Interview_Template__c/{t1}").status_code == 204
    assert admin.get(f"/sobjects/bpats__Interview_Template_Detail__c/{detail}").status_code == 404


def test_child_relationship_path(admin, job_id, contact_id):
    admin.create("bpats__Job_Board_Application__c", _application(job_id, contact_id))
    r = admin.get(f"/sobjects/bpats__Job__c/{job_id}/bpats__Job_Board_Applications__r")
    assert r.status_code == 200
    body = r.json()
    assert body["done"] is True and body["totalSize"] >= 1
    assert body["records"][0]["bpats__Job__c"] == job_id


def test_file_database_survives_a_restart(tmp_path):
    from sandbox_org import create_app
    from sandbox_org.server import start_in_thread

    from .conftest import Org

    db = str(tmp_path / "org.sqlite")
    with start_in_thread(create_app({"db": db, "seed": "demo", "seed_jobs": 20})) as h1:
        api = Org(h1).client("admin")
        kept = api.create(
            "bpats__Job_Board_Application__c",
            {
                "bpats__Job__c": api.query("SELECT Id FROM bpats__Job__c LIMIT 1").json()[
                    "records"
                ][0]["Id"],
                "bpats__Contact__c": api.create("Contact", {"LastName": "Persisted"}),
                "bpats__Email__c": "p@example.com",
                "bpats__First_Name__c": "P",
                "bpats__Last_Name__c": "Persisted",
            },
        )
        name = api.get(f"/sobjects/bpats__Job_Board_Application__c/{kept}").json()["Name"]
    with start_in_thread(create_app({"db": db, "seed": "demo", "seed_jobs": 20})) as h2:
        api = Org(h2).client("admin")
        assert api.query("SELECT COUNT() FROM bpats__Job__c").json()["totalSize"] == 20
        assert api.get(f"/sobjects/bpats__Job_Board_Application__c/{kept}").json()["Name"] == name
        again = api.create("Account", {"Name": "after restart"})
        assert again != kept and api.get(f"/sobjects/Account/{again}").status_code == 200
        newer = api.post(
            "/composite/sobjects",
            json={
                "records": [
                    {
                        "attributes": {"type": "bpats__Job_Board_Application__c"},
                        "bpats__Job__c": api.query("SELECT Id FROM bpats__Job__c LIMIT 1").json()[
                            "records"
                        ][0]["Id"],
                        "bpats__Contact__c": api.create("Contact", {"LastName": "Second"}),
                        "bpats__Email__c": "s@example.com",
                        "bpats__First_Name__c": "S",
                        "bpats__Last_Name__c": "Second",
                    }
                ]
            },
        ).json()[0]
        later = api.get(f"/sobjects/bpats__Job_Board_Application__c/{newer['id']}").json()["Name"]
        assert later > name  # the auto number continues


def test_updated_and_deleted_since(admin):
    from datetime import UTC, datetime, timedelta

    start = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    end = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    kept = admin.create("Account", {"Name": "changed"})
    gone = admin.create("Account", {"Name": "deleted"})
    admin.delete(f"/sobjects/Account/{gone}")
    params = {"start": start, "end": end}
    updated = admin.get("/sobjects/Account/updated/", params=params).json()
    assert kept in updated["ids"] and gone not in updated["ids"]
    deleted = admin.get("/sobjects/Account/deleted/", params=params).json()
    assert gone in {d["id"] for d in deleted["deletedRecords"]}
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert admin.get("/sobjects/Account/updated/").status_code == 400


def test_parent_by_external_id_in_the_body(fresh):
    api = fresh.client("admin")
    job = api.create("bpats__Job__c", {"Name": "Ext parent"})
    contact = api.create("Contact", {"LastName": "Ext", "Email": "ext.parent@example.com"})
    body = _application(job, contact)
    del body["bpats__Contact__c"]
    body["bpats__Contact__r"] = {"Email": "EXT.PARENT@example.com"}
    rid = api.create("bpats__Job_Board_Application__c", body)
    got = api.get(f"/sobjects/bpats__Job_Board_Application__c/{rid}?fields=bpats__Contact__c")
    assert got.json()["bpats__Contact__c"] == contact
    body["bpats__Contact__r"] = {"Email": "nobody@example.com"}
    missing = api.post("/sobjects/bpats__Job_Board_Application__c", json=body)
    assert missing.status_code == 400 and error_of(missing)["errorCode"] == "INVALID_FIELD"
    body["bpats__Contact__r"] = {"Title": "x"}
    not_ext = api.post("/sobjects/bpats__Job_Board_Application__c", json=body)
    assert "is not an External ID or indexed field" in error_of(not_ext)["message"]


def test_datetimes_are_stored_in_utc(admin):
    rid = admin.create(
        "bpats__Interview__c",
        {
            "bpats__Start_Date_Time__c": "2025-03-01T10:30:00+02:00",
            "bpats__End_Date_Time__c": "2025-03-01T09:30:00.5Z",
        },
    )
    row = admin.get(f"/sobjects/bpats__Interview__c/{rid}").json()
    assert row["bpats__Start_Date_Time__c"] == "2025-03-01T08:30:00.000+0000"
    assert row["bpats__End_Date_Time__c"] == "2025-03-01T09:30:00.500+0000"
    assert row["Name"].startswith("INT-")
    bad = admin.post("/sobjects/bpats__Interview__c", json={"bpats__Start_Date_Time__c": "soon"})
    assert error_of(bad)["errorCode"] == "JSON_PARSER_ERROR"
