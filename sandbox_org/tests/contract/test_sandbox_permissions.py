"""Object permissions per permission set, enforced server-side."""

from __future__ import annotations

import pytest

from .conftest import error_of


@pytest.fixture(scope="module")
def job(admin) -> str:
    return admin.create("bpats__Job__c", {"Name": "Permissions job", "bpats__Status__c": "Open"})


def test_job_portal_reads_jobs_but_cannot_write_them(portal, job):
    assert portal.get(f"/sobjects/bpats__Job__c/{job}").status_code == 200
    r = portal.patch(f"/sobjects/bpats__Job__c/{job}", json={"Name": "hacked"})
    assert r.status_code == 400
    assert error_of(r) == {
        "message": "insufficient access rights on object id",
        "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY",
        "fields": [],
    }
    assert error_of(portal.post("/sobjects/bpats__Job__c", json={"Name": "x"}))["errorCode"] == (
        "INSUFFICIENT_ACCESS_OR_READONLY"
    )


def test_job_portal_creates_and_edits_applications_and_contacts_but_cannot_delete(portal, job):
    contact = portal.create("Contact", {"LastName": "Applicant", "Email": "a@example.com"})
    app_id = portal.create(
        "bpats__Job_Board_Application__c",
        {
            "bpats__Job__c": job,
            "bpats__Contact__c": contact,
            "bpats__Email__c": "a@example.com",
            "bpats__First_Name__c": "A",
            "bpats__Last_Name__c": "Applicant",
        },
    )
    r = portal.delete(f"/sobjects/bpats__Job_Board_Application__c/{app_id}")
    assert r.status_code == 400
    assert error_of(r)["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert portal.delete(f"/sobjects/Contact/{contact}").status_code == 400
    # edit is granted (ATS Gateway Candidate Intake): delivery upserts by ATS_Gateway_Id__c
    assert portal.patch(f"/sobjects/Contact/{contact}", json={"Title": "x"}).status_code == 204


def test_job_portal_cannot_see_interviews(portal, admin):
    interview = admin.query("SELECT Id FROM bpats__Interview__c LIMIT 1").json()["records"][0]["Id"]
    r = portal.get(f"/sobjects/bpats__Interview__c/{interview}")
    assert r.status_code == 404
    assert error_of(r)["errorCode"] == "NOT_FOUND"
    q = portal.query("SELECT Id FROM bpats__Interview__c")
    assert error_of(q)["errorCode"] == "INVALID_TYPE"


def test_without_candidate_intake_contacts_are_invisible(org):
    api = org.client("job_portal_no_intake")
    r = api.post("/sobjects/Contact", json={"LastName": "x"})
    assert r.status_code == 404
    describe = api.get("/sobjects/bpats__Job_Board_Application__c/describe").json()
    assert describe["createable"] is True


def test_feedback_user(feedback, admin):
    interview = admin.query("SELECT Id FROM bpats__Interview__c LIMIT 1").json()["records"][0]["Id"]
    contact = feedback.query("SELECT Id FROM Contact LIMIT 1").json()["records"][0]["Id"]
    fb = feedback.create(
        "bpats__Interview_Feedback__c",
        {
            "bpats__Interview__c": interview,
            "bpats__Interviewer__c": contact,
            "bpats__Recommendation__c": "Hire",
        },
    )
    assert (
        feedback.patch(
            f"/sobjects/bpats__Interview_Feedback__c/{fb}", json={"bpats__Comments__c": "ok"}
        ).status_code
        == 204
    )
    assert feedback.delete(f"/sobjects/bpats__Interview_Feedback__c/{fb}").status_code == 400
    assert feedback.post("/sobjects/Contact", json={"LastName": "x"}).status_code == 400
    assert feedback.query("SELECT Id FROM bpats__Job_Board_Application__c").status_code == 400
