"""Loading every public job from the org: one paginated SOQL query, mapped to public names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ats_gateway.metadata.contracts import FixedCondition
from ats_gateway.salesforce import soql
from ats_gateway.services.jobs.contract import JobsContract

_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class RecordSource(Protocol):
    """What the snapshot needs of a Salesforce client: ``query`` iterating every record
    (following ``nextRecordsUrl``), as :meth:`SalesforceClient.query` does."""

    def query(self, query: Any) -> Iterable[Mapping[str, Any]]: ...


def _condition(cond: FixedCondition) -> soql.Condition:
    target = soql.field(cond.field)
    value = soql.DateLiteral(cond.date_literal) if cond.date_literal else cond.value
    rendered = getattr(target, _OPS[cond.op])(value)
    return rendered | target.is_null() if cond.or_null else rendered


def snapshot_query(contract: JobsContract, describe: Mapping[str, Any] | None = None) -> soql.Query:
    """The one query that loads the snapshot: the contract's fields under its fixed filter.

    With ``describe`` (the raw describe of the job object) field names are checked by the
    builder before anything is sent.
    """
    describes = {contract.sobject: describe} if describe is not None else None
    query = soql.select(*contract.api_fields()).from_(contract.sobject, describes=describes)
    if contract.fixed_filter:
        query = query.where(soql.and_(*(_condition(c) for c in contract.fixed_filter)))
    return query


def to_public(record: Mapping[str, Any], contract: JobsContract) -> dict[str, Any]:
    """One Salesforce record as a public job (public names; numbers as numbers)."""
    lowered = {k.lower(): v for k, v in record.items() if k != "attributes"}
    out: dict[str, Any] = {}
    for f in contract.fields:
        value = lowered.get(f.api_name.lower())
        if f.kind == "number" and value is not None:
            value = float(value)
            value = int(value) if value.is_integer() else value
        out[f.name] = value
    return out


def load_public_jobs(source: RecordSource, contract: JobsContract, describe=None) -> list[dict]:
    """Every public job, through one paginated query (one API call per 2,000 jobs)."""
    return [to_public(r, contract) for r in source.query(snapshot_query(contract, describe))]
