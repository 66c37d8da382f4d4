"""ContentVersion upload with base64 VersionData, linking, download, size limits (§9)."""

from __future__ import annotations

import base64
import json

import requests

from sandbox_org.ids import to18

from .conftest import error_of

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def test_upload_links_the_file_to_the_record(admin, portal):
    account = admin.create("Account", {"Name": "Files"})
    contact = portal.create("Contact", {"LastName": "Resume", "AccountId": account})
    r = portal.post(
        "/sobjects/ContentVersion",
        json={
            "Title": "resume.pdf",
            "PathOnClient": "resume.pdf",
            "VersionData": base64.b64encode(PDF).decode(),
            "FirstPublishLocationId": contact,
        },
    )
    assert r.status_code == 201, r.text
    version_id = r.json()["id"]
    assert version_id.startswith("068")
    q = portal.query(
        "SELECT ContentDocumentId, ContentSize, FileType FROM ContentVersion "
        f"WHERE Id = '{version_id}'"
    ).json()["records"][0]
    assert q["ContentDocumentId"].startswith("069")
    assert q["ContentSize"] == len(PDF) and q["FileType"] == "PDF"
    links = admin.query(
        "SELECT LinkedEntityId FROM ContentDocumentLink "
        f"WHERE ContentDocumentId = '{q['ContentDocumentId']}'"
    ).json()["records"]
    assert contact in {link["LinkedEntityId"] for link in links}
    raw = admin.get(f"/sobjects/ContentVersion/{version_id}/VersionData")
    assert raw.status_code == 200 and raw.content == PDF
    row = admin.get(f"/sobjects/ContentVersion/{version_id}").json()
    assert row["VersionData"].endswith(f"/sobjects/ContentVersion/{version_id}/VersionData")


def test_bad_upload(admin):
    r = admin.post(
        "/sobjects/ContentVersion",
        json={"Title": "x", "PathOnClient": "x.pdf", "VersionData": "%%%not base64"},
    )
    assert r.status_code == 400 and error_of(r)["errorCode"] == "JSON_PARSER_ERROR"
    r = admin.post("/sobjects/ContentVersion", json={"Title": "x", "PathOnClient": "x.pdf"})
    assert error_of(r)["errorCode"] == "REQUIRED_FIELD_MISSING"

    def publish_to(target: str) -> dict:
        return error_of(
            admin.post(
                "/sobjects/ContentVersion",
                json={
                    "Title": "x",
                    "PathOnClient": "x.pdf",
                    "VersionData": "QUJD",
                    "FirstPublishLocationId": target,
                },
            )
        )

    missing_job = to18("a0M5g0000099999")
    assert publish_to(missing_job) == {
        "message": "invalid cross reference id",
        "errorCode": "INVALID_CROSS_REFERENCE_KEY",
        "fields": ["FirstPublishLocationId"],
    }
    version = admin.create(
        "ContentVersion", {"Title": "d", "PathOnClient": "d.txt", "VersionData": "QUJD"}
    )
    document = admin.query(
        f"SELECT ContentDocumentId FROM ContentVersion WHERE Id = '{version}'"
    ).json()["records"][0]["ContentDocumentId"]
    wrong_type = publish_to(document)
    assert wrong_type["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert wrong_type["fields"] == ["FirstPublishLocationId"]


def test_json_body_over_50_mb_is_refused(admin):
    body = b'{"Title":"big","PathOnClient":"big.bin","VersionData":"' + b"A" * 52_428_800 + b'"}'
    r = admin.post(
        "/sobjects/ContentVersion", data=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_feedback_user_cannot_upload(feedback):
    r = feedback.post(
        "/sobjects/ContentVersion",
        json={"Title": "x", "PathOnClient": "x.txt", "VersionData": "QUJD"},
    )
    assert r.status_code == 404


def test_version_data_needs_a_session(org, admin):
    vid = admin.create(
        "ContentVersion", {"Title": "t", "PathOnClient": "t.txt", "VersionData": "QUJD"}
    )
    r = requests.get(
        f"{org.url}/services/data/v62.0/sobjects/ContentVersion/{vid}/VersionData", timeout=10
    )
    assert r.status_code == 401


def test_multipart_upload(admin):
    account = admin.create("Account", {"Name": "Multipart"})
    entity = json.dumps(
        {"Title": "cv.pdf", "PathOnClient": "cv.pdf", "FirstPublishLocationId": account}
    )
    r = admin.session.post(
        admin.base + "/sobjects/ContentVersion",
        files={
            "entity_content": (None, entity, "application/json"),
            "VersionData": ("cv.pdf", PDF, "application/pdf"),
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    raw = admin.get(f"/sobjects/ContentVersion/{r.json()['id']}/VersionData")
    assert raw.content == PDF
