"""Describe dicts indexed for case-insensitive lookups, and field type categories."""

from __future__ import annotations

from typing import Any

TEXT = "text"
MULTI = "multi"
ID = "id"
BOOL = "bool"
NUM = "num"
DATE = "date"
DATETIME = "datetime"
OTHER = "other"

_CATEGORIES = {
    "string": TEXT,
    "textarea": TEXT,
    "email": TEXT,
    "phone": TEXT,
    "url": TEXT,
    "picklist": TEXT,
    "combobox": TEXT,
    "encryptedstring": TEXT,
    "time": TEXT,
    "anytype": TEXT,
    "multipicklist": MULTI,
    "id": ID,
    "reference": ID,
    "boolean": BOOL,
    "int": NUM,
    "long": NUM,
    "double": NUM,
    "currency": NUM,
    "percent": NUM,
    "date": DATE,
    "datetime": DATETIME,
}

# The type word Salesforce uses in "must be of type X" when a describe has no soapType.
_SOAP_WORDS = {TEXT: "string", MULTI: "string", ID: "id", BOOL: "boolean", NUM: "double"}
_SOAP_WORDS.update({DATE: "date", DATETIME: "dateTime", OTHER: "string"})


def category(field: dict[str, Any]) -> str:
    return _CATEGORIES.get(str(field.get("type", "")).lower(), OTHER)


def soap_word(field: dict[str, Any]) -> str:
    soap = field.get("soapType")
    if isinstance(soap, str) and ":" in soap:
        word = soap.split(":", 1)[1]
        return "id" if word == "ID" else word
    return _SOAP_WORDS[category(field)]


class ObjectInfo:
    """One describe, with its fields, parent relationships and child relationships by
    lower-case name."""

    __slots__ = ("children", "describe", "fields", "key_prefix", "name", "relationships")

    def __init__(self, describe: dict[str, Any]) -> None:
        self.describe = describe
        self.name: str = describe["name"]
        self.key_prefix: str | None = describe.get("keyPrefix")
        fields = describe.get("fields") or []
        self.fields: dict[str, dict[str, Any]] = {f["name"].lower(): f for f in fields}
        self.relationships: dict[str, dict[str, Any]] = {
            f["relationshipName"].lower(): f
            for f in fields
            if f.get("relationshipName") and f.get("referenceTo")
        }
        self.children: dict[str, dict[str, Any]] = {
            c["relationshipName"].lower(): c
            for c in describe.get("childRelationships") or []
            if c.get("relationshipName")
        }
