"""The connection allow-list refuses, before any request, what the connection was not granted.

Every test here runs inside ``responses.RequestsMock`` with nothing registered, so any request
the client tried to send would fail the test with a ConnectionError instead of the expected
``OperationNotAllowed``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from sf_fakes import settings

from ats_gateway.salesforce import (
    DEFAULT_GRANTS,
    Grants,
    MalformedQuery,
    OperationNotAllowed,
    PermissionDenied,
    SalesforceClient,
    Subrequest,
)
from ats_gateway.salesforce.soql import select

ROOT = Path(__file__).resolve().parents[3]
JOB = "bpats__Job__c"
JBA = "bpats__Job_Board_Application__c"
ID = "a0MEm000004fFnBMAU"


def _describes() -> dict:
    names = ["bpats__Job_Board_Application__c", "bpats__Job__c", "Contact", "Account"]
    return {
        n: json.loads((ROOT / "ats_gateway/schemas/objects" / f"{n}.json").read_text())
        for n in names
    }


@pytest.fixture
def portal(sf_redis, rsps):
    return SalesforceClient(settings("job_portal"), sf_redis, describes=_describes())


@pytest.fixture
def feedback(sf_redis, rsps):
    return SalesforceClient(settings("interview_feedback"), sf_redis)


REFUSED_FOR_PORTAL = [
    lambda c: c.update(JOB, ID, {"Name": "x"}),
    lambda c: c.delete(JOB, ID),
    lambda c: c.create(JOB, {"Name": "x"}),
    lambda c: c.get("Account", "001D000000IqhSLIAZ"),
    # ([14] grants Edit on applications and Contacts, which upserts need; never on jobs)
    lambda c: c.update(JOB, ID, {"bpats__Status__c": "Closed"}),
    lambda c: c.upsert(JOB, "Name", "x", {"bpats__Status__c": "Open"}),
    lambda c: c.collections_delete(JBA, [ID], all_or_none=False),
    lambda c: c.collections_update(JOB, [{"Id": ID}], all_or_none=False),
    lambda c: c.bulk_create("bpats__Interview_Feedback__c", [{}]),
    lambda c: c.tree("Account", [{"Name": "x"}]),
    lambda c: c.tree(
        "Contact",
        [{"LastName": "x", "Notes": {"records": [{"attributes": {"type": "Note"}}]}}],
    ),
    lambda c: c.query("SELECT Id FROM Account"),
    lambda c: c.query("SELECT Id, bpats__Account__r.Name FROM bpats__Job__c"),
    lambda c: c.query("SELECT Id, Owner.Email FROM bpats__Job__c"),
    lambda c: c.query(
        "SELECT Id, (SELECT Id FROM ContentDocumentLinks) FROM bpats__Job_Board_Application__c"
    ),
    lambda c: c.query(
        "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Name = 'x')"
    ),
    lambda c: c.query(select("Id").from_("Account")),
    lambda c: c.query_many(["SELECT Id FROM Contact", "SELECT Id FROM Account"]),
    lambda c: c.composite([Subrequest("DELETE", f"/sobjects/{JOB}/{ID}", "d")]),
    lambda c: c.composite([Subrequest("GET", "/query?q=SELECT+Id+FROM+Account", "q")]),
    lambda c: c.composite(
        [
            Subrequest(
                "POST",
                "/composite/sobjects",
                "c",
                {"allOrNone": False, "records": [{"attributes": {"type": "Account"}}]},
            )
        ]
    ),
    lambda c: c.composite([Subrequest("GET", "/sobjects/Account/describe", "d")]),
    lambda c: c.composite([Subrequest("POST", "/apexrest/anything", "x")]),
    lambda c: c.composite(
        [Subrequest("GET", "/sobjects/Contact/003D000000IqhSLIAZ/Account", "traverse")]
    ),
    lambda c: c.query(
        "SELECT TYPEOF Owner WHEN User THEN Email END FROM bpats__Job_Board_Application__c"
    ),
]


@pytest.mark.parametrize("call", REFUSED_FOR_PORTAL)
def test_job_portal_refuses_everything_outside_its_grants(portal, call):
    with pytest.raises(OperationNotAllowed) as info:
        call(portal)
    assert isinstance(info.value, PermissionDenied)
    assert "job_portal" in info.value.message
    assert portal.api_calls == 0


REFUSED_FOR_FEEDBACK = [
    lambda c: c.create("Contact", {"LastName": "x"}),
    lambda c: c.query("SELECT Id FROM bpats__Job__c"),
    lambda c: c.create_file("a.pdf", "a.pdf", b"x"),
    lambda c: c.delete("bpats__Interview_Feedback__c", ID),
    lambda c: c.update("bpats__Interview__c", ID, {"bpats__Status__c": "Completed"}),
    # relationship paths cannot be checked without describe metadata: refused, not guessed
    lambda c: c.query("SELECT Id, bpats__Job__r.Name FROM bpats__Interview__c"),
]


@pytest.mark.parametrize("call", REFUSED_FOR_FEEDBACK)
def test_interview_feedback_refuses_everything_outside_its_grants(feedback, call):
    with pytest.raises(OperationNotAllowed):
        call(feedback)
    assert feedback.api_calls == 0


def test_unknown_connections_are_granted_nothing(sf_redis, rsps):
    client = SalesforceClient(settings("somebody_else"), sf_redis)
    with pytest.raises(OperationNotAllowed):
        client.query("SELECT Id FROM Contact")


def test_grants_from_the_permission_set_files_match_the_defaults():
    docs = {
        p.stem: tomllib.loads(p.read_text())
        for p in (ROOT / "ats_gateway/schemas/permission_sets").glob("*.toml")
    }
    portal = Grants.from_permission_sets(
        docs["asymbl_ats_job_portal"], docs["ats_gateway_candidate_intake"]
    )
    feedback = Grants.from_permission_sets(docs["external_interview_feedback"])
    assert portal == DEFAULT_GRANTS["job_portal"]
    assert feedback == DEFAULT_GRANTS["interview_feedback"]


def test_granted_relationship_paths_are_resolved_with_describes(portal, rsps):
    """Applications may read their Job (granted) through bpats__Job__r; the query is sent."""
    rsps.post(
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dx!tok", "instance_url": "https://na1.salesforce.com"},
    )
    rsps.get(
        "https://na1.salesforce.com/services/data/v62.0/query",
        json={"totalSize": 0, "done": True, "records": []},
    )
    q = (
        "SELECT Id, bpats__Job__r.Name, bpats__Contact__r.Email, "
        "(SELECT Id FROM bpats__Job_Board_Applications__r) FROM bpats__Job__c"
    )
    # bpats__Job__c has no bpats__Job__r: the describe check reports a malformed query
    with pytest.raises(MalformedQuery):
        portal.query(q)
    ok = (
        "SELECT Id, bpats__Job__r.Name, bpats__Contact__r.Email FROM "
        "bpats__Job_Board_Application__c WHERE bpats__Job__r.bpats__Status__c = 'Open'"
    )
    assert list(portal.query(ok)) == []
    assert portal.api_calls == 1


def test_get_takes_plain_field_names_only(portal):
    with pytest.raises(ValueError, match="plain field name"):
        portal.get("Contact", "003D000000IqhSLIAZ", ["Id", "Account.Name"])


def test_a_builder_query_brings_its_own_describes(sf_redis, rsps):
    names = ["bpats__Interview_Feedback__c", "bpats__Interview__c", "bpats__Job__c"]
    catalog = {
        n: json.loads((ROOT / "ats_gateway/schemas/objects" / f"{n}.json").read_text())
        for n in names
    }
    client = SalesforceClient(settings("interview_feedback"), sf_redis)  # no describes itself
    rsps.post(
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dx!tok", "instance_url": "https://na1.salesforce.com"},
    )
    rsps.get(
        "https://na1.salesforce.com/services/data/v62.0/query",
        json={"totalSize": 0, "done": True, "records": []},
    )
    granted = select("Id", "bpats__Interview__r.Name").from_(names[0], describes=catalog)
    assert list(client.query(granted)) == []
    job = select("Id", "bpats__Interview__r.bpats__Job__r.Name").from_(names[0], describes=catalog)
    with pytest.raises(OperationNotAllowed, match="bpats__Job__c"):
        client.query(job)
