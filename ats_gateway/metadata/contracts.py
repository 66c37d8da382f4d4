"""Resource contracts (`schemas/resources/*.toml`): the public face of each Salesforce object.

A contract maps public snake_case names to API names and says which fields are exposed,
filterable, sortable, faceted, searched and required; for the job listing it also holds the
fixed server-side filter. Contracts are checked against the describe at start
(:func:`check_contract`): a field the org does not have fails with both names.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ats_gateway.metadata.describe import ContractError, ObjectDescribe

KINDS = ("input", "output", "query")
FILTER_OPS = ("in", "gte", "lte")
FIXED_OPS = ("=", "!=", "<", "<=", ">", ">=")
PARAM_TYPES = ("string", "integer", "sort", "fields")
_PUBLIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ContractField:
    """One public field: its API name and flags."""

    name: str
    api_name: str
    exposed: bool = True
    required: bool = False
    filterable: bool = False
    sortable: bool = False
    facet: bool = False
    search: bool = False
    description: str = ""


@dataclass(frozen=True)
class FixedCondition:
    """One ANDed condition of a server-side filter (`field op value`, or NULL when `or_null`)."""

    field: str  # API name
    op: str
    value: Any = None
    date_literal: str | None = None  # e.g. "TODAY": rendered as a SOQL date literal
    or_null: bool = False


@dataclass(frozen=True)
class Filter:
    """A query parameter filtering on a field of the base contract."""

    name: str
    field: str  # public name in the base contract
    op: str  # in | gte | lte


@dataclass(frozen=True)
class Param:
    """A listing control (q, sort, limit, cursor, fields)."""

    name: str
    type: str
    default: Any = None
    min: int | None = None
    max: int | None = None
    max_length: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Nested:
    """A nested list/object of another input resource (feedback -> topics)."""

    name: str
    resource: str
    many: bool = True
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class ResumeRule:
    """What an upload may be (`[resume]` of a contract); the defaults serve without one."""

    max_bytes: int = 5 * 1024 * 1024
    types: tuple[str, ...] = ("pdf", "doc", "docx", "rtf", "txt")
    field: str = "resume"  # the public name errors point at
    media_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    name: str
    object: str
    connection: str
    kind: str
    description: str = ""
    operations: tuple[str, ...] = ()
    fields: Mapping[str, ContractField] = field(default_factory=dict)
    fixed_filter: tuple[FixedCondition, ...] = ()
    server_set: tuple[str, ...] = ()
    based_on: str | None = None
    filters: Mapping[str, Filter] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)
    nested: Mapping[str, Nested] = field(default_factory=dict)
    resume: ResumeRule | None = None
    path: str = ""

    def exposed(self) -> list[ContractField]:
        return [f for f in self.fields.values() if f.exposed]

    def by_api_name(self, api_name: str) -> ContractField | None:
        wanted = api_name.lower()
        return next((f for f in self.fields.values() if f.api_name.lower() == wanted), None)

    def public_names(self, flag: str | None = None) -> list[str]:
        """Exposed public names, optionally only those with a flag (`sortable`, `facet`...)."""
        return [f.name for f in self.exposed() if flag is None or getattr(f, flag)]


@dataclass(frozen=True)
class Connection:
    name: str
    permission_sets: tuple[str, ...]
    needs: tuple[Need, ...]


@dataclass(frozen=True)
class Need:
    object: str
    operation: str  # read | create | edit
    endpoints: tuple[str, ...] = ()


# --------------------------------------------------------------------------- loading


def _fail(path: Path | str, message: str) -> ContractError:
    return ContractError(f"{path}: {message}")


def load_contract(path: Path) -> Contract:
    """Parse one contract file (shape checked here; names against describe later)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}") from None
    res = doc.get("resource") or {}
    for key in ("name", "object", "connection", "kind"):
        if not res.get(key):
            raise _fail(path, f"[resource] needs `{key}`")
    if res["kind"] not in KINDS:
        raise _fail(path, f"kind must be one of {', '.join(KINDS)}, not {res['kind']!r}")
    fields_: dict[str, ContractField] = {}
    for name, spec in (doc.get("fields") or {}).items():
        if not _PUBLIC_NAME.match(name):
            raise _fail(path, f"public field name {name!r} is not snake_case")
        if not isinstance(spec, Mapping) or not spec.get("api_name"):
            raise _fail(path, f"field {name!r} needs `api_name`")
        unknown = set(spec) - {f for f in ContractField.__dataclass_fields__ if f != "name"}
        if unknown:
            raise _fail(path, f"field {name!r} has unknown keys {sorted(unknown)}")
        fields_[name] = ContractField(name=name, **spec)
    fixed = []
    for cond in doc.get("fixed_filter") or ():
        if cond.get("op") not in FIXED_OPS or not cond.get("field"):
            raise _fail(path, f"fixed_filter condition {cond!r} needs `field` and an op")
        fixed.append(FixedCondition(**cond))
    filters = {}
    for name, spec in (doc.get("filters") or {}).items():
        if spec.get("op") not in FILTER_OPS:
            raise _fail(path, f"filter {name!r}: op must be one of {', '.join(FILTER_OPS)}")
        filters[name] = Filter(name=name, field=spec["field"], op=spec["op"])
    params = {}
    for name, spec in (doc.get("params") or {}).items():
        if spec.get("type") not in PARAM_TYPES:
            raise _fail(path, f"param {name!r}: type must be one of {', '.join(PARAM_TYPES)}")
        params[name] = Param(name=name, **spec)
    nested = {name: Nested(name=name, **spec) for name, spec in (doc.get("nested") or {}).items()}
    resume = None
    if doc.get("resume"):
        r = doc["resume"]
        resume = ResumeRule(
            field=r.get("field", "resume"),
            max_bytes=int(r["max_bytes"]),
            types=tuple(r.get("types") or ()),
            media_types=tuple(r.get("media_types") or ()),
        )
    clash = set(filters) & set(params)
    if clash:
        raise _fail(path, f"names used both as filter and param: {sorted(clash)}")
    return Contract(
        name=res["name"],
        object=res["object"],
        connection=res["connection"],
        kind=res["kind"],
        description=res.get("description", ""),
        operations=tuple(res.get("operations") or ()),
        fields=fields_,
        fixed_filter=tuple(fixed),
        server_set=tuple(res.get("server_set") or ()),
        based_on=res.get("based_on"),
        filters=filters,
        params=params,
        nested=nested,
        resume=resume,
        path=str(path),
    )


