"""Build the describe snapshots in ``sandbox_org/data/objects/*.json`` from a compact model.

The model below is DATA_MODEL.md written as code. Every field entry carries every key a real
``/sobjects/X/describe`` field has (salesforce-wire-shapes.md §4b, from a recorded Account
describe), with explicit nulls, in the alphabetical order real orgs emit. Run it to regenerate:

    .venv/bin/python -m sandbox_org.describe_builder [sandbox_org/data/objects]

Auto-number display formats are not part of a real describe, so they live in
``AUTO_NUMBER_FORMATS`` here and the sandbox reads them from this module.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT_VERSION = "v62.0"

# Auto-number display formats (object -> format). Not in a describe; used by the sandbox store.
AUTO_NUMBER_FORMATS: dict[str, str] = {
    "bpats__Job_Board_Application__c": "JBA-{000000}",
    "bpats__Interview_Template_Detail__c": "ITD-{0000}",
    "bpats__Interview__c": "INT-{00000}",
    "bpats__Interview_Feedback__c": "IF-{00000}",
    "bpats__Interview_Topic_Feedback__c": "ITF-{00000}",
}

_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "picklist": "xsd:string",
    "multipicklist": "xsd:string",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "base64": "xsd:base64Binary",
}
_TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist"}


def field(
    name: str,
    label: str,
    ftype: str,
    *,
    length: int = 0,
    required: bool = False,
    createable: bool = True,
    updateable: bool = True,
    defaulted: bool = False,
    default: Any = None,
    values: list[str] | None = None,
    default_value: str | None = None,
    restricted: bool = False,
    reference_to: list[str] | None = None,
    relationship_name: str | None = None,
    master_detail: bool = False,
    precision: int = 0,
    scale: int = 0,
    digits: int = 0,
    external_id: bool = False,
    unique: bool = False,
    id_lookup: bool = False,
    name_field: bool = False,
    auto_number: bool = False,
    html: bool = False,
    custom: bool | None = None,
    polymorphic: bool = False,
) -> dict[str, Any]:
    """One describe field entry with every key present."""
    if custom is None:
        custom = name.endswith("__c")
    if ftype in ("id", "reference"):
        length = 18
    byte_length = length * 3 if ftype in _TEXT_TYPES else length
    if ftype == "base64":
        byte_length = length
    long_text = ftype == "textarea" and length > 255
    filterable = not long_text and ftype != "base64"
    sortable = filterable and ftype not in ("multipicklist",)
    groupable = sortable and ftype not in ("datetime", "currency", "double", "percent")
    aggregatable = ftype not in ("boolean", "base64") and not long_text and ftype != "multipicklist"
    nillable = not required
    if ftype == "boolean":
        nillable = False
        defaulted = True
        default = bool(default) if default is not None else False
    picklist_values = []
    if values:
        picklist_values = [
            {
                "active": True,
                "defaultValue": v == default_value,
                "label": v,
                "validFor": None,
                "value": v,
            }
            for v in values
        ]
        if default_value is not None:
            defaulted = True
    extra = None
    if ftype == "textarea":
        extra = "richtextarea" if html else ("plaintextarea" if length <= 255 else None)
        if extra is None and long_text:
            extra = "plaintextarea"
    if ftype == "url":
        extra = "url" if custom else None
    return {
        "aggregatable": aggregatable,
        "aiPredictionField": False,
        "autoNumber": auto_number,
        "byteLength": byte_length,
        "calculated": False,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": createable,
        "custom": custom,
        "defaultValue": default,
        "defaultValueFormula": None,
        "defaultedOnCreate": defaulted,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": digits,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": external_id,
        "extraTypeInfo": extra,
        "filterable": filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": groupable,
        "highScaleNumber": False,
        "htmlFormatted": html,
        "idLookup": id_lookup or ftype == "id" or external_id,
        "inlineHelpText": None,
        "label": label,
        "length": length,
        "mask": None,
        "maskType": None,
        "name": name,
        "nameField": name_field,
        "namePointing": False,
        "nillable": nillable,
        "permissionable": nillable and createable and not master_detail and ftype != "id",
        "picklistValues": picklist_values,
        "polymorphicForeignKey": polymorphic,
        "precision": precision,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(reference_to or []),
        "relationshipName": relationship_name,
        "relationshipOrder": 0 if master_detail else None,
        "restrictedDelete": False,
        "restrictedPicklist": restricted,
        "scale": scale,
        "searchPrefilterable": ftype == "reference",
        "soapType": _SOAP[ftype],
        "sortable": sortable,
        "type": ftype,
        "unique": unique,
        "updateable": updateable,
        "writeRequiresMasterRead": False,
    }


# --- field shorthands ------------------------------------------------------------------------


def text(name: str, label: str, length: int, **kw: Any) -> dict[str, Any]:
    return field(name, label, "string", length=length, **kw)


def picklist(name: str, label: str, values: list[str], **kw: Any) -> dict[str, Any]:
    kw.setdefault("length", 255)
    return field(name, label, "picklist", values=values, **kw)


def ref(name: str, label: str, target: str, rel: str | None = None, **kw: Any) -> dict[str, Any]:
    if rel is None:
        rel = name[:-3] + "__r" if name.endswith("__c") else name[:-2]
    return field(name, label, "reference", reference_to=[target], relationship_name=rel, **kw)


def gateway_key() -> dict[str, Any]:
    """``ATS_Gateway_Id__c``: the ATS gateway's own field (its setup creates it in the customer's
    org, unnamespaced): Text(64), External ID, Unique (case sensitive). The gateway upserts
    by it, so a write retried after an ambiguous failure updates instead of duplicating."""
    key = text("ATS_Gateway_Id__c", "ATS Gateway Id", 64, external_id=True, unique=True)
    key["caseSensitive"] = True
    return key


def master(name: str, label: str, target: str) -> dict[str, Any]:
    # Master-detail: required, not reparentable (updateable false), cascade delete.
    return ref(name, label, target, required=True, updateable=False, master_detail=True)


def boolean(name: str, label: str, default: bool = False) -> dict[str, Any]:
    return field(name, label, "boolean", default=default)


# --- system fields ---------------------------------------------------------------------------


def id_field(label: str) -> dict[str, Any]:
    return field(
        "Id", label, "id", createable=False, updateable=False, defaulted=True, required=True
    )


def system_fields_after_name() -> list[dict[str, Any]]:
    audit = dict(createable=False, updateable=False, defaulted=True, required=True)
    return [
        field("CreatedDate", "Created Date", "datetime", **audit),
        ref("CreatedById", "Created By ID", "User", "CreatedBy", **audit),
        field("LastModifiedDate", "Last Modified Date", "datetime", **audit),
        ref("LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", **audit),
        field("SystemModstamp", "System Modstamp", "datetime", **audit),
    ]


def owner_field() -> dict[str, Any]:
    return ref("OwnerId", "Owner ID", "User", "Owner", required=True, defaulted=True)


def is_deleted() -> dict[str, Any]:
    return field("IsDeleted", "Deleted", "boolean", createable=False, updateable=False)


def custom_object_fields(
    label: str, name_field: dict[str, Any], *, detail: bool, fields: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    head = [id_field("Record ID")]
    if not detail:
        head.append(owner_field())
    head += [is_deleted(), name_field, *system_fields_after_name()]
    return head + fields


def name_text(label: str, length: int = 80) -> dict[str, Any]:
    return text("Name", label, length, name_field=True, id_lookup=True, custom=False)


def name_auto(label: str) -> dict[str, Any]:
    return field(
        "Name",
        label,
        "string",
        length=30,
        createable=False,
        updateable=False,
        defaulted=True,
        required=True,
        name_field=True,
        id_lookup=True,
        auto_number=True,
        custom=False,
    )


# --- the model -------------------------------------------------------------------------------

RATINGS = ["1 - Poor", "2 - Fair", "3 - Good", "4 - Very Good", "5 - Excellent"]


def _objects() -> list[dict[str, Any]]:
    """(object spec) list: name, label, labelPlural, keyPrefix, custom, fields."""
    return [
        {
            "name": "Account",
            "label": "Account",
            "labelPlural": "Accounts",
            "keyPrefix": "001",
            "fields": [
                id_field("Account ID"),
                is_deleted(),
                text("Name", "Account Name", 255, required=True, name_field=True, id_lookup=True),
                field("Website", "Website", "url", length=255),
                picklist(
                    "Industry",
                    "Industry",
                    [
                        "Agriculture",
                        "Banking",
                        "Consulting",
                        "Education",
                        "Energy",
                        "Finance",
                        "Healthcare",
                        "Manufacturing",
                        "Media",
                        "Retail",
                        "Technology",
                        "Other",
                    ],
                    length=40,
                ),
                owner_field(),
                *system_fields_after_name(),
            ],
        },
        {
            "name": "Contact",
            "label": "Contact",
            "labelPlural": "Contacts",
            "keyPrefix": "003",
            "fields": [
                id_field("Contact ID"),
                is_deleted(),
                ref("AccountId", "Account ID", "Account"),
                text("LastName", "Last Name", 80, required=True),
                text("FirstName", "First Name", 40),
                field(
                    "Name",
                    "Full Name",
                    "string",
                    length=121,
                    createable=False,
                    updateable=False,
                    name_field=True,
                    id_lookup=True,
                ),
                text("MailingCity", "Mailing City", 40),
                text("MailingState", "Mailing State/Province", 80),
                text("MailingCountry", "Mailing Country", 80),
                field("Phone", "Business Phone", "phone", length=40),
                field("MobilePhone", "Mobile Phone", "phone", length=40),
                field("Email", "Email", "email", length=80, id_lookup=True),
                text("Title", "Title", 128),
                gateway_key(),
                owner_field(),
                *system_fields_after_name(),
            ],
        },
        {
            "name": "User",
            "label": "User",
            "labelPlural": "Users",
            "keyPrefix": "005",
            "fields": [
                id_field("User ID"),
                is_deleted(),
                text("Username", "Username", 80, required=True, unique=True, id_lookup=True),
                text("LastName", "Last Name", 80, required=True),
                text("FirstName", "First Name", 40),
                field(
                    "Name",
                    "Full Name",
                    "string",
                    length=121,
                    createable=False,
                    updateable=False,
                    name_field=True,
                    id_lookup=True,
                ),
                field("Email", "Email", "email", length=128, required=True),
                text("Alias", "Alias", 8, required=True),
                boolean("IsActive", "Active", default=True),
                *system_fields_after_name(),
            ],
        },
        {
            "name": "ContentVersion",
            "label": "Content Version",
            "labelPlural": "Content Versions",
            "keyPrefix": "068",
            "fields": [
                id_field("ContentVersion ID"),
                ref(
                    "ContentDocumentId",
                    "ContentDocument ID",
                    "ContentDocument",
                    createable=False,
                    updateable=False,
                    defaulted=True,
                    required=True,
                ),
                boolean("IsLatest", "Is Latest", default=True) | {"createable": False},
                text("VersionNumber", "Version Number", 20, createable=False, updateable=False),
                text("Title", "Title", 255, required=True, name_field=True, id_lookup=False),
                text("PathOnClient", "Path On Client", 500, required=True, updateable=False),
                field("VersionData", "Version Data", "base64", length=52428800, required=True),
                field(
                    "ContentSize",
                    "Size",
                    "int",
                    digits=9,
                    createable=False,
                    updateable=False,
                ),
                text("FileType", "File Type", 20, createable=False, updateable=False),
                text("FileExtension", "File Extension", 40, createable=False, updateable=False),
                ref(
                    "FirstPublishLocationId",
                    "First Publish Location ID",
                    "Account",
                    "FirstPublishLocation",
                    updateable=False,
                    polymorphic=True,
                ),
                owner_field(),
                is_deleted(),
                gateway_key(),
                *system_fields_after_name(),
            ],
        },
        {
            "name": "ContentDocument",
            "label": "Content Document",
            "labelPlural": "Content Documents",
            "keyPrefix": "069",
            "fields": [
                id_field("ContentDocument ID"),
                ref("OwnerId", "Owner ID", "User", "Owner", required=True, defaulted=True),
                is_deleted(),
                text("Title", "Title", 255, required=True, name_field=True),
                ref(
                    "LatestPublishedVersionId",
                    "Latest Published Version ID",
                    "ContentVersion",
                    "LatestPublishedVersion",
                    createable=False,
                ),
                field("ContentSize", "Size", "int", digits=9, createable=False, updateable=False),
                text("FileType", "File Type", 20, createable=False, updateable=False),
                text("FileExtension", "File Extension", 40, createable=False, updateable=False),
                *system_fields_after_name(),
            ],
        },
        {
            "name": "ContentDocumentLink",
            "label": "Content Document Link",
            "labelPlural": "Content Document Links",
            "keyPrefix": "06A",
            "fields": [
                id_field("ContentDocumentLink ID"),
                ref(
                    "LinkedEntityId",
                    "Linked Entity ID",
                    "Account",
                    "LinkedEntity",
                    required=True,
                    updateable=False,
                    polymorphic=True,
                ),
                ref(
                    "ContentDocumentId",
                    "ContentDocument ID",
                    "ContentDocument",
                    required=True,
                    updateable=False,
                ),
                is_deleted(),
                field("SystemModstamp", "System Modstamp", "datetime", createable=False)
                | {"updateable": False, "defaultedOnCreate": True, "nillable": False},
                picklist(
                    "ShareType",
                    "Share Type",
                    ["V", "C", "I"],
                    length=40,
                    restricted=True,
                    default_value="V",
                ),
                picklist(
                    "Visibility",
                    "Visibility",
                    ["AllUsers", "InternalUsers", "SharedUsers"],
                    length=40,
                    restricted=True,
                    default_value="AllUsers",
                ),
            ],
        },
        {
            "name": "bpats__Job__c",
            "label": "Job",
            "labelPlural": "Jobs",
            "keyPrefix": "a0M",
            "fields": custom_object_fields(
                "Job",
                name_text("Job Name"),
                detail=False,
                fields=[
                    text("bpats__Job_Title__c", "Job Title", 255),
                    picklist(
                        "bpats__Status__c",
                        "Status",
                        ["Open", "On Hold", "Filled", "Closed", "Cancelled"],
                        restricted=True,
                    ),
                    field("bpats__End_Date__c", "End Date", "date"),
                    field("bpats__Date_Posted__c", "Date Posted", "date"),
                    boolean("bpats__Post_to_Job_Board__c", "Post to Job Board", default=False),
                    picklist(
                        "bpats__Department__c",
                        "Department",
                        [
                            "Engineering",
                            "Sales",
                            "Marketing",
                            "Finance",
                            "Operations",
                            "Customer Success",
                            "People",
                            "Legal",
                        ],
                        restricted=True,
                    ),
                    picklist(
                        "bpats__Employment_Type__c",
                        "Employment Type",
                        [
                            "Full-time",
                            "Part-time",
                            "Contract",
                            "Contract to Hire",
                            "Temporary",
                            "Internship",
                        ],
                        restricted=True,
                    ),
                    picklist(
                        "bpats__Workplace_Type__c",
                        "Workplace Type",
                        ["On-site", "Hybrid", "Remote"],
                        restricted=True,
                    ),
                    text("bpats__City__c", "City", 40),
                    text("bpats__State__c", "State", 80),
                    text("bpats__Country__c", "Country", 80),
                    text("bpats__Postal_Code__c", "Postal Code", 20),
                    field(
                        "bpats__Description__c",
                        "Description",
                        "textarea",
                        length=32768,
                        html=True,
                    ),
                    field(
                        "bpats__Salary_Min__c",
                        "Salary Min",
                        "currency",
                        precision=16,
                        scale=2,
                    ),
                    field(
                        "bpats__Salary_Max__c",
                        "Salary Max",
                        "currency",
                        precision=16,
                        scale=2,
                    ),
                    picklist(
                        "bpats__Salary_Currency__c",
                        "Salary Currency",
                        ["USD", "EUR", "GBP", "CAD", "AUD", "INR"],
                        restricted=True,
                    ),
                    picklist(
                        "bpats__Salary_Period__c",
                        "Salary Period",
                        ["Hourly", "Annual"],
                        restricted=True,
                    ),
                    ref("bpats__Account__c", "Account", "Account"),
                    ref(
                        "bpats__Interview_Template__c",
                        "Interview Template",
                        "bpats__Interview_Template__c",
                    ),
                ],
            ),
        },
        {
            "name": "bpats__Job_Board_Application__c",
            "label": "Job Board Application",
            "labelPlural": "Job Board Applications",
            "keyPrefix": "a0J",
            "fields": custom_object_fields(
                "Job Board Application",
                name_auto("Job Board Application Name"),
                detail=False,
                fields=[
                    ref("bpats__Contact__c", "Contact", "Contact", required=True),
                    ref("bpats__Job__c", "Job", "bpats__Job__c", required=True),
                    gateway_key(),
                    field("bpats__Email__c", "Email", "email", length=80, required=True),
                    text("bpats__First_Name__c", "First Name", 40, required=True),
                    text("bpats__Last_Name__c", "Last Name", 80, required=True),
                    field("bpats__Phone__c", "Phone", "phone", length=40),
                    field("bpats__LinkedIn_URL__c", "LinkedIn URL", "url", length=255),
                    field("bpats__Cover_Letter__c", "Cover Letter", "textarea", length=32000),
                    picklist(
                        "bpats__Source__c",
                        "Source",
                        ["Career Site", "LinkedIn", "Indeed", "Referral", "Job Board", "Other"],
                    ),
                    picklist(
                        "bpats__Status__c",
                        "Status",
                        ["New", "In Review", "Processed", "Rejected"],
                        restricted=True,
                        default_value="New",
                    ),
                    boolean("bpats__Consent__c", "Consent"),
                    field("bpats__Consent_Date__c", "Consent Date", "datetime"),
                    # The gateway's own field (not Asymbl's): full source attribution, [16].
                    text("ATS_Gateway_Source__c", "ATS Gateway Source", 255),
                ],
            ),
        },
        {
            "name": "bpats__Interview_Template__c",
            "label": "Interview Template",
            "labelPlural": "Interview Templates",
            "keyPrefix": "a0Q",
            "fields": custom_object_fields(
                "Interview Template",
                name_text("Interview Template Name"),
                detail=False,
                fields=[
                    boolean("bpats__Active__c", "Active", default=True),
                    field("bpats__Description__c", "Description", "textarea", length=255),
                ],
            ),
        },
        {
            "name": "bpats__Interview_Topic__c",
            "label": "Interview Topic",
            "labelPlural": "Interview Topics",
            "keyPrefix": "a0P",
            "fields": custom_object_fields(
                "Interview Topic",
                name_text("Interview Topic Name"),
                detail=False,
                fields=[
                    field("bpats__Description__c", "Description", "textarea", length=1000),
                    boolean("bpats__Active__c", "Active", default=True),
                ],
            ),
        },
        {
            "name": "bpats__Interview_Template_Detail__c",
            "label": "Interview Template Detail",
            "labelPlural": "Interview Template Details",
            "keyPrefix": "a0R",
            "fields": custom_object_fields(
                "Interview Template Detail",
                name_auto("Interview Template Detail Name"),
                detail=True,
                fields=[
                    master(
                        "bpats__Interview_Template__c",
                        "Interview Template",
                        "bpats__Interview_Template__c",
                    ),
                    ref(
                        "bpats__Interview_Topic__c",
                        "Interview Topic",
                        "bpats__Interview_Topic__c",
                        required=True,
                    ),
                    field("bpats__Order__c", "Order", "double", precision=3, scale=0),
                    boolean("bpats__Required__c", "Required"),
                ],
            ),
        },
        {
            "name": "bpats__Interview__c",
            "label": "Interview",
            "labelPlural": "Interviews",
            "keyPrefix": "a0I",
            "fields": custom_object_fields(
                "Interview",
                name_auto("Interview Name"),
                detail=False,
                fields=[
                    ref("bpats__Job__c", "Job", "bpats__Job__c"),
                    ref("bpats__Contact__c", "Candidate", "Contact"),
                    ref(
                        "bpats__Interview_Template__c",
                        "Interview Template",
                        "bpats__Interview_Template__c",
                    ),
                    field("bpats__Start_Date_Time__c", "Start Date Time", "datetime"),
                    field("bpats__End_Date_Time__c", "End Date Time", "datetime"),
                    picklist(
                        "bpats__Type__c",
                        "Type",
                        ["Phone Screen", "Video", "On-site", "Technical", "Panel"],
                        restricted=True,
                    ),
                    picklist(
                        "bpats__Status__c",
                        "Status",
                        ["Scheduled", "Completed", "Cancelled", "No Show"],
                        restricted=True,
                    ),
                    text("bpats__Location__c", "Location", 255),
                ],
            ),
        },
        {
            "name": "bpats__Interview_Feedback__c",
            "label": "Interview Feedback",
            "labelPlural": "Interview Feedback",
            "keyPrefix": "a0F",
            "fields": custom_object_fields(
                "Interview Feedback",
                name_auto("Interview Feedback Name"),
                detail=True,
                fields=[
                    master("bpats__Interview__c", "Interview", "bpats__Interview__c"),
                    ref("bpats__Interviewer__c", "Interviewer", "Contact"),
                    field("bpats__Interviewer_Email__c", "Interviewer Email", "email", length=80),
                    picklist(
                        "bpats__Overall_Rating__c", "Overall Rating", RATINGS, restricted=True
                    ),
                    picklist(
                        "bpats__Recommendation__c",
                        "Recommendation",
                        ["Strong Hire", "Hire", "No Hire", "Strong No Hire"],
                        restricted=True,
                    ),
                    field("bpats__Comments__c", "Comments", "textarea", length=32000),
                    field("bpats__Submitted_Date__c", "Submitted Date", "datetime"),
                ],
            ),
        },
        {
            "name": "bpats__Interview_Topic_Feedback__c",
            "label": "Interview Topic Feedback",
            "labelPlural": "Interview Topic Feedback",
            "keyPrefix": "a0T",
            "fields": custom_object_fields(
                "Interview Topic Feedback",
                name_auto("Interview Topic Feedback Name"),
                detail=True,
                fields=[
                    master(
                        "bpats__Interview_Feedback__c",
                        "Interview Feedback",
                        "bpats__Interview_Feedback__c",
                    ),
                    ref(
                        "bpats__Interview_Topic__c",
                        "Interview Topic",
                        "bpats__Interview_Topic__c",
                        required=True,
                    ),
                    picklist("bpats__Rating__c", "Rating", RATINGS, restricted=True),
                    field("bpats__Comments__c", "Comments", "textarea", length=5000),
                ],
            ),
        },
    ]


# Polymorphic lookups: every object a file can be published to / linked with.
_POLYMORPHIC_TARGETS = [
    "Account",
    "Contact",
    "User",
    "bpats__Job__c",
    "bpats__Job_Board_Application__c",
    "bpats__Interview__c",
    "bpats__Interview_Feedback__c",
]

# Child relationship names that differ from the default (the field's __r / plural name).
_CHILD_REL_NAMES = {
    ("Contact", "AccountId"): "Contacts",
    ("bpats__Job__c", "bpats__Account__c"): "bpats__Jobs__r",
    ("bpats__Job__c", "bpats__Interview_Template__c"): "bpats__Jobs__r",
    ("bpats__Job_Board_Application__c", "bpats__Contact__c"): "bpats__Job_Board_Applications__r",
    ("bpats__Job_Board_Application__c", "bpats__Job__c"): "bpats__Job_Board_Applications__r",
    ("bpats__Interview__c", "bpats__Job__c"): "bpats__Interviews__r",
    ("bpats__Interview__c", "bpats__Contact__c"): "bpats__Interviews__r",
    ("bpats__Interview__c", "bpats__Interview_Template__c"): "bpats__Interviews__r",
    (
        "bpats__Interview_Template_Detail__c",
        "bpats__Interview_Template__c",
    ): "bpats__Interview_Template_Details__r",
    (
        "bpats__Interview_Template_Detail__c",
        "bpats__Interview_Topic__c",
    ): "bpats__Interview_Template_Details__r",
    ("bpats__Interview_Feedback__c", "bpats__Interview__c"): "bpats__Interview_Feedback__r",
    ("bpats__Interview_Feedback__c", "bpats__Interviewer__c"): "bpats__Interview_Feedback__r",
    (
        "bpats__Interview_Topic_Feedback__c",
        "bpats__Interview_Feedback__c",
    ): "bpats__Interview_Topic_Feedback__r",
    (
        "bpats__Interview_Topic_Feedback__c",
        "bpats__Interview_Topic__c",
    ): "bpats__Interview_Topic_Feedback__r",
    ("ContentVersion", "ContentDocumentId"): "ContentVersions",
    ("ContentDocumentLink", "ContentDocumentId"): "ContentDocumentLinks",
    ("ContentDocumentLink", "LinkedEntityId"): "ContentDocumentLinks",
    ("ContentVersion", "FirstPublishLocationId"): None,
}

_SYSTEM_REFS = {"OwnerId", "CreatedById", "LastModifiedById"}


def _urls(name: str, custom: bool) -> dict[str, str]:
    base = f"/services/data/{SNAPSHOT_VERSION}/sobjects/{name}"
    urls = {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }
    if custom:
        urls.pop("defaultValues")
    return urls


def build_all() -> dict[str, dict[str, Any]]:
    """Every describe, keyed by object API name, in describe key order."""
    specs = _objects()
    for spec in specs:
        for f in spec["fields"]:
            if f["polymorphicForeignKey"]:
                f["referenceTo"] = list(_POLYMORPHIC_TARGETS)
    children: dict[str, list[dict[str, Any]]] = {s["name"]: [] for s in specs}
    for spec in specs:
        for f in spec["fields"]:
            if f["type"] != "reference" or f["name"] in _SYSTEM_REFS:
                continue
            for target in f["referenceTo"]:
                if target not in children:
                    continue
                key = (spec["name"], f["name"])
                rel = _CHILD_REL_NAMES.get(key, f["relationshipName"])
                children[target].append(
                    {
                        "cascadeDelete": f["relationshipOrder"] is not None,
                        "childSObject": spec["name"],
                        "deprecatedAndHidden": False,
                        "field": f["name"],
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": rel,
                        "restrictedDelete": False,
                    }
                )
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name = spec["name"]
        custom = name.endswith("__c")
        readonly = name in ("User", "ContentDocument")
        out[name] = {
            "actionOverrides": [],
            "activateable": False,
            "childRelationships": sorted(
                children[name], key=lambda c: (c["childSObject"], c["field"])
            ),
            "compactLayoutable": True,
            "createable": not readonly,
            "custom": custom,
            "customSetting": False,
            "deepCloneable": False,
            "defaultImplementation": None,
            "deletable": name != "User",
            "deprecatedAndHidden": False,
            "extendedBy": None,
            "extendsInterfaces": None,
            "feedEnabled": not custom and name in ("Account", "Contact", "User"),
            "fields": spec["fields"],
            "hasSubtypes": False,
            "implementedBy": None,
            "implementsInterfaces": None,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": spec["keyPrefix"],
            "label": spec["label"],
            "labelPlural": spec["labelPlural"],
            "layoutable": True,
            "listviewable": None,
            "lookupLayoutable": None,
            "mergeable": name in ("Account", "Contact"),
            "mruEnabled": True,
            "name": name,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "queryable": True,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {
                        "layout": f"/services/data/{SNAPSHOT_VERSION}/sobjects/{name}"
                        "/describe/layouts/012000000000000AAA"
                    },
                }
            ],
            "replicateable": True,
            "retrieveable": True,
            "searchLayoutable": True,
            "searchable": name not in ("ContentDocumentLink",),
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [
                {"label": "All " + spec["labelPlural"].lower(), "name": "everything"},
                {"label": "My " + spec["labelPlural"].lower(), "name": "mine"},
            ],
            "triggerable": True,
            "undeletable": name != "User",
            "updateable": name != "ContentDocumentLink",
            "urls": _urls(name, custom),
        }
    return out


def dump(describe: dict[str, Any]) -> str:
    """Stable text of one snapshot: describe key order, indent 2, trailing newline."""
    return json.dumps(describe, indent=2, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, describe in build_all().items():
        path = directory / f"{name}.json"
        path.write_text(dump(describe), encoding="utf-8")
        written.append(path)
    return written


def default_schemas_dir() -> Path:
    """The sandbox org's data model: ``sandbox_org/data`` (describes and permission sets)."""
    return Path(__file__).resolve().parent / "data"


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default_schemas_dir() / "objects"
    for p in write_all(target):
        print(p)
