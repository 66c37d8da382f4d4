"""Record operations (create, update, upsert, delete, retrieve) with the org's validation.

Every failure is an ``SfError`` carrying the errorCode, message wording and fields Salesforce
uses (salesforce-wire-shapes.md §2c); callers render it as a REST error array or as a DML
result. Validation order: access, unknown / read-only fields, value types, required fields,
lengths / picklists / emails / references, custom validation rules, unique fields.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox_org import ids
from sandbox_org.errors import SfError, dml, insufficient_access, not_found
from sandbox_org.schema import ObjectSchema, Perms, Schema
from sandbox_org.store import Store

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DT_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_TEXT = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
_NUMBER = {"currency", "double", "percent", "int"}
# Base64 VersionData in a JSON body: 37.5 MB of encoded data (salesforce-wire-shapes.md §9).
MAX_BASE64_JSON = 39_321_600
# What a ContentVersion row stores in VersionData (the bytes live in the blob table).
BLOB_MARKER = "<blob>"
_FILE_TYPES = {
    "pdf": "PDF",
    "doc": "WORD",
    "docx": "WORD_X",
    "txt": "TEXT",
    "rtf": "RTF",
    "png": "PNG",
    "jpg": "JPG",
    "jpeg": "JPG",
    "gif": "GIF",
    "csv": "CSV",
    "html": "HTML",
    "odt": "ODT",
    "xls": "EXCEL",
    "xlsx": "EXCEL_X",
    "zip": "ZIP",
}


def now_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def parse_datetime(value: str) -> datetime | None:
    m = _DT_RE.match(value.strip())
    if not m:
        return None
    day, hh, mm, ss, frac, tz = m.groups()
    try:
        base = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss or '00'}")
    except ValueError:
        return None
    millis = int((frac or "0")[:3].ljust(3, "0"))
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    moment = base.replace(microsecond=millis * 1000) - timedelta(minutes=offset)
    return moment.replace(tzinfo=UTC)


@dataclass
class Caller:
    """Who is calling: user id and permissions, plus the request's API version."""

    user_id: str
    perms: Perms
    version: str = "62.0"


def _json_error(ftype: str, value: Any) -> SfError:
    kind = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(ftype, "double")
    if ftype == "int":
        kind = "int"
    shown = value
    token = "VALUE_STRING" if isinstance(value, str) else "VALUE_" + type(value).__name__.upper()
    return SfError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {shown} or request may be "
        "missing a required field",
    )