def load_contracts(schemas_dir: str | Path) -> dict[str, Contract]:
    """Every `schemas/resources/*.toml` except `_*.toml`, by resource name, cross-checked."""
    folder = Path(schemas_dir) / "resources"
    contracts: dict[str, Contract] = {}
    for path in sorted(folder.glob("*.toml")):
        if path.name.startswith("_"):
            continue
        contract = load_contract(path)
        if contract.name in contracts:
            raise _fail(
                path,
                f"resource {contract.name!r} is also defined in {contracts[contract.name].path}",
            )
        contracts[contract.name] = contract
    for contract in contracts.values():
        if contract.based_on and contract.based_on not in contracts:
            raise _fail(contract.path, f"based_on names unknown resource {contract.based_on!r}")
        for nested in contract.nested.values():
            if nested.resource not in contracts:
                raise _fail(
                    contract.path,
                    f"nested {nested.name!r} names unknown resource {nested.resource!r}",
                )
        if contract.based_on:
            base = contracts[contract.based_on]
            for flt in contract.filters.values():
                target = base.fields.get(flt.field)
                if target is None:
                    raise _fail(
                        contract.path,
                        f"filter {flt.name!r} names {flt.field!r}, which "
                        f"is not a field of {base.name!r}",
                    )
                if not target.filterable:
                    raise _fail(
                        contract.path,
                        f"filter {flt.name!r}: field {flt.field!r} is "
                        f"not filterable in {base.path}",
                    )
    return contracts


def load_connections(schemas_dir: str | Path) -> dict[str, Connection]:
    """`schemas/resources/_connections.toml`: permission sets and needs per connection."""
    path = Path(schemas_dir) / "resources" / "_connections.toml"
    if not path.exists():
        return {}
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        name: Connection(
            name=name,
            permission_sets=tuple(spec.get("permission_sets") or ()),
            needs=tuple(
                Need(n["object"], n["operation"], tuple(n.get("endpoints") or ()))
                for n in spec.get("needs") or ()
            ),
        )
        for name, spec in doc.items()
    }


def load_permission_sets(schemas_dir: str | Path) -> dict[str, dict[str, Any]]:
    """`schemas/permission_sets/*.toml` by file stem."""
    folder = Path(schemas_dir) / "permission_sets"
    return {
        p.stem: tomllib.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.toml"))
    }


# --------------------------------------------------------------------------- checking


def check_contract(contract: Contract, describe: ObjectDescribe) -> list[str]:
    """Problems of a contract against its object's describe (empty when it fits).

    Fatal ones (a field the describe lacks) raise :class:`ContractError` naming the contract
    file, the public name and the API name; the returned list holds warnings (a field the org
    now requires on create that the contract neither exposes nor sets server-side).
    """
    missing = [
        f"{f.name} -> {f.api_name}" for f in contract.fields.values() if f.api_name not in describe
    ]
    missing += [
        f"fixed_filter -> {c.field}" for c in contract.fixed_filter if c.field not in describe
    ]
    missing += [f"server_set -> {name}" for name in contract.server_set if name not in describe]
    if missing:
        raise ContractError(
            f"contract {contract.name!r} ({contract.path}) names fields that the describe of "
            f"{describe.name} does not have: {'; '.join(missing)}"
        )
    warnings = []
    if contract.kind == "input":
        known = {f.api_name.lower() for f in contract.exposed()}
        known |= {name.lower() for name in contract.server_set}
        for fd in describe:
            if fd.required_on_create and fd.name.lower() not in known:
                warnings.append(
                    f"contract {contract.name!r}: {describe.name}.{fd.name} is required on "
                    "create but neither exposed nor server-set; inserts will fail"
                )
    return warnings


def referenced_objects(
    contracts: Iterable[Contract], connections: Mapping[str, Connection] | None = None
) -> list[tuple[str, str]]:
    """Every (connection, object) pair the gateway needs a describe of."""
    pairs: list[tuple[str, str]] = []
    for contract in contracts:
        pair = (contract.connection, contract.object)
        if pair not in pairs:
            pairs.append(pair)
    for conn in (connections or {}).values():
        for need in conn.needs:
            pair = (conn.name, need.object)
            if pair not in pairs:
                pairs.append(pair)
    return pairs
