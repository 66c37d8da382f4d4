"""Permission preflight: each connection's describe flags against what its endpoints need.

Salesforce answers a describe as the connection's integration user sees the object, so
`queryable`, `createable` and `updateable` say what that user's permission sets allow. A need
that is not met is reported with the connection, the permission set that should grant it (from
`schemas/permission_sets/`), the object and the operation; endpoints then answer 503 with that
sentence instead of failing on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ats_gateway.metadata.cache import ORG, CachedDescribe
from ats_gateway.metadata.contracts import Connection

#: operation -> the describe flag that shows it is granted
FLAGS = {"read": "queryable", "create": "createable", "edit": "updateable", "delete": "deletable"}
#: describe failures that mean "this user cannot see the object at all"
_NO_ACCESS = ("NotFound", "PermissionDenied", "OperationNotAllowed", "INSUFFICIENT_ACCESS")

OK, MISSING, UNVERIFIED = "ok", "missing", "unverified"


class PermissionMissing(Exception):
    """An endpoint's connection lacks a grant; rendered as 503 problem+json with `reason`."""

    def __init__(self, reason: str, findings: list[Finding] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.findings = findings or []


@dataclass(frozen=True)
class Finding:
    connection: str
    object: str
    operation: str
    state: str  # ok | missing | unverified
    permission_sets: tuple[str, ...]  # labels of the sets that should grant it
    endpoints: tuple[str, ...]
    note: str = ""

    @property
    def sentence(self) -> str:
        sets = " or ".join(f"'{s}'" for s in self.permission_sets) or "(no permission set)"
        if self.state == MISSING and self.operation.startswith("upsert by "):
            return (
                f"connection {self.connection}: cannot {self.operation} on {self.object}: "
                f"{self.note} (create it with the gateway's setup; permission set {sets})"
            )
        if self.state == MISSING:
            return (
                f"connection {self.connection}: missing {self.operation} on {self.object} "
                f"(permission set {sets}); needed by {', '.join(self.endpoints) or 'the gateway'}"
            )
        if self.state == UNVERIFIED:
            return (
                f"connection {self.connection}: cannot verify {self.operation} on {self.object} "
                f"(permission set {sets}): {self.note}"
            )
        return f"connection {self.connection}: {self.operation} on {self.object} ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "object": self.object,
            "operation": self.operation,
            "state": self.state,
            "permission_sets": list(self.permission_sets),
            "endpoints": list(self.endpoints),
            "message": self.sentence,
        }


def granting_sets(
    connection: Connection,
    sobject: str,
    operation: str,
    permission_sets: Mapping[str, Mapping[str, Any]],
) -> tuple[str, ...]:
    """Labels of the connection's permission sets that list `operation` on `sobject`."""
    names = []
    for key in connection.permission_sets:
        doc = permission_sets.get(key) or {}
        objects = {k.lower(): v for k, v in (doc.get("objects") or {}).items()}
        if operation in (objects.get(sobject.lower()) or ()):
            names.append(f"{doc.get('label', key)} [{doc.get('api_name', key)}]")
    if not names:  # nobody grants it: name the sets the admin would extend
        names = [
            f"{(permission_sets.get(k) or {}).get('label', k)}" for k in connection.permission_sets
        ]
    return tuple(names)


def check_need(
    connection: Connection,
    sobject: str,
    operation: str,
    endpoints: tuple[str, ...],
    entry: CachedDescribe,
    permission_sets: Mapping[str, Mapping[str, Any]],
) -> Finding:
    sets = granting_sets(connection, sobject, operation, permission_sets)
    base = {
        "connection": connection.name,
        "object": sobject,
        "operation": operation,
        "permission_sets": sets,
        "endpoints": endpoints,
    }
    if entry.source != ORG:
        if entry.error and any(marker in entry.error for marker in _NO_ACCESS):
            return Finding(state=MISSING, note=entry.error, **base)
        note = entry.error or "no org configured; describe snapshot only"
        return Finding(state=UNVERIFIED, note=note, **base)
    flag = FLAGS.get(operation, operation)
    if entry.describe.flag(flag):
        return Finding(state=OK, **base)
    return Finding(state=MISSING, note=f"describe says {flag}=false", **base)


