"""`Metadata`: the one object other code uses (`services().metadata`, built once per process
by the composition root).

    md.validate("application", payload)      -> clean dict (public names) or InvalidInput
    md.load_query("job_filters", args)       -> ListingQuery (filters, q, sort, limit, ...)
    md.to_salesforce("application", clean)   -> {API name: value} for a create
    md.from_salesforce("job", record)        -> {public name: value} for output
    md.schema("application")                 -> the marshmallow schema (current describe)
    md.json_schema("application")            -> JSON Schema 2020-12
    md.openapi()                             -> OpenAPI 3.1 of every registered operation
    md.refresh()                             -> revalidate describes (If-Modified-Since)
    md.require("job_portal", "POST /v1/applications")  -> PermissionMissing (503) or None

Schemas are built from the cached describe and memoized by its version: a refreshed describe
(a picklist value added, a length changed) takes effect on the next call, no restart.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from marshmallow import Schema, ValidationError
from marshmallow import fields as mfields

from ats_gateway.metadata.cache import CachedDescribe, DescribeCache
from ats_gateway.metadata.contracts import (
    Connection,
    Contract,
    check_contract,
    referenced_objects,
)
from ats_gateway.metadata.describe import ContractError, ObjectDescribe
from ats_gateway.metadata.errors import InvalidInput, error_list
from ats_gateway.metadata.factory import build_query_schema, build_schema
from ats_gateway.metadata.openapi import Operation, build_openapi, json_schema
from ats_gateway.metadata.preflight import (
    MISSING,
    Finding,
    PermissionMissing,
    run_preflight,
)
from ats_gateway.metadata.text import FORMULA_FIELD_TYPES, neutralise_formula


@dataclass(frozen=True)
class AppliedFilter:
    name: str  # query parameter
    field: str  # public field of the base resource
    api_name: str
    op: str  # in | gte | lte
    value: Any  # a list for `in`


@dataclass(frozen=True)
class SortKey:
    field: str  # public name
    api_name: str
    descending: bool


@dataclass(frozen=True)
class ListingQuery:
    """A validated listing request (GET /v1/jobs) in terms both sides understand."""

    filters: tuple[AppliedFilter, ...]
    q: str | None
    sort: tuple[SortKey, ...]
    limit: int
    cursor: str | None
    fields: tuple[str, ...] | None  # public names to return; None = all


class Metadata:
    def __init__(
        self,
        contracts: Mapping[str, Contract],
        cache: DescribeCache,
        *,
        connections: Mapping[str, Connection] | None = None,
        permission_sets: Mapping[str, Mapping[str, Any]] | None = None,
        public_url: str = "",
    ) -> None:
        self.contracts = dict(contracts)
        self.cache = cache
        self.connections = dict(connections or {})
        self.permission_sets = dict(permission_sets or {})
        self.public_url = public_url.rstrip("/")
        self.operations: dict[tuple[str, str], Operation] = {}
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._related_memo: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        cache.accept = self._accept

    # ----------------------------------------------------------------------- describes

    def contract(self, resource: str) -> Contract:
        try:
            return self.contracts[resource]
        except KeyError:
            raise KeyError(f"unknown resource {resource!r}") from None

    def pairs(self, *, include_needs: bool = True) -> list[tuple[str, str]]:
        """Every (connection, object) whose describe the gateway uses."""
        return referenced_objects(
            self.contracts.values(), self.connections if include_needs else None
        )

    def entry(self, resource: str) -> CachedDescribe:
        c = self.contract(resource)
        return self.cache.get(c.connection, c.object)

    def describe(self, resource: str) -> ObjectDescribe:
        return self.entry(resource).describe

    def _related(self, resource: str) -> list[str]:
        """The resource and every resource its schema is built from (base, nested); the
        contracts do not change while the process runs, so this is worked out once (the
        version of a schema is asked on every listing)."""
        related = self._related_memo.get(resource)
        if related is None:
            related = self._related_memo[resource] = self._find_related(resource)
        return related

    def _find_related(self, resource: str) -> list[str]:
        seen: list[str] = []
        stack = [resource]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.append(name)
            c = self.contract(name)
            if c.based_on:
                stack.append(c.based_on)
            stack.extend(n.resource for n in c.nested.values())
        return seen

    def version(self, resource: str) -> tuple[str, ...]:
        return tuple(self.entry(name).version for name in self._related(resource))

    def _memoized(self, key: tuple[Any, ...], build: Any) -> Any:
        value = self._memo.get(key)
        if value is None:
            value = build()
            with self._lock:
                if len(self._memo) > 256:  # old versions pile up only after many org changes
                    self._memo.clear()
                self._memo[key] = value
        return value

    def check(self) -> list[str]:
        """Start-up check of every contract against its describe; raises ContractError for a
        field the org lacks (naming both), returns warnings."""
        warnings: list[str] = []
        for contract in self.contracts.values():
            warnings += check_contract(contract, self.describe(contract.name))
        for name in self.contracts:
            self.schema(name)  # builds, so a bad type/flag fails now, not on a request
        return warnings

    def refresh(self, *, force: bool = False) -> list[CachedDescribe]:
        """Revalidate every describe the gateway uses (If-Modified-Since unless `force`).

        A fetched describe that no longer fits a contract is not taken (the last good one is
        kept, and its entry's `error` says why, which /readyz shows)."""
        return self.cache.refresh_all(self.pairs(), force=force)

    def _accept(self, connection: str, sobject: str, describe: ObjectDescribe) -> str | None:
        for contract in self.contracts.values():
            if (contract.connection, contract.object) == (connection, sobject):
                try:
                    check_contract(contract, describe)
                except ContractError as exc:
                    return str(exc)
        return None

    # ----------------------------------------------------------------------- schemas

    def schema_class(self, resource: str) -> type[Schema]:
        key = ("schema", resource, self.version(resource))
        return self._memoized(key, lambda: self._build(resource))

    def schema(self, resource: str) -> Schema:
        """A schema instance for `resource` (instances are cheap; classes are memoized)."""
        return self.schema_class(resource)()

    def _build(self, resource: str) -> type[Schema]:
        contract = self.contract(resource)
        describe = self.describe(resource)
        if contract.kind == "query":
            if not contract.based_on:
                raise ContractError(f"query contract {resource!r} needs `based_on`")
            base = self.contract(contract.based_on)
            return build_query_schema(contract, base, describe)
        nested = {n.resource: self.schema_class(n.resource) for n in contract.nested.values()}
        return build_schema(contract, describe, nested=nested)

    def _nested_classes(self, resource: str) -> list[type[Schema]]:
        contract = self.contract(resource)
        out: list[type[Schema]] = []
        for n in contract.nested.values():
            out += self._nested_classes(n.resource)
            out.append(self.schema_class(n.resource))
        return out

    # ----------------------------------------------------------------------- validation

    def validate(self, resource: str, payload: Any) -> dict[str, Any]:
        """Validate an input payload; the clean dict uses public names."""
        schema = self.schema(resource)
        try:
            return schema.load(payload)
        except ValidationError as exc:
            errors = error_list(schema, exc.messages, resource=resource)
            if any(e.get("code") == "not_allowed" for e in errors):
                # a value the org may have added since our describe: revalidate soon
                self.cache.request_revalidation()
            raise InvalidInput(errors) from None

    def errors(self, resource: str, payload: Any) -> list[dict[str, str]]:
        """The validation errors of a payload (empty when valid); never raises."""
        try:
            self.validate(resource, payload)
        except InvalidInput as exc:
            return exc.errors
        return []

    def load_query(self, resource: str, args: Any) -> ListingQuery:
        """Validate listing query parameters (a werkzeug MultiDict, or a mapping of str/list).

        Repeated parameters and comma-separated values both give several values for a list
        parameter; a scalar parameter given twice (`limit=1&limit=100`) is an error, never
        "the last one wins", and a number must be written in ASCII digits."""
        contract = self.contract(resource)
        schema = self.schema(resource)
        raw: dict[str, Any] = {}
        strict: list[dict[str, str]] = []
        keys = list(args.keys()) if hasattr(args, "keys") else list(args)
        for key in dict.fromkeys(keys):
            values = args.getlist(key) if hasattr(args, "getlist") else args[key]
            if not isinstance(values, list):
                values = [values]
            field = schema.fields.get(key)
            if field is not None and hasattr(field, "inner"):
                raw[key] = ",".join(str(v) for v in values)
            elif len(values) > 1:
                strict.append(
                    {"field": key, "code": "repeated", "message": "Give this parameter once."}
                )
            else:
                raw[key] = values[0] if values else ""
                if _numeric(field) and not _ASCII_INTEGER.fullmatch(str(raw[key])):
                    strict.append(
                        {
                            "field": key,
                            "code": "invalid_number",
                            "message": "Must be an integer in ASCII digits (0-9).",
                        }
                    )
        if strict:
            raise InvalidInput(strict)
        try:
            data = schema.load(raw)
        except ValidationError as exc:
            errors = error_list(schema, exc.messages, resource=resource)
            if any(e.get("code") == "not_allowed" for e in errors):
                # a value the org may have added since our describe: revalidate soon
                self.cache.request_revalidation()
            raise InvalidInput(errors) from None
        base = self.contract(contract.based_on or resource)
        filters = []
        for name, flt in contract.filters.items():
            if name in data and data[name] not in (None, []):
                cf = base.fields[flt.field]
                filters.append(AppliedFilter(name, flt.field, cf.api_name, flt.op, data[name]))
        sort = tuple(
            SortKey(t.lstrip("-"), base.fields[t.lstrip("-")].api_name, t.startswith("-"))
            for t in data.get("sort") or ()
        )
        limit_param = contract.params.get("limit")
        limit = data.get("limit") or (limit_param.default if limit_param else 20)
        return ListingQuery(
            filters=tuple(filters),
            q=(data.get("q") or "").strip() or None,
            sort=sort,
            limit=int(limit),
            cursor=data.get("cursor") or None,
            fields=tuple(data["fields"]) if data.get("fields") else None,
        )

    # ----------------------------------------------------------------------- translation

    def to_salesforce(self, resource: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A validated payload (public names) -> a record dict (API names) for a create.

        Nested resources (feedback `topics`) are left out: translate each item with its own
        resource. Dates become ISO strings, multipicklists `A;B`."""
        contract = self.contract(resource)
        describe = self.describe(resource)
        record: dict[str, Any] = {}
        for name, value in data.items():
            cf = contract.fields.get(name)
            if cf is None or not cf.exposed:
                continue
            fd = describe.field(cf.api_name)
            if isinstance(value, datetime | date):
                value = value.isoformat()
            elif fd is not None and fd.type == "multipicklist" and isinstance(value, list):
                value = ";".join(value)
            elif fd is not None and fd.type in FORMULA_FIELD_TYPES and isinstance(value, str):
                value = neutralise_formula(value, fd.length or None)  # [21] spreadsheets
            record[cf.api_name] = value
        return record

    def from_salesforce(
        self,
        resource: str,
        record: Mapping[str, Any],
        fields: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """A Salesforce record -> public names (only exposed fields; `fields` narrows)."""
        contract = self.contract(resource)
        wanted = None if fields is None else set(fields)
        lowered = {k.lower(): v for k, v in record.items() if k != "attributes"}
        multi = self._multipicklists(resource)
        out: dict[str, Any] = {}
        for cf in contract.exposed():
            if wanted is not None and cf.name not in wanted:
                continue
            value = lowered.get(cf.api_name.lower())
            if cf.api_name.lower() in multi and isinstance(value, str):
                value = [v for v in value.split(";") if v]
            out[cf.name] = value
        return out

    def field_map(self, resource: str) -> dict[str, str]:
        """public name -> API name of the exposed fields."""
        return {cf.name: cf.api_name for cf in self.contract(resource).exposed()}

    def _multipicklists(self, resource: str) -> frozenset[str]:
        key = ("multi", resource, self.version(resource))

        def build() -> frozenset[str]:
            describe = self.describe(resource)
            return frozenset(fd.name.lower() for fd in describe if fd.type == "multipicklist")

        return self._memoized(key, build)

    # ----------------------------------------------------------------------- documents

    def input_resources(self) -> list[str]:
        return [c.name for c in self.contracts.values() if c.kind == "input"]

    def json_schema(self, resource: str) -> dict[str, Any]:
        """JSON Schema 2020-12 of an input (or query) resource, from the live schema."""
        key = ("json_schema", resource, self.version(resource))
        return self._memoized(key, lambda: self._json_schema(resource))

    def _json_schema(self, resource: str) -> dict[str, Any]:
        contract = self.contract(resource)
        extra: dict[str, Any] = {}
        if contract.description:
            extra["description"] = contract.description
        extra["x-describe-version"] = ".".join(self.version(resource))
        if contract.resume:
            extra["x-resume"] = {
                "field": contract.resume.field,
                "max_bytes": contract.resume.max_bytes,
                "types": list(contract.resume.types),
                "media_types": list(contract.resume.media_types),
                "description": "Optional file part of a multipart/form-data submission.",
            }
        schema_id = f"{self.public_url}/v1/schemas/{resource}" if self.public_url else ""
        return json_schema(
            self.schema_class(resource),
            self._nested_classes(resource),
            schema_id=schema_id,
            extra=extra,
        )

    def add_operations(self, operations: Iterable[Operation]) -> None:
        """Document endpoints in OpenAPI (see :mod:`ats_gateway.metadata.openapi`)."""
        for op in operations:
            self.operations[(op.method.upper(), op.path)] = op
        with self._lock:
            self._memo = {k: v for k, v in self._memo.items() if k[0] != "openapi"}

    def openapi(self) -> dict[str, Any]:
        """OpenAPI 3.1 of every registered operation, from the live schemas."""
        versions = tuple(self.version(name) for name in sorted(self.contracts))
        key = ("openapi", versions, len(self.operations))
        return self._memoized(
            key,
            lambda: build_openapi(
                self.operations.values(),
                self.schema_class,
                self._nested_classes,
                public_url=self.public_url,
                body_extras=self._multipart_extras,
                components=[n for n, c in self.contracts.items() if c.kind != "query"],
            ),
        )

    def _multipart_extras(self, resource: str) -> dict[str, Any]:
        rule = self.contract(resource).resume
        if rule is None:
            return {}
        return {
            "type": "object",
            "properties": {
                rule.field: {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": f"Optional resume: {', '.join(rule.types).upper()}, at most "
                    f"{rule.max_bytes // (1024 * 1024)} MB ({rule.max_bytes} bytes).",
                    "x-max-bytes": rule.max_bytes,
                    "x-media-types": list(rule.media_types),
                }
            },
        }

    # ----------------------------------------------------------------------- preflight

    def preflight(self, *, verify: bool = False) -> list[Finding]:
        """Findings for every connection's needs (`verify`: revalidate describes first)."""
        if verify:
            self.cache.refresh_all(self.pairs(), force=True)
        return run_preflight(self.connections, self.cache.get, self.permission_sets)

    def require(self, connection: str, endpoint: str | None = None) -> None:
        """Raise PermissionMissing (-> 503) when `connection` lacks a grant `endpoint` needs
        (every need of the connection when `endpoint` is None)."""
        conn = self.connections.get(connection)
        if conn is None:
            return
        pairs = tuple((connection, n.object) for n in conn.needs)
        entries = [self.cache.get(c, o) for c, o in pairs]
        versions = tuple((e.version, e.source, e.error) for e in entries)
        key = ("preflight", connection, versions)
        findings = self._memoized(
            key,
            lambda: run_preflight({connection: conn}, self.cache.get, self.permission_sets),
        )
        missing = [
            f
            for f in findings
            if f.state == MISSING and (endpoint is None or endpoint in f.endpoints)
        ]
        if missing:
            raise PermissionMissing("; ".join(f.sentence for f in missing), missing)


#: Salesforce errorCode -> the gateway's code, for errors the org reports after delivery.
ORG_CODES = {
    "REQUIRED_FIELD_MISSING": "required",
    "STRING_TOO_LONG": "too_long",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "not_allowed",
    "INVALID_EMAIL_ADDRESS": "invalid_email",
    "MALFORMED_ID": "invalid_id",
    "INVALID_ID_FIELD": "invalid_id",
    "INVALID_CROSS_REFERENCE_KEY": "invalid_id",
    "NUMBER_OUTSIDE_VALID_RANGE": "too_many_digits",
    "INVALID_TYPE_ON_FIELD_IN_RECORD": "invalid_type",
    "DUPLICATE_VALUE": "duplicate",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "rejected_by_org",
}


def org_errors(metadata: Metadata, resource: str, errors: Iterable[Any]) -> list[dict[str, str]]:
    """Errors the org reported for a record (objects with `error_code`, `message`, `fields`,
    such as :class:`ats_gateway.salesforce.ErrorDetail`) -> `[{field, code, message}]` with
    public names. API names never reach the client; the org's own text is kept only for
    custom validation rules (written by the org's admins for people to read)."""
    contract = metadata.contract(resource)
    out: list[dict[str, str]] = []
    for err in errors:
        code = ORG_CODES.get(getattr(err, "error_code", "") or "", "rejected_by_org")
        fields = list(getattr(err, "fields", ()) or ()) or [""]
        for api_name in fields:
            cf = contract.by_api_name(api_name) if api_name else None
            name = cf.name if cf is not None else "(record)"
            if code == "rejected_by_org":
                text = f"{name}: the org refused the record: {getattr(err, 'message', '')}"
            else:
                text = f"{name} was refused by the org ({code.replace('_', ' ')})"
            out.append({"field": name, "code": code, "message": text})
    return out


_ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


def _numeric(field: Any) -> bool:
    """Integer query parameters: Python's int() also reads other scripts' digits ("\u0665")."""
    return isinstance(field, mfields.Integer)
