"""Permission preflight: describe flags per connection against what its endpoints need."""

from __future__ import annotations

import argparse
import io

import pytest

from ats_gateway.metadata import PermissionMissing
from ats_gateway.metadata.cli import cmd_doctor
from ats_gateway.metadata.preflight import MISSING, OK, UNVERIFIED


def test_everything_granted(online):
    findings = online.preflight(verify=True)
    assert findings and {f.state for f in findings} == {OK}
    online.require("job_portal", "POST /v1/applications")  # does not raise


def test_missing_grant_names_connection_permission_set_object_and_operation(online, org):
    org.set_flag("Contact", "createable", False)  # Candidate Intake not assigned
    findings = online.preflight(verify=True)
    [missing] = [f for f in findings if f.state == MISSING]
    assert (missing.connection, missing.object, missing.operation) == (
        "job_portal",
        "Contact",
        "create",
    )
    assert missing.permission_sets == (
        "ATS Gateway Candidate Intake [ATS_Gateway_Candidate_Intake]",
    )
    assert "POST /v1/applications" in missing.sentence
    with pytest.raises(PermissionMissing) as info:
        online.require("job_portal", "POST /v1/applications")
    assert "missing create on Contact" in info.value.reason
    assert "ATS Gateway Candidate Intake" in info.value.reason
    online.require("job_portal", "GET /v1/jobs")  # jobs do not need Contact
    online.require("interview_feedback")  # the other connection is fine


def test_object_the_user_cannot_see_is_missing(online, org):
    org.hidden.add("bpats__Interview_Topic__c")
    online.cache.forget("interview_feedback", "bpats__Interview_Topic__c")
    findings = online.preflight()
    [missing] = [f for f in findings if f.state == MISSING]
    assert (missing.object, missing.operation) == ("bpats__Interview_Topic__c", "read")
    assert missing.permission_sets == (
        "External Interview Feedback [bpats__External_Interview_Feedback]",
    )


def test_offline_snapshots_cannot_verify(metadata):
    assert {f.state for f in metadata.preflight()} == {UNVERIFIED}
    metadata.require("job_portal", "POST /v1/applications")  # unverified is not a refusal


def doctor(md, *connections):
    out = io.StringIO()
    code = cmd_doctor(
        argparse.Namespace(connection=list(connections), json=False), metadata=md, out=out
    )
    return code, out.getvalue()


def test_doctor_exit_codes(online, org, metadata):
    code, text = doctor(online)
    assert code == 0 and "0 missing" in text
    org.set_flag("Contact", "createable", False)
    code, text = doctor(online)
    assert code == 1
    assert "MISSING connection job_portal: missing create on Contact" in text
    code, _ = doctor(online, "interview_feedback")
    assert code == 0
    code, text = doctor(metadata)
    assert code == 2 and "not verified" in text


def test_readiness_names_missing_grants(online, org):
    from ats_gateway.metadata import permissions_status

    assert permissions_status(online) == ("ok", {"checked": 15, "unverified": 0})
    org.set_flag("bpats__Interview_Feedback__c", "createable", False)
    online.refresh()
    state, details = permissions_status(online)
    assert state == "degraded"
    assert details["missing"] == [
        "connection interview_feedback: missing create on bpats__Interview_Feedback__c "
        "(permission set 'External Interview Feedback [bpats__External_Interview_Feedback]'); "
        "needed by POST /v1/feedback/{token}"
    ]


def test_doctor_checks_the_gateways_external_ids(online, org):
    """`doctor` checks ATS_Gateway_Id__c on Contact and the application: External ID, Unique,
    writable. Without it delivery still runs (unkeyed), but doctor says what to create."""
    from ats_gateway.metadata.preflight import GATEWAY_KEY, gateway_keys_ready

    code, text = doctor(online, "job_portal")
    assert code == 0
    assert f"upsert by {GATEWAY_KEY} on Contact ok" in text
    assert gateway_keys_ready(online.cache.get)
    org.change_field("bpats__Job_Board_Application__c", GATEWAY_KEY, unique=False)
    online.refresh()
    code, text = doctor(online, "job_portal")
    assert code == 1
    assert (
        f"MISSING connection job_portal: cannot upsert by {GATEWAY_KEY} on "
        f"bpats__Job_Board_Application__c: bpats__Job_Board_Application__c.{GATEWAY_KEY} is not "
        "Unique" in text
    )
    assert not gateway_keys_ready(online.cache.get)