def run_preflight(
    connections: Mapping[str, Connection],
    get_entry: Any,
    permission_sets: Mapping[str, Mapping[str, Any]],
    only: Mapping[str, bool] | None = None,
) -> list[Finding]:
    """Findings for every need of every connection (`get_entry(conn, obj)` -> CachedDescribe)."""
    findings = []
    for conn in connections.values():
        if only is not None and not only.get(conn.name, False):
            continue
        for need in conn.needs:
            entry = get_entry(conn.name, need.object)
            findings.append(
                check_need(
                    conn, need.object, need.operation, need.endpoints, entry, permission_sets
                )
            )
    return findings


# ------------------------------------------------------------------ the gateway's External IDs

#: The gateway's own field (its setup creates it, unnamespaced, in the customer's org) on each
#: object delivery creates: Text(64), External ID, Unique. Delivery upserts by it, so a write
#: retried after an ambiguous failure (timeout, reset after the org committed) updates instead
#: of creating a second record.
GATEWAY_KEY = "ATS_Gateway_Id__c"
KEYED_OBJECTS = ("Contact", "bpats__Job_Board_Application__c")
KEY_OPERATION = f"upsert by {GATEWAY_KEY}"
#: Resumes (ContentVersion) carry the key too, set on create only: being Unique, a retried
#: upload of the same file fails DUPLICATE_VALUE instead of attaching a second copy, even when
#: the first upload is still in flight. ContentVersion takes custom fields (Object Manager >
#: Content Version) and supports upsert(), so External ID fields: Salesforce's object
#: reference, https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
#: object_reference/sforce_api_objects_contentversion.htm
FILE_OBJECT = "ContentVersion"
FILE_KEY_OPERATION = f"create with a unique {GATEWAY_KEY}"


def gateway_key_problems(sobject: str, describe: Any, *, update: bool = True) -> list[str]:
    """Why ``describe`` (an ObjectDescribe) cannot be upserted by the gateway's key (or, with
    ``update`` False, created with it as a unique key); [] = ok."""
    field = describe.field(GATEWAY_KEY)
    if field is None:
        return [f"{sobject} has no field {GATEWAY_KEY}"]
    problems = []
    flags = [
        ("externalId", "an External ID"),
        ("unique", "Unique"),
        ("createable", "writable on create (field-level security)"),
    ]
    if update:
        flags.append(("updateable", "writable on update (field-level security)"))
    for flag, meaning in flags:
        if not field[flag]:
            problems.append(f"{sobject}.{GATEWAY_KEY} is not {meaning}")
    return problems


def file_key_ready(get_entry: Any, connection: str = "job_portal") -> bool:
    """Whether resumes can be created with the gateway's unique key (see ``FILE_OBJECT``)."""
    try:
        return not gateway_key_problems(
            FILE_OBJECT, get_entry(connection, FILE_OBJECT).describe, update=False
        )
    except Exception:  # no describe at all: the conservative mode
        return False


def gateway_keys_ready(get_entry: Any, connection: str = "job_portal") -> bool:
    """Whether every keyed object has the gateway's key (delivery then upserts by it)."""
    try:
        return not any(
            gateway_key_problems(obj, get_entry(connection, obj).describe) for obj in KEYED_OBJECTS
        )
    except Exception:  # no describe at all: the conservative mode
        return False


def gateway_key_findings(
    connections: Mapping[str, Connection],
    get_entry: Any,
    permission_sets: Mapping[str, Mapping[str, Any]],
    connection: str = "job_portal",
) -> list[Finding]:
    """`doctor`: is each keyed object's ``ATS_Gateway_Id__c`` there, External ID + Unique, and
    writable by the connection's user? Without it delivery still runs, but parks a batch after
    an ambiguous failure and re-reads the org before creating (docs/reliability.md)."""
    conn = connections.get(connection)
    if conn is None:
        return []
    findings = []
    for obj in (*KEYED_OBJECTS, FILE_OBJECT):
        entry = get_entry(connection, obj)
        files = obj == FILE_OBJECT
        sets = granting_sets(conn, obj, "create" if files else "edit", permission_sets)
        problems = gateway_key_problems(obj, entry.describe, update=not files)
        state = MISSING if problems else OK
        if entry.source != ORG:
            state = UNVERIFIED
        findings.append(
            Finding(
                connection=connection,
                object=obj,
                operation=FILE_KEY_OPERATION if files else KEY_OPERATION,
                state=state,
                permission_sets=sets,
                endpoints=(
                    "resumes (attached once after an ambiguous upload)"
                    if files
                    else "delivery (exactly once after an ambiguous failure)",
                ),
                note="; ".join(problems) or (entry.error or "describe snapshot only"),
            )
        )
    return findings