class Records:
    """The DML engine over a Schema and a Store."""

    def __init__(self, schema: Schema, store: Store) -> None:
        self.schema = schema
        self.store = store

    # -- helpers --------------------------------------------------------------------------

    def object_for(self, sobject: str, caller: Caller) -> ObjectSchema:
        """The object if it exists and the caller may read it; else 404 NOT_FOUND."""
        obj = self.schema.get(sobject)
        if obj is None or not caller.perms.can(obj.name, "read"):
            raise not_found()
        return obj

    def url(self, obj_name: str, rid: str, version: str) -> str:
        return f"/services/data/v{version}/sobjects/{obj_name}/{rid}"

    def check_id(self, obj: ObjectSchema, value: str) -> str:
        """A path id of this object, normalized, or MALFORMED_ID."""
        rid = ids.normalize(value)
        if rid is None or rid[:3] != obj.key_prefix:
            raise dml(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {value}", ["Id"]
            )
        return rid

    # -- value coercion -------------------------------------------------------------------

    def _coerce(self, obj: ObjectSchema, f: dict[str, Any], value: Any) -> Any:
        ftype = f["type"]
        if value is None:
            return False if ftype == "boolean" else None
        if ftype in _TEXT:
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int | float):
                value = str(value)
            elif not isinstance(value, str):
                raise _json_error("string", value)
            return value if value != "" else None
        if ftype == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _json_error(ftype, value)
        if ftype in _NUMBER:
            if isinstance(value, bool):
                raise _json_error(ftype, value)
            if isinstance(value, str):
                try:
                    value = float(value) if ftype != "int" else int(value)
                except ValueError:
                    raise _json_error(ftype, value) from None
            if not isinstance(value, int | float):
                raise _json_error(ftype, value)
            if ftype == "int":
                return int(value)
            scale = f["scale"]
            integer_digits = f["precision"] - scale
            if f["precision"] and abs(value) >= 10**integer_digits:
                raise dml(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"{f['label']}: value outside of valid range on numeric field: {value}",
                    [f["name"]],
                )
            return float(round(float(value), scale))
        if ftype == "date":
            if not isinstance(value, str):
                raise _json_error(ftype, value)
            day = value[:10]
            try:
                if not _DATE_RE.match(day):
                    raise ValueError(day)
                date.fromisoformat(day)
            except ValueError:
                raise _json_error(ftype, value) from None
            return day
        if ftype == "datetime":
            moment = parse_datetime(value) if isinstance(value, str) else None
            if moment is None:
                raise _json_error(ftype, value)
            return now_iso(moment)
        if ftype in ("reference", "id"):
            if not isinstance(value, str):
                raise _json_error("string", value)
            return value if value != "" else None
        if ftype == "base64":
            if isinstance(value, bytes):  # a multipart binary part
                return value
            if not isinstance(value, str):
                raise _json_error("string", value)
            return value
        return value

    def _check_value(self, obj: ObjectSchema, f: dict[str, Any], value: Any) -> Any:
        """Per-field checks after coercion; returns the stored value (ids normalized)."""
        if value is None:
            return None
        ftype = f["type"]
        name, label = f["name"], f["label"]
        if ftype in _TEXT and f["length"] and len(value) > f["length"]:
            raise dml(
                "STRING_TOO_LONG",
                f"{label}: data value too large: {value} (max length={f['length']})",
                [name],
            )
        if ftype == "picklist" and f["restrictedPicklist"]:
            active = {p["value"] for p in f["picklistValues"] if p["active"]}
            if value not in active:
                raise dml(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{label}: bad value for restricted picklist field: {value}",
                    [name],
                )
        if ftype == "email" and not _EMAIL_RE.match(value):
            raise dml("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [name])
        if ftype == "reference":
            return self._check_reference(f, value)
        if ftype == "base64" and isinstance(value, str) and len(value) > MAX_BASE64_JSON:
            raise dml(
                "STRING_TOO_LONG",
                f"{label}: data value too large: (max length={MAX_BASE64_JSON})",
                [name],
            )
        return value

    def _check_reference(self, f: dict[str, Any], value: str) -> str:
        name, label = f["name"], f["label"]
        rid = ids.normalize(value)
        targets = f["referenceTo"]
        if rid is None:
            raise dml("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])
        target = self.schema.by_prefix.get(rid[:3])
        if target not in targets:
            if f["polymorphicForeignKey"] and target is not None:
                raise dml(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"field integrity exception: {name} (id value of incorrect type: {value})",
                    [name],
                )
            raise dml("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])
        row = self.store.get(target, rid)
        if row is None:
            raise dml("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
        if row["IsDeleted"]:
            raise dml("ENTITY_IS_DELETED", "entity is deleted", [name])
        return rid

    def _resolve_parent_ref(
        self, obj: ObjectSchema, rel_field: dict[str, Any], spec: Any
    ) -> str | None:
        """``"Parent__r": {"ExtId__c": "x"}`` in a body: the parent's id by external id."""
        if spec is None:
            return None
        target = self.schema.get(rel_field["referenceTo"][0])
        if not isinstance(spec, dict) or target is None:
            raise _json_error("string", spec)
        keys = [k for k in spec if k != "attributes"]
        if len(keys) != 1:
            raise dml(
                "INVALID_FIELD",
                f"{rel_field['relationshipName']}: a relationship reference names exactly one "
                "external id field",
                [],
            )
        ext = target.field(keys[0])
        if ext is None or not (ext["externalId"] or ext["idLookup"]):
            raise dml(
                "INVALID_FIELD",
                f"Field name provided, {keys[0]} is not an External ID or indexed field for "
                f"{target.name}",
                [],
            )
        matches = self.find_by(target, ext, spec[keys[0]])
        if not matches:
            raise dml(
                "INVALID_FIELD",
                f"Foreign key external ID: {spec[keys[0]]} not found for field {ext['name']} "
                f"in entity {target.name}",
                [],
            )
        if len(matches) > 1:
            raise dml(
                "INVALID_FIELD",
                f"Foreign key external ID: {spec[keys[0]]} matches more than one record for "
                f"field {ext['name']} in entity {target.name}",
                [],
            )
        return matches[0]["Id"]

    def find_by(self, obj: ObjectSchema, f: dict[str, Any], value: Any) -> list[dict[str, Any]]:
        """Live rows whose field equals value (text compared case-insensitively)."""
        name = f["name"]
        if name == "Id":
            rid = ids.normalize(str(value))
            row = self.store.get(obj.name, rid) if rid else None
            return [row] if row and not row["IsDeleted"] else []
        rows = self.store.all(obj.name)
        if isinstance(value, str) and not f["caseSensitive"]:
            lowered = value.lower()
            return [r for r in rows if isinstance(r.get(name), str) and r[name].lower() == lowered]
        return [r for r in rows if r.get(name) == value]

    # -- body -> changes ------------------------------------------------------------------

    def _changes(
        self, obj: ObjectSchema, body: dict[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        """Validate a body's keys and value types; returns {api name: coerced value}."""
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        changes: dict[str, Any] = {}
        readonly: list[str] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                rel = obj.parents.get(key.lower())
                if rel is not None:
                    changes[rel["name"]] = ("__ref__", rel, value)
                    continue
                raise dml(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", []
                )
            if f["name"] == "Id":
                if creating:
                    raise dml(
                        "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call"
                    )
                continue
            allowed = f["createable"] if creating else f["updateable"]
            if not allowed:
                readonly.append(f["name"])
                continue
            changes[f["name"]] = self._coerce(obj, f, value)
        if readonly:
            raise dml(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                readonly,
            )
        for name, value in list(changes.items()):
            if isinstance(value, tuple) and value and value[0] == "__ref__":
                changes[name] = self._resolve_parent_ref(obj, value[1], value[2])
        return changes

    def _validate(self, obj: ObjectSchema, record: dict[str, Any], changed: set[str]) -> None:
        missing = [
            f["name"]
            for f in obj.describe["fields"]
            if not f["nillable"]
            and f["type"] != "boolean"
            and (f["createable"] or f["updateable"])
            and record.get(f["name"]) is None
        ]
        if missing:
            raise dml(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name in changed:
            f = obj.fields[name.lower()]
            record[name] = self._check_value(obj, f, record[name])
        for rule in obj.validation_rules:
            if _rule_fires(rule, record):
                where = rule.get("errorDisplayField")
                raise dml(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.get("errorMessage", "Validation rule failed"),
                    [where] if where else [],
                )
        for name in changed:
            f = obj.fields[name.lower()]
            if f["unique"] and record[name] is not None:
                for other in self.find_by(obj, f, record[name]):
                    if other["Id"] != record["Id"]:
                        raise dml(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {name} duplicates value on record with "
                            f"id: {other['Id']}",
                            [],
                        )

    # -- operations -----------------------------------------------------------------------

    def create(
        self, sobject: str, body: dict[str, Any], caller: Caller, *, lock_fault: bool = False
    ) -> str:
        obj = self.object_for(sobject, caller)
        if not caller.perms.can(obj.name, "create") or not obj.describe["createable"]:
            raise insufficient_access()
        changes = self._changes(obj, body, creating=True)
        with self.store.transaction():
            rid = self.store.ids.new(obj.key_prefix)
            stamp = now_iso()
            record: dict[str, Any] = {}
            for f in obj.describe["fields"]:
                record[f["name"]] = f["defaultValue"] if f["type"] == "boolean" else None
                if f["type"] == "picklist":
                    for p in f["picklistValues"]:
                        if p["defaultValue"] and p["active"]:
                            record[f["name"]] = p["value"]
            record.update(
                Id=rid,
                IsDeleted=False,
                CreatedDate=stamp,
                CreatedById=caller.user_id,
                LastModifiedDate=stamp,
                LastModifiedById=caller.user_id,
                SystemModstamp=stamp,
            )
            if "OwnerId" in record:
                record["OwnerId"] = caller.user_id
            record.update(changes)
            changed = set(changes)
            if obj.auto_number:
                record["Name"] = format_auto_number(
                    obj.auto_number, self.store.next_counter(obj.name)
                )
            if obj.name == "ContentVersion":
                self._prepare_content_version(record, changed)
            self._validate(obj, record, changed)
            _compute_names(obj, record)
            if lock_fault:
                raise lock_error(rid)
            self.store.put(obj.name, record)
            if obj.name == "ContentVersion":
                self._publish_content(record, caller, stamp)
        return rid

    def update(
        self,
        sobject: str,
        record_id: str,
        body: dict[str, Any],
        caller: Caller,
        *,
        lock_fault: bool = False,
    ) -> str:
        obj = self.object_for(sobject, caller)
        rid = self.check_id(obj, record_id)
        current = self.store.get(obj.name, rid)
        if current is None:
            raise not_found()
        if current["IsDeleted"]:
            raise dml("ENTITY_IS_DELETED", "entity is deleted", status=404)
        if not caller.perms.can(obj.name, "edit"):
            raise insufficient_access()
        changes = self._changes(obj, body, creating=False)
        with self.store.transaction():
            record = dict(current)
            record.update(changes)
            self._validate(obj, record, set(changes))
            stamp = now_iso()
            record.update(
                LastModifiedDate=stamp, LastModifiedById=caller.user_id, SystemModstamp=stamp
            )
            _compute_names(obj, record)
            if lock_fault:
                raise lock_error(rid)
            self.store.put(obj.name, record)
        return rid

    def delete(
        self, sobject: str, record_id: str, caller: Caller, *, lock_fault: bool = False
    ) -> str:
        obj = self.object_for(sobject, caller)
        rid = self.check_id(obj, record_id)
        current = self.store.get(obj.name, rid)
        if current is None:
            raise not_found()
        if current["IsDeleted"]:
            raise dml("ENTITY_IS_DELETED", "entity is deleted", status=404)
        if not caller.perms.can(obj.name, "delete") or not obj.describe["deletable"]:
            raise insufficient_access()
        if lock_fault:
            raise lock_error(rid)
        with self.store.transaction():
            self._delete_cascade(obj, current, now_iso())
        return rid

    def _delete_cascade(self, obj: ObjectSchema, row: dict[str, Any], stamp: str) -> None:
        record = dict(row, IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
        self.store.put(obj.name, record)
        for child in obj.describe["childRelationships"]:
            if not child["cascadeDelete"]:
                continue
            child_obj = self.schema.get(child["childSObject"])
            if child_obj is None:
                continue
            for crow in self.store.all(child_obj.name):
                if crow.get(child["field"]) == row["Id"]:
                    self._delete_cascade(child_obj, crow, stamp)

    def upsert(
        self,
        sobject: str,
        field_name: str,
        value: str | None,
        body: dict[str, Any],
        caller: Caller,
        *,
        lock_fault: bool = False,
    ) -> tuple[str, bool] | list[str]:
        """(id, created), or the list of matching record URLs when several match (HTTP 300)."""
        obj = self.object_for(sobject, caller)
        f = obj.field(field_name)
        if f is None or not (f["externalId"] or f["idLookup"]):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        if value is None:
            value = body.get(f["name"]) if f["name"] != "Id" else None
        matches = self.find_by(obj, f, value) if value not in (None, "") else []
        if len(matches) > 1:
            return [self.url(obj.name, r["Id"], caller.version) for r in matches]
        body = {k: v for k, v in body.items() if k.lower() != f["name"].lower()}
        if matches:
            rid = self.update(obj.name, matches[0]["Id"], body, caller, lock_fault=lock_fault)
            return rid, False
        if f["name"] == "Id" and value not in (None, ""):
            if ids.normalize(str(value)) is None:
                raise dml("MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {value}")
            raise not_found()
        if f["name"] != "Id":
            body[f["name"]] = value
        return self.create(obj.name, body, caller, lock_fault=lock_fault), True

    def retrieve(
        self, sobject: str, record_id: str, caller: Caller, fields: list[str] | None = None
    ) -> dict[str, Any]:
        obj = self.object_for(sobject, caller)
        rid = self.check_id(obj, record_id)
        row = self.store.get(obj.name, rid)
        if row is None or row["IsDeleted"]:
            raise not_found()
        return self.render(obj, row, caller.version, fields)

    def render(
        self,
        obj: ObjectSchema,
        row: dict[str, Any],
        version: str,
        fields: list[str] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": self.url(obj.name, row["Id"], version)}
        }
        if fields is None:
            names = [f["name"] for f in obj.describe["fields"]]
        else:
            names = []
            bad = []
            for name in fields:
                f = obj.field(name.strip())
                if f is None:
                    bad.append(name.strip())
                else:
                    names.append(f["name"])
            if bad:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{bad[0]}' on entity '{obj.name}'. If you are attempting "
                    "to use a custom field, be sure to append the '__c' after the custom field "
                    "name. Please reference your WSDL or the describe call for the appropriate "
                    "names.",
                )
        for name in names:
            value = row.get(name)
            if name == "VersionData" and obj.name == "ContentVersion":
                value = f"/services/data/v{version}/sobjects/ContentVersion/{row['Id']}/VersionData"
            out[name] = value
        return out

    # -- files ----------------------------------------------------------------------------

    def _prepare_content_version(self, record: dict[str, Any], changed: set[str]) -> None:
        data = record.get("VersionData")
        if data is None:
            return
        if isinstance(data, bytes):
            raw = data
        else:
            if len(data) > MAX_BASE64_JSON:
                raise dml(
                    "STRING_TOO_LONG",
                    f"Version Data: data value too large: (max length={MAX_BASE64_JSON})",
                    ["VersionData"],
                )
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise _json_error("base64Binary", "<VersionData>") from None
        self.store.put_blob(record["Id"], raw)
        record["VersionData"] = BLOB_MARKER
        record["ContentSize"] = len(raw)
        path = record.get("PathOnClient") or ""
        ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        record["FileExtension"] = ext or None
        record["FileType"] = _FILE_TYPES.get(ext, "UNKNOWN")
        record["VersionNumber"] = "1"
        record["IsLatest"] = True
        changed.discard("VersionData")

    def _publish_content(self, version: dict[str, Any], caller: Caller, stamp: str) -> None:
        """Create the ContentDocument, and the link to FirstPublishLocationId."""
        doc_obj = self.schema.get("ContentDocument")
        link_obj = self.schema.get("ContentDocumentLink")
        if doc_obj is None or link_obj is None:
            return
        doc_id = self.store.ids.new(doc_obj.key_prefix)
        system = {
            "IsDeleted": False,
            "CreatedDate": stamp,
            "CreatedById": caller.user_id,
            "LastModifiedDate": stamp,
            "LastModifiedById": caller.user_id,
            "SystemModstamp": stamp,
        }
        doc = {f["name"]: None for f in doc_obj.describe["fields"]}
        doc.update(
            system,
            Id=doc_id,
            OwnerId=caller.user_id,
            Title=version["Title"],
            LatestPublishedVersionId=version["Id"],
            ContentSize=version["ContentSize"],
            FileType=version["FileType"],
            FileExtension=version["FileExtension"],
        )
        self.store.put(doc_obj.name, doc)
        stored = dict(version, ContentDocumentId=doc_id)
        self.store.put("ContentVersion", stored)
        targets = [caller.user_id]
        if version.get("FirstPublishLocationId"):
            targets.append(version["FirstPublishLocationId"])
        for target in targets:
            link = {f["name"]: None for f in link_obj.describe["fields"]}
            link.update(
                Id=self.store.ids.new(link_obj.key_prefix),
                IsDeleted=False,
                SystemModstamp=stamp,
                LinkedEntityId=target,
                ContentDocumentId=doc_id,
                ShareType="I" if target == caller.user_id else "V",
                Visibility="AllUsers",
            )
            self.store.put(link_obj.name, link)


def lock_error(rid: str) -> SfError:
    return dml(
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {rid}",
    )


def format_auto_number(fmt: str, n: int) -> str:
    """``JBA-{000000}`` and 42 -> ``JBA-000042``."""
    m = re.search(r"\{(0+)\}", fmt)
    if not m:
        return fmt
    return fmt[: m.start()] + str(n).zfill(len(m.group(1))) + fmt[m.end() :]


def _compute_names(obj: ObjectSchema, record: dict[str, Any]) -> None:
    if obj.name in ("Contact", "User"):
        parts = [record.get("FirstName"), record.get("LastName")]
        record["Name"] = " ".join(p for p in parts if p) or None


def _rule_fires(rule: dict[str, Any], record: dict[str, Any]) -> bool:
    """A test-defined validation rule: {"condition": {"field", "op", "value"}} fires -> error."""
    cond = rule.get("condition", {})
    value = record.get(cond.get("field", ""))
    op = cond.get("op", "equals")
    target = cond.get("value")
    if op == "blank":
        return value in (None, "")
    if op == "not_blank":
        return value not in (None, "")
    if op == "equals":
        return value == target
    if op == "not_equals":
        return value != target
    if op == "contains":
        return isinstance(value, str) and str(target).lower() in value.lower()
    if op == "matches":
        return isinstance(value, str) and re.search(str(target), value) is not None
    if op == "greater_than":
        return value is not None and value > target
    if op == "less_than":
        return value is not None and value < target
    return False
