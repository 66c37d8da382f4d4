"""What the jobs flow needs to know about the public `job` resource, as a small interface.

The metadata layer owns the resource contracts (`schemas/resources/job.toml` and
`job_filters.toml`) and the describe metadata; :func:`from_metadata` adapts them to a
:class:`JobsContract`, which is all the snapshot, the filter engine and the API read. Public
field names only ever meet Salesforce API names here and in :mod:`.source`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ats_gateway.metadata.contracts import FILTER_OPS, FixedCondition

#: Field kinds the engine knows how to compare, index and render (not the resource kinds of
#: :data:`ats_gateway.metadata.contracts.KINDS`).
FIELD_KINDS = ("id", "string", "html", "picklist", "boolean", "date", "datetime", "number")

_KIND_OF_TYPE = {
    "id": "id",
    "reference": "id",
    "string": "string",
    "email": "string",
    "phone": "string",
    "url": "string",
    "textarea": "string",
    "picklist": "picklist",
    "multipicklist": "string",
    "combobox": "string",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "double": "number",
    "currency": "number",
    "percent": "number",
    "int": "number",
    "long": "number",
}


@dataclass(frozen=True)
class JobField:
    """One public field of a job: its public name, API name and what it may be used for."""

    name: str
    api_name: str
    kind: str = "string"
    exposed: bool = True  # part of the response
    sortable: bool = False  # `?sort=name` / `?sort=-name`
    facet: bool = False  # counted by /v1/jobs/facets
    searchable: bool = False  # part of the full-text `q`
    values: tuple[str, ...] = ()  # allowed values of a restricted picklist (active ones)

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"job field {self.name!r}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class FilterParam:
    """A query parameter filtering on a field: ``in`` (equality / IN), ``gte`` or ``lte``."""

    param: str
    field: str
    op: str = "in"

    def __post_init__(self) -> None:
        if self.op not in FILTER_OPS:
            raise ValueError(f"filter {self.param!r}: op must be one of {FILTER_OPS}")


@dataclass(frozen=True)
class JobsContract:
    """The public job resource: fields, filter parameters, default sort and the fixed filter."""

    sobject: str
    fields: tuple[JobField, ...]
    filters: tuple[FilterParam, ...] = ()
    fixed_filter: tuple[FixedCondition, ...] = ()
    default_sort: str = "-posted_at"
    default_limit: int = 20
    max_limit: int = 100
    id_field: str = "id"
    connection: str = "job_portal"
    version: str = ""  # of the describe it was built from; "" when built by hand
    by_name: dict[str, JobField] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})
        if self.id_field not in self.by_name:
            raise ValueError(f"the job contract has no id field {self.id_field!r}")
        for flt in self.filters:
            if flt.field not in self.by_name:
                raise ValueError(f"filter {flt.param!r} names unknown field {flt.field!r}")
        for name in self.default_sort.lstrip("-").split(","):
            if name.strip().lstrip("-") not in self.by_name:
                raise ValueError(f"default sort {self.default_sort!r} names unknown field")

    def field(self, name: str) -> JobField:
        return self.by_name[name]

    @property
    def exposed(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.exposed)

    @property
    def sortable(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.sortable)

    @property
    def facets(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.facet)

    @property
    def searchable(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.searchable)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(f.param for f in self.filters)

    def filter(self, param: str) -> FilterParam:
        return next(f for f in self.filters if f.param == param)

    def api_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.api_name for f in self.fields))


def kind_of(describe_type: str, *, html: bool = False) -> str:
    """The engine's kind for a describe field type."""
    if describe_type == "textarea" and html:
        return "html"
    return _KIND_OF_TYPE.get(describe_type, "string")


def from_metadata(job: Any, job_filters: Any, describe: Any, *, version: str = "") -> JobsContract:
    """A :class:`JobsContract` from the metadata layer's `job` and `job_filters` contracts
    (:class:`ats_gateway.metadata.contracts.Contract`) and the job object's describe
    (:class:`ats_gateway.metadata.describe.ObjectDescribe`): kinds and the allowed values of
    restricted picklists come from the org's describe, so a value an admin adds is accepted
    after the next describe refresh."""
    fields: list[JobField] = []
    for cf in job.fields.values():
        fd = describe.field(cf.api_name)
        if fd is None:
            raise ValueError(f"job contract field {cf.name} -> {cf.api_name}: not in describe")
        kind = kind_of(fd.type, html=fd.html)
        values = tuple(fd.active_values) if kind == "picklist" and fd.restricted_picklist else ()
        fields.append(
            JobField(
                name=cf.name,
                api_name=cf.api_name,
                kind=kind,
                exposed=cf.exposed,
                sortable=cf.sortable,
                facet=cf.facet,
                searchable=cf.search,
                values=values,
            )
        )
    filters = [FilterParam(f.name, f.field, f.op) for f in job_filters.filters.values()]
    params = job_filters.params
    sort = params.get("sort")
    limit = params.get("limit")
    return JobsContract(
        sobject=job.object,
        fields=tuple(fields),
        filters=tuple(filters),
        fixed_filter=tuple(job.fixed_filter),
        default_sort=(sort.default if sort and sort.default else "-posted_at"),
        default_limit=int(limit.default) if limit and limit.default else 20,
        max_limit=int(limit.max) if limit and limit.max else 100,
        connection=job.connection,
        version=version,
    )


def with_fields(contract: JobsContract, fields: Iterable[JobField]) -> JobsContract:
    """A copy of ``contract`` with other fields (tests, benchmarks)."""
    return JobsContract(
        sobject=contract.sobject,
        fields=tuple(fields),
        filters=contract.filters,
        fixed_filter=contract.fixed_filter,
        default_sort=contract.default_sort,
        default_limit=contract.default_limit,
        max_limit=contract.max_limit,
        id_field=contract.id_field,
        connection=contract.connection,
        version=contract.version,
    )
