"""The allow-list policy: may this connection send this request?

Every request of :class:`~ats_gateway.salesforce.client.SalesforceClient` is checked here
before anything is sent. A request is mapped to (sObject, operation) pairs - a SOQL query to
every object it reads (relationship paths, subqueries and semi-joins included, resolved with
describe metadata), a REST path or ``/composite`` subrequest by its method and URL - and each
pair is checked against the connection's :class:`~ats_gateway.salesforce.connections.Grants`.
A refusal is :class:`~ats_gateway.salesforce.errors.OperationNotAllowed`; a query that cannot
be read is :class:`~ats_gateway.salesforce.errors.MalformedQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

from ats_gateway.salesforce import soql as soql_mod
from ats_gateway.salesforce.connections import CREATE, DELETE, EDIT, OPERATIONS, READ, Grants
from ats_gateway.salesforce.errors import MalformedQuery, OperationNotAllowed
from ats_gateway.salesforce.results import Subrequest

SOBJECT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")
_REFERENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,79}")

#: Object name -> describe result, or a callable returning one (``None``: unknown).
Describes = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]

# (method -> operations) of /sobjects/X/{rest}, by the shape of rest
_SOBJECT_ROOT = {"POST": (CREATE,), "GET": (READ,)}
_SOBJECT_RECORD = {"GET": (READ,), "PATCH": (EDIT,), "DELETE": (DELETE,)}
_SOBJECT_EXTERNAL = {
    "GET": (READ,),
    "PATCH": (CREATE, EDIT),
    "POST": (CREATE, EDIT),
    "DELETE": (DELETE,),
}


def check_sobject(sobject: str) -> str:
    """``sobject`` when it is a plain API name (it becomes part of a URL), else ValueError."""
    if not isinstance(sobject, str) or not SOBJECT.match(sobject):
        raise ValueError(f"not an sObject name: {sobject!r}")
    return sobject


def check_id(record_id: str) -> str:
    """``record_id`` when it is a 15- or 18-character record id, else ValueError."""
    if not isinstance(record_id, str) or not RECORD_ID.match(record_id):
        raise ValueError(f"not a Salesforce record id: {record_id!r}")
    return record_id


def check_fields(fields: Iterable[str]) -> str:
    """Plain field names (they become part of a URL), comma-separated."""
    for name in fields:
        if not isinstance(name, str) or not SOBJECT.match(name):
            raise ValueError(f"not a plain field name: {name!r}")
    return ",".join(fields)


def check_record_ids(records: Iterable[Mapping[str, Any]]) -> None:
    """Each record to update carries its record id (``Id``)."""
    for record in records:
        check_id(str(record.get("Id") or record.get("id") or ""))


class AllowList:
    """The grants of one connection, and the describes that resolve relationship paths.

    ``describes`` lets queries that follow relationships or hold subqueries be checked;
    without them (here or passed per query) such queries are refused.
    """

    def __init__(self, connection: str, grants: Grants, describes: Describes | None = None):
        self.connection = connection
        self.grants = grants
        self.describes = describes

    def check(self, sobject: str, *operations: str) -> str:
        """``sobject`` when every operation on it is granted, else OperationNotAllowed."""
        check_sobject(sobject)
        for op in operations:
            self.grants.check(self.connection, sobject, op)
        return sobject

    def check_describe(self, sobject: str) -> None:
        """A describe is allowed for an object the connection may do anything with."""
        check_sobject(sobject)
        if not any(self.grants.allows(sobject, op) for op in OPERATIONS):
            self.check(sobject, READ)

    def check_delete_ids(self, sobject: str, ids: Iterable[str]) -> None:
        """Each id is a record id and, when the describe says so, one of ``sobject``'s."""
        prefix = (self.describe_of(sobject) or {}).get("keyPrefix")
        for record_id in ids:
            check_id(record_id)
            if prefix and not record_id.startswith(prefix):
                raise OperationNotAllowed(
                    f"id {record_id} is not a {sobject} id", error_code="OPERATION_NOT_ALLOWED"
                )

    def describe_of(
        self, sobject: str, fallback: Describes | None = None
    ) -> Mapping[str, Any] | None:
        source = self.describes if self.describes is not None else fallback
        if source is None:
            return None
        if callable(source):
            return source(sobject)
        return soql_mod.find_describe(source, sobject)

    # ------------------------------------------------------------------ SOQL

    def check_query(self, text: str, describes: Describes | None = None) -> None:
        """Refuse a query reading any object (incl. parents and children) not granted.

        ``describes`` serve when the allow-list has none of its own (a builder query's)."""
        if self.grants.unrestricted:
            return
        try:
            tokens = soql_mod.tokenize(text)
            shape = soql_mod.inspect(text)
        except soql_mod.SoqlError as exc:
            raise MalformedQuery(str(exc), error_code="MALFORMED_QUERY") from None
        if any(t.kind == "ident" and t.text.lower() == "typeof" for t in tokens):
            # TYPEOF reads whichever objects a polymorphic field points to: not checkable here
            raise OperationNotAllowed(
                f"connection {self.connection!r} may not use TYPEOF",
                error_code="OPERATION_NOT_ALLOWED",
            )
        self._check_shape(shape, describes)

    def _check_shape(self, shape: soql_mod.QueryShape, describes: Describes | None) -> None:
        self.check(shape.sobject, READ)
        for path in shape.paths:
            for sobject in self._path_objects(shape.sobject, path, describes):
                self.check(sobject, READ)
        for sub in shape.subqueries:
            child = self._child_object(shape.sobject, sub.sobject, describes)
            self._check_shape(
                soql_mod.QueryShape(child, sub.paths, sub.subqueries, sub.semi_joins), describes
            )
        for semi in shape.semi_joins:
            self._check_shape(semi, describes)

    def _path_objects(self, sobject: str, path: str, describes: Describes | None) -> list[str]:
        """Objects a relationship path reads through, resolved with describe metadata."""
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == sobject.lower():
            parts = parts[1:]  # "Contact.Name" qualified with the queried object itself
        touched: list[str] = []
        current = sobject
        for rel in parts[:-1]:
            describe = self.describe_of(current, describes)
            if describe is None:
                raise OperationNotAllowed(
                    f"cannot check relationship {path!r} without describe metadata for {current}",
                    error_code="OPERATION_NOT_ALLOWED",
                )
            ref = next(
                (
                    f
                    for f in describe.get("fields") or ()
                    if str(f.get("relationshipName") or "").lower() == rel.lower()
                ),
                None,
            )
            if ref is None or not ref.get("referenceTo"):
                raise MalformedQuery(f"{current} has no relationship {rel!r}")
            targets = list(ref["referenceTo"])
            touched.extend(targets)  # polymorphic lookups: every target must be readable
            current = targets[0]
        return touched

    def _child_object(self, sobject: str, relationship: str, describes: Describes | None) -> str:
        describe = self.describe_of(sobject, describes)
        if describe is None:
            raise OperationNotAllowed(
                f"cannot check subquery on {relationship!r} without describe metadata for "
                f"{sobject}",
                error_code="OPERATION_NOT_ALLOWED",
            )
        try:
            return soql_mod.child_sobject({sobject: describe}, sobject, relationship)
        except soql_mod.UnknownField as exc:
            raise MalformedQuery(str(exc)) from None

    # ------------------------------------------------------------------ subrequests

    def check_subrequest(self, sub: Subrequest, url: str) -> None:
        """Map a subrequest's method and (absolute) ``url`` to (object, operation) pairs."""
        if not _REFERENCE_ID.fullmatch(sub.reference_id):
            raise ValueError(f"invalid referenceId {sub.reference_id!r}")
        parts = urlsplit(url)
        segments = parts.path.split("/")[4:]  # after /services/data/vXX.X
        method = sub.method.upper()
        if any(seg in (".", "..") for seg in parts.path.split("/")):
            raise ValueError(f"subrequest URL must not contain dot segments: {sub.url!r}")

        def refuse() -> NoReturn:
            raise OperationNotAllowed(
                f"connection {self.connection!r} may not send {method} {parts.path}",
                error_code="OPERATION_NOT_ALLOWED",
            )

        if segments and segments[0] in ("query", "queryAll"):
            q = parse_qs(parts.query).get("q")
            if method != "GET" or not q:
                refuse()
            self.check_query(q[0])
        elif segments[:1] == ["sobjects"] and len(segments) >= 2:
            ops = _sobject_operations(method, [s for s in segments[2:] if s])
            if ops is None:
                refuse()
            self.check(segments[1], *ops)
        elif segments[:2] == ["composite", "sobjects"]:
            rest = [s for s in segments[2:] if s]
            if rest:  # /composite/sobjects/X[/ExtField]
                ops = (
                    {"PATCH": (CREATE, EDIT)}
                    if len(rest) == 2
                    else {"GET": (READ,), "POST": (READ,)}
                )
                chosen = ops.get(method)
                if chosen is None:
                    refuse()
                self.check(rest[0], *chosen)
                return
            op = {"POST": CREATE, "PATCH": EDIT}.get(method)
            records = (sub.body or {}).get("records") if isinstance(sub.body, Mapping) else None
            if op is None or not isinstance(records, list):
                refuse()
            for record in records:
                rtype = str((record.get("attributes") or {}).get("type") or "")
                if not rtype:
                    refuse()
                self.check(rtype, op)
        else:
            refuse()


def _sobject_operations(method: str, rest: list[str]) -> tuple[str, ...] | None:
    """What ``method /sobjects/X/{rest}`` does to X; ``None``: not a request we allow."""
    if not rest:
        return _SOBJECT_ROOT.get(method)
    if rest == ["describe"]:
        return (READ,) if method == "GET" else None
    if len(rest) == 1:
        return _SOBJECT_RECORD.get(method)
    if len(rest) == 2 and RECORD_ID.match(rest[0]):
        return None  # /sobjects/X/{id}/{relationship} reads another object
    if len(rest) == 2:
        return _SOBJECT_EXTERNAL.get(method)
    return None
