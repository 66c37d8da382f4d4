"""The applications deliverer's decisions, with a stand-in org (not our code) that records calls.

The sandbox-backed integration tests prove the wire; these pin each branch: duplicates vs our
own orphaned creates, per-record errors mapped to public fields, retry vs fail, budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from ats_gateway.salesforce import RecordInvalid, RecordLocked, RecordOutcome, Unavailable
from ats_gateway.services.applications.org import ApplicationsDeliverer
from ats_gateway.services.delivery import Item

JOB = "a0M5g0000000001EAA"


@dataclass
class StandInOrg:
    contacts: dict[str, str] = field(default_factory=dict)  # email -> id
    apps: dict[tuple[str, str], str] = field(default_factory=dict)  # (email, job) -> id
    fail: dict[tuple[str, str], Exception] = field(default_factory=dict)  # (sobject, email)
    files: dict[str, str] = field(default_factory=dict)  # application id -> ContentVersion id
    query_error: Exception | None = None
    budget: bool = True
    calls: list[str] = field(default_factory=list)

    def may_spend(self, calls: int = 1) -> bool:
        return self.budget

    def query_many(self, queries):
        self.calls.append("query")
        if self.query_error:
            raise self.query_error
        results = []
        for soql in map(str, queries):
            if "FROM ContentVersion" in soql:
                linked = re.findall(r"'([^']+)'", soql)
                results.append(
                    [
                        {"Id": self.files[app], "FirstPublishLocationId": app}
                        for app in linked
                        if app in self.files
                    ]
                )
                continue
            emails = re.findall(r"'([^']+@[^']+)'", soql)
            records = []
            for email in emails:
                if email in self.contacts:
                    children = [
                        {"Id": app_id, "bpats__Job__c": job}
                        for (e, job), app_id in self.apps.items()
                        if e == email
                    ]
                    records.append(
                        {
                            "Id": self.contacts[email],
                            "Email": email.upper(),
                            "bpats__Job_Board_Applications__r": {"records": children}
                            if children
                            else None,
                        }
                    )
            results.append(records)
        return results

    def bulk_create(self, sobject, records, *, all_or_none=False):
        self.calls.append(sobject)
        out = []
        for n, record in enumerate(records):
            email = (record.get("Email") or record.get("bpats__Email__c") or "").lower()
            error = self.fail.get((sobject, email))
            if error is not None:
                out.append(RecordOutcome(n, False, error=error))
                continue
            new_id = f"{sobject[:3]}{len(self.calls)}x{n}"
            if sobject == "Contact":
                self.contacts[email] = new_id
            elif sobject.startswith("bpats__"):
                self.apps[(email, record["bpats__Job__c"])] = new_id
            elif sobject == "ContentVersion":
                self.files[record["FirstPublishLocationId"]] = new_id
            out.append(RecordOutcome(n, True, id=new_id))
        return out


def item(n: int, *, resume: bool = False, **progress) -> Item:
    return Item(
        id=f"item{n}",
        payload={
            "record": {
                "bpats__Job__c": JOB,
                "bpats__Email__c": f"c{n}@example.com",
                "bpats__First_Name__c": "Ada",
                "bpats__Last_Name__c": f"L{n}",
            }
        },
        attachments={"resume": b"%PDF-1.4"} if resume else {},
        attempts=0,
        progress=dict(progress),
        created_at=0.0,
    )


class Progress:
    """Records progress on the item itself, as the outbox does (minus Redis)."""

    def __call__(self, it: Item, **changes) -> bool:
        it.progress.update(changes)
        return True

    def many(self, changes) -> list[bool]:
        return [self(it, **change) for it, change in changes]


progress = Progress()


def deliverer(org: StandInOrg) -> ApplicationsDeliverer:
    # The org's errors in public names come from the metadata layer's live schema.
    from ats_gateway.config import Settings
    from ats_gateway.metadata import build_metadata
    from ats_gateway.services.applications.validation import LiveSchema

    metadata = build_metadata(Settings.from_env({}), None, fetchers={})
    return ApplicationsDeliverer(org, org_errors=LiveSchema(metadata).org_errors)


def test_new_candidates_cost_three_calls():
    org = StandInOrg()
    outcomes = deliverer(org).deliver([item(n) for n in range(10)], progress)
    assert [o.kind for o in outcomes] == ["delivered"] * 10
    assert org.calls == ["query", "Contact", "bpats__Job_Board_Application__c"]


def test_known_contact_is_reused_and_no_contact_call_made():
    org = StandInOrg(contacts={"c1@example.com": "003known"})
    [outcome] = deliverer(org).deliver([item(1)], progress)
    assert outcome.body["contact_id"] == "003known"
    assert "Contact" not in org.calls


def test_existing_application_is_a_duplicate_unless_we_created_it():
    org = StandInOrg(
        contacts={"c1@example.com": "003a", "c2@example.com": "003b"},
        apps={("c1@example.com", JOB): "a0Jtheirs", ("c2@example.com", JOB): "a0Jours"},
    )
    theirs, ours = deliverer(org).deliver([item(1), item(2, create_attempted=True)], progress)
    assert theirs.kind == "duplicate" and theirs.body["salesforce_id"] == "a0Jtheirs"
    assert ours.kind == "delivered" and ours.body["salesforce_id"] == "a0Jours"
    assert "bpats__Job_Board_Application__c" not in org.calls


def test_per_record_errors_map_back_to_their_application():
    invalid = RecordInvalid(
        "Write a real cover letter.",
        error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        fields=["bpats__Cover_Letter__c"],
    )
    org = StandInOrg(
        fail={
            ("bpats__Job_Board_Application__c", "c1@example.com"): invalid,
            ("bpats__Job_Board_Application__c", "c2@example.com"): RecordLocked(
                "unable to obtain exclusive access", error_code="UNABLE_TO_LOCK_ROW"
            ),
        }
    )
    ok, failed, locked = deliverer(org).deliver([item(0), item(1), item(2)], progress)
    assert ok.kind == "delivered"
    assert failed.kind == "failed"
    assert failed.body["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert failed.body["reason"] == "Write a real cover letter."
    assert failed.body["errors"] == [
        {
            "field": "cover_letter",
            "code": "rejected_by_org",
            "message": "cover_letter: the org refused the record: Write a real cover letter.",
        }
    ]
    assert locked.kind == "retry" and locked.body["code"] == "UNABLE_TO_LOCK_ROW"


def test_contact_failure_fails_only_its_application_with_public_field_names():
    too_long = RecordInvalid(
        "First Name: data value too large", error_code="STRING_TOO_LONG", fields=["FirstName"]
    )
    org = StandInOrg(fail={("Contact", "c1@example.com"): too_long})
    ok, failed = deliverer(org).deliver([item(0), item(1)], progress)
    assert ok.kind == "delivered"
    assert failed.kind == "failed"
    assert failed.body["errors"][0]["field"] == "first_name"
    assert failed.body["errors"][0]["code"] == "too_long"


def test_org_unreachable_retries_the_whole_batch():
    org = StandInOrg(query_error=Unavailable("503", error_code="SERVER_UNAVAILABLE"))
    outcomes = deliverer(org).deliver([item(0), item(1)], progress)
    assert {o.kind for o in outcomes} == {"retry"}


def test_budget_reserve_defers_without_spending():
    org = StandInOrg(budget=False)
    outcomes = deliverer(org).deliver([item(0)], progress)
    assert outcomes[0].kind == "defer" and outcomes[0].body["code"] == "API_BUDGET_RESERVE"
    assert org.calls == []


def test_resume_retry_does_not_recreate_the_application():
    org = StandInOrg(fail={("ContentVersion", ""): Unavailable("timeout")})
    first = item(0, resume=True)
    [outcome] = deliverer(org).deliver([first], progress)
    # unanswered, so it may still commit: parked for the settle time ([23]), not retried blind
    assert outcome.kind == "defer" and outcome.body["code"] == "AMBIGUOUS_WRITE"
    assert first.progress["salesforce_id"]
    org.fail.clear()
    calls = len(org.calls)
    [outcome] = deliverer(org).deliver([first], progress)
    assert outcome.kind == "delivered" and outcome.body["resume_id"]
    # the retry first asks whether the failed call committed after all, then uploads
    assert org.calls[calls:] == ["query", "ContentVersion"]
    assert len(org.files) == 1


def test_resume_committed_before_a_crash_is_not_uploaded_again():
    """The org stored the file but the worker died before recording it: the redelivery
    finds it by FirstPublishLocationId and attaches nothing more."""
    org = StandInOrg()
    first = item(0, resume=True)

    class DiesAfterUpload(Progress):
        def many(self, changes):
            if any("resume_id" in change for _, change in changes):
                raise SystemExit("worker killed")  # the org committed; nothing recorded
            return super().many(changes)

    with pytest.raises(SystemExit):
        deliverer(org).deliver([first], DiesAfterUpload())
    assert len(org.files) == 1 and "resume_id" not in first.progress
    [outcome] = deliverer(org).deliver([first], progress)
    assert outcome.kind == "delivered"
    assert outcome.body["resume_id"] == org.files[first.progress["salesforce_id"]]
    assert len(org.files) == 1


def test_refused_file_still_reports_the_delivered_application():
    refused = RecordInvalid("bad file", error_code="INVALID_FIELD")
    org = StandInOrg(fail={("ContentVersion", ""): refused})
    [outcome] = deliverer(org).deliver([item(0, resume=True)], progress)
    assert outcome.kind == "delivered" and outcome.body["resume_error"] == "bad file"


def test_twins_in_one_batch_are_created_once():
    org = StandInOrg()
    first, twin = deliverer(org).deliver([item(0), item(0)], progress)
    assert first.kind == "delivered" and twin.kind == "defer"
    assert len(org.apps) == 1


# ---------------------------------------------------------------------- issue [14]


def test_unkeyed_an_unanswered_create_parks_the_batch_a_refused_one_retries():
    """Without the External IDs a create with no answer may have committed: park for the settle
    time (then the dedupe query reads the org again); a 503 answer is a plain retry."""
    org = StandInOrg(
        fail={
            ("Contact", "c0@example.com"): Unavailable("POST /composite timed out (ReadTimeout)"),
            ("Contact", "c1@example.com"): Unavailable("server unavailable", status=503),
        }
    )
    deliverer = ApplicationsDeliverer(org, keyed=False, settle_seconds=42)
    parked, retried = deliverer.deliver([item(0), item(1)], progress)
    assert parked.kind == "defer" and parked.delay == 42
    assert parked.body["code"] == "AMBIGUOUS_WRITE"
    assert retried.kind == "retry"


def test_a_contact_refusal_names_the_contact_and_the_fields_the_org_named():
    rule = RecordInvalid(
        "Candidates from this domain are blocked.",
        error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        fields=("Email",),
    )
    org = StandInOrg(fail={("Contact", "c0@example.com"): rule})
    (failed,) = ApplicationsDeliverer(org).deliver([item(0)], progress)
    assert failed.kind == "failed"
    assert failed.body["object"] == "Contact"
    assert failed.body["org_fields"] == ["Email"]
    assert failed.body["reason"].startswith("The org refused the candidate's Contact: ")
    assert failed.body["errors"][0]["field"] == "bpats__Email__c"  # the application's field


def test_a_restricted_picklist_refusal_refreshes_that_objects_describe():
    stale: list[str] = []
    refused = RecordInvalid(
        "bad value for restricted picklist field: Job Board",
        error_code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        fields=("bpats__Source__c",),
    )
    org = StandInOrg(fail={("bpats__Job_Board_Application__c", "c0@example.com"): refused})
    deliverer = ApplicationsDeliverer(org, describe_stale=stale.append)
    failed, ok = deliverer.deliver([item(0), item(1)], progress)
    assert failed.kind == "failed" and ok.kind == "delivered"
    assert stale == ["bpats__Job_Board_Application__c"]  # once per batch, not per record
