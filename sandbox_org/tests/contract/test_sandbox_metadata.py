"""Versions, resources, limits, describe global, describe (304, runtime changes), basic info."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from sandbox_org.describe_builder import build_all, dump

from .conftest import VERSION, error_of

SCHEMAS = Path(__file__).resolve().parents[2] / "data"

# Every key of a real describe field entry (wire-shapes §4b, recorded Account describe).
FIELD_KEYS = {
    "aggregatable", "aiPredictionField", "autoNumber", "byteLength", "calculated",
    "calculatedFormula", "cascadeDelete", "caseSensitive", "compoundFieldName", "controllerName",
    "createable", "custom", "defaultValue", "defaultValueFormula", "defaultedOnCreate",
    "dependentPicklist", "deprecatedAndHidden", "digits", "displayLocationInDecimal", "encrypted",
    "externalId", "extraTypeInfo", "filterable", "filteredLookupInfo",
    "formulaTreatNullNumberAsZero", "groupable", "highScaleNumber", "htmlFormatted", "idLookup",
    "inlineHelpText", "label", "length", "mask", "maskType", "name", "nameField", "namePointing",
    "nillable", "permissionable", "picklistValues", "polymorphicForeignKey", "precision",
    "queryByDistance", "referenceTargetField", "referenceTo", "relationshipName",
    "relationshipOrder", "restrictedDelete", "restrictedPicklist", "scale", "searchPrefilterable",
    "soapType", "sortable", "type", "unique", "updateable", "writeRequiresMasterRead",
}  # fmt: skip
TOP_KEYS = {
    "actionOverrides", "activateable", "childRelationships", "compactLayoutable", "createable",
    "custom", "customSetting", "deepCloneable", "defaultImplementation", "deletable",
    "deprecatedAndHidden", "extendedBy", "extendsInterfaces", "feedEnabled", "fields",
    "hasSubtypes", "implementedBy", "implementsInterfaces", "isInterface", "isSubtype",
    "keyPrefix", "label", "labelPlural", "layoutable", "listviewable", "lookupLayoutable",
    "mergeable", "mruEnabled", "name", "namedLayoutInfos", "networkScopeFieldName", "queryable",
    "recordTypeInfos", "replicateable", "retrieveable", "searchLayoutable", "searchable",
    "supportedScopes", "triggerable", "undeletable", "updateable", "urls",
}  # fmt: skip
OBJECTS = [
    "Account",
    "Contact",
    "User",
    "ContentVersion",
    "bpats__Job__c",
    "bpats__Job_Board_Application__c",
    "bpats__Interview_Template__c",
    "bpats__Interview_Topic__c",
    "bpats__Interview_Template_Detail__c",
    "bpats__Interview__c",
    "bpats__Interview_Feedback__c",
    "bpats__Interview_Topic_Feedback__c",
]


def test_snapshots_are_reproducible_from_the_builder():
    for name, describe in build_all().items():
        path = SCHEMAS / "objects" / f"{name}.json"
        assert path.read_text(encoding="utf-8") == dump(describe), name


@pytest.mark.parametrize("name", OBJECTS)
def test_snapshot_has_the_real_describe_shape(name):
    describe = json.loads((SCHEMAS / "objects" / f"{name}.json").read_text(encoding="utf-8"))
    assert set(describe) >= TOP_KEYS
    names = [f["name"] for f in describe["fields"]]
    for system in ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                   "LastModifiedById", "SystemModstamp"):  # fmt: skip
        assert system in names
    for f in describe["fields"]:
        assert set(f) == FIELD_KEYS, (name, f["name"])
        if f["type"] in ("string", "textarea", "email", "phone", "url", "picklist"):
            assert f["byteLength"] == 3 * f["length"]
        for p in f["picklistValues"]:
            assert set(p) == {"active", "defaultValue", "label", "validFor", "value"}
    for c in describe["childRelationships"]:
        assert {"childSObject", "field", "relationshipName", "cascadeDelete"} <= set(c)


def test_data_model_details():
    jba = json.loads((SCHEMAS / "objects" / "bpats__Job_Board_Application__c.json").read_text())
    fields = {f["name"]: f for f in jba["fields"]}
    assert fields["Name"]["autoNumber"] and not fields["Name"]["createable"]
    assert fields["bpats__Job__c"]["relationshipName"] == "bpats__Job__r"
    assert fields["bpats__Status__c"]["restrictedPicklist"]
    assert [
        p["value"] for p in fields["bpats__Status__c"]["picklistValues"] if p["defaultValue"]
    ] == ["New"]
    job = json.loads((SCHEMAS / "objects" / "bpats__Job__c.json").read_text())
    assert job["keyPrefix"] == "a0M"
    rels = {c["relationshipName"]: c for c in job["childRelationships"]}
    assert rels["bpats__Job_Board_Applications__r"]["childSObject"] == (
        "bpats__Job_Board_Application__c"
    )
    salary = next(f for f in job["fields"] if f["name"] == "bpats__Salary_Min__c")
    assert (salary["type"], salary["precision"], salary["scale"], salary["soapType"]) == (
        "currency",
        16,
        2,
        "xsd:double",
    )
    detail = json.loads((SCHEMAS / "objects" / "bpats__Interview_Feedback__c.json").read_text())
    assert "OwnerId" not in {f["name"] for f in detail["fields"]}  # master-detail child


def test_versions_need_no_session(org):
    r = requests.get(f"{org.url}/services/data/", timeout=10)
    assert r.status_code == 200
    versions = r.json()
    assert {"label", "url", "version"} == set(versions[0])
    assert any(
        v["version"] == VERSION and v["url"] == f"/services/data/v{VERSION}" for v in versions
    )
    assert "Sforce-Limit-Info" not in r.headers


def test_unknown_version_is_404(admin):
    r = admin.session.get(f"{admin.root}/services/data/v12.0/limits", timeout=10)
    assert r.status_code == 404
    assert error_of(r)["errorCode"] == "NOT_FOUND"


def test_resources_and_limits(admin):
    r = admin.get("/")
    assert r.status_code == 200
    assert r.json()["sobjects"] == f"/services/data/v{VERSION}/sobjects"
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    limits = admin.get("/limits").json()
    assert set(limits["DailyApiRequests"]) >= {"Max", "Remaining"}
    _used, limit = r.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    assert limits["DailyApiRequests"]["Max"] == int(limit)


def test_describe_global_lists_only_readable_objects(admin, portal):
    everything = {s["name"] for s in admin.get("/sobjects").json()["sobjects"]}
    assert set(OBJECTS) <= everything
    body = portal.get("/sobjects").json()
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    visible = {s["name"]: s for s in body["sobjects"]}
    assert "bpats__Interview__c" not in visible
    assert visible["bpats__Job__c"]["queryable"] is True
    assert visible["bpats__Job__c"]["createable"] is False
    assert visible["bpats__Job_Board_Application__c"]["createable"] is True
    assert visible["bpats__Job_Board_Application__c"]["deletable"] is False


def test_describe_flags_follow_the_caller(admin, portal, feedback):
    path = "/sobjects/bpats__Job_Board_Application__c/describe"
    a, p = admin.get(path).json(), portal.get(path).json()
    assert (a["createable"], a["updateable"], a["deletable"]) == (True, True, True)
    # updateable: ATS Gateway Candidate Intake grants edit, for upserts by ATS_Gateway_Id__c
    assert (p["createable"], p["updateable"], p["deletable"], p["queryable"]) == (
        True,
        True,
        False,
        True,
    )
    assert (
        p["urls"]["describe"]
        == f"/services/data/v{VERSION}/sobjects/bpats__Job_Board_Application__c/describe"
    )
    f = feedback.get("/sobjects/bpats__Interview_Feedback__c/describe").json()
    assert (f["createable"], f["updateable"], f["deletable"]) == (True, True, False)
    assert portal.get("/sobjects/bpats__Interview__c/describe").status_code == 404


def test_describe_304_when_not_modified(admin):
    r = admin.get("/sobjects/Contact/describe")
    assert r.status_code == 200
    last = r.headers["Last-Modified"]
    assert parsedate_to_datetime(last).tzinfo is not None
    again = admin.get("/sobjects/Contact/describe", headers={"If-Modified-Since": last})
    assert again.status_code == 304
    assert again.content == b""
    older = admin.get(
        "/sobjects/Contact/describe", headers={"If-Modified-Since": "Wed, 3 Jul 2013 19:43:31 GMT"}
    )
    assert older.status_code == 200
    glob = admin.get(
        "/sobjects", headers={"If-Modified-Since": admin.get("/sobjects").headers["Last-Modified"]}
    )
    assert glob.status_code == 304


def test_admin_picklist_and_length_changes_bump_last_modified(fresh):
    api = fresh.client("admin")
    path = "/sobjects/bpats__Job__c/describe"
    first = api.get(path)
    r = requests.patch(
        f"{fresh.url}/__sandbox__/objects/bpats__Job__c/fields/bpats__Status__c",
        json={"add_picklist_values": ["Draft"], "deactivate_picklist_values": ["Cancelled"]},
        timeout=10,
    )
    assert r.status_code == 200
    after = api.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert after.status_code == 200
    status = next(f for f in after.json()["fields"] if f["name"] == "bpats__Status__c")
    values = {p["value"]: p["active"] for p in status["picklistValues"]}
    assert values["Draft"] is True and values["Cancelled"] is False
    # the new value is accepted, the deactivated one is not
    assert (
        api.post(
            "/sobjects/bpats__Job__c", json={"Name": "J", "bpats__Status__c": "Draft"}
        ).status_code
        == 201
    )
    bad = api.post("/sobjects/bpats__Job__c", json={"Name": "J", "bpats__Status__c": "Cancelled"})
    assert error_of(bad)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    requests.patch(
        f"{fresh.url}/__sandbox__/objects/bpats__Job__c/fields/bpats__City__c",
        json={"length": 5},
        timeout=10,
    )
    too_long = api.post("/sobjects/bpats__Job__c", json={"Name": "J", "bpats__City__c": "Berlin"})
    assert error_of(too_long) == {
        "message": "City: data value too large: Berlin (max length=5)",
        "errorCode": "STRING_TOO_LONG",
        "fields": ["bpats__City__c"],
    }


def test_basic_info(admin):
    r = admin.get("/sobjects/bpats__Job__c")
    assert r.status_code == 200
    body = r.json()
    assert body["objectDescribe"]["name"] == "bpats__Job__c"
    assert body["objectDescribe"]["keyPrefix"] == "a0M"
    assert "recentItems" in body


def test_unknown_object_is_404(admin):
    r = admin.get("/sobjects/Nope__c/describe")
    assert r.status_code == 404
    assert error_of(r) == {
        "message": "The requested resource does not exist",
        "errorCode": "NOT_FOUND",
    }


def test_record_count(admin):
    r = admin.get("/limits/recordCount", params={"sObjects": "bpats__Job__c"})
    assert r.status_code == 200
    assert r.json()["sObjects"][0]["name"] == "bpats__Job__c"
    assert r.json()["sObjects"][0]["count"] >= 500
