"""Check a parsed query against describes, compile it to Python closures, and run it.

Everything that depends on the query text (field resolution, literal types, the WHERE
predicate, sort keys) is worked out once per query; the per-row work is plain closures over
dict lookups, which keeps a 10,000-row filter and sort in the low milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import nodes as n
from .errors import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    INVALID_TYPE,
    MALFORMED_QUERY,
    NUMBER_OUTSIDE_VALID_RANGE,
    SoqlError,
    located,
)
from .literals import (
    EscapeError,
    date_to_datetime_text,
    format_datetime,
    like_regex,
    normalize_datetime,
    relative_date_range,
    to_18,
    today_utc,
    unescape,
)
from .parser import parse
from .schema import BOOL, DATE, DATETIME, ID, MULTI, NUM, TEXT, ObjectInfo, category, soap_word
from .source import RecordSource

MAX_OFFSET = 2000
MAX_FIELDS_LIMIT = 200
BULK_AFTER = 64  # parent lookups per object before the whole object is loaded at once

Row = dict[str, Any]
Predicate = Callable[[Row], bool]
Getter = Callable[[Row], Any]

_NO_SUCH_COLUMN = (
    "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom "
    "field, be sure to append the '__c' after the custom field name. Please reference your "
    "WSDL or the describe call for the appropriate names."
)
_BAD_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a "
    "custom relationship, be sure to append the '__r' after the custom relationship name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_BAD_CHILD_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in FROM part of query call. If you are "
    "attempting to use a custom relationship, be sure to append the '__r' after the custom "
    "relationship name. Please reference your WSDL or the describe call for the appropriate "
    "names."
)
_NOT_SUPPORTED = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)


@dataclass(frozen=True)
class QueryResult:
    """``records`` in Salesforce's JSON shape; ``total_size`` is the number of rows the query
    matched (after LIMIT/OFFSET), and for ``SELECT COUNT()`` the count, with no records."""

    records: list[dict[str, Any]]
    total_size: int
    is_count: bool = False
    sobject: str = ""


def execute(
    soql: str,
    source: RecordSource,
    *,
    include_deleted: bool = False,
    api_version: str = "62.0",
    now: datetime | None = None,
) -> QueryResult:
    """Run ``soql`` against ``source``; ``include_deleted`` is ``/queryAll``.

    Raises ``SoqlError`` with Salesforce's errorCode and message for a query the org refuses.
    """
    query = parse(soql)
    context = _Context(soql, source, include_deleted, api_version, now)
    plan = _compile_root(context, query)
    return plan.run()


# ---- context ----------------------------------------------------------------------------


class _Context:
    def __init__(
        self,
        soql: str,
        source: RecordSource,
        include_deleted: bool,
        api_version: str,
        now: datetime | None,
    ) -> None:
        self.soql = soql
        self.source = source
        self.include_deleted = include_deleted
        self.url_prefix = f"/services/data/v{api_version.removeprefix('v')}/sobjects/"
        self.today = today_utc(now)
        self._objects: dict[str, ObjectInfo | None] = {}
        # Names a field path may start with to mean the queried object itself (lower case):
        # the object's name, and the alias of FROM (e.g. "FROM Contact c").
        self.prefixes: dict[str, set[str]] = {}
        self._parents: dict[str, tuple[ObjectInfo, Row] | None] = {}
        self._fetches: dict[str, int] = {}
        self._bulk: dict[str, dict[str, Row]] = {}

    def error(self, code: str, node: Any, text: str) -> SoqlError:
        return located(code, self.soql, node.line, node.column, text)

    def object(self, name: str) -> ObjectInfo | None:
        key = name.lower()
        if key not in self._objects:
            describe = self.source.describe(name)
            self._objects[key] = ObjectInfo(describe) if describe else None
        return self._objects[key]

    def rows(self, obj: ObjectInfo) -> Iterable[Row]:
        rows = self.source.records(obj.name, include_deleted=self.include_deleted)
        if self.include_deleted:
            return rows
        return (row for row in rows if not row.get("IsDeleted"))

    def parent(
        self, targets: tuple[ObjectInfo, ...], record_id: str
    ) -> tuple[ObjectInfo, Row] | None:
        """The parent row a lookup points at (cached per query), or None."""
        if record_id in self._parents:
            return self._parents[record_id]
        found = None
        prefix = record_id[:3]
        ordered = sorted(targets, key=lambda info: info.key_prefix != prefix)
        for info in ordered:
            row = self._fetch(info, record_id)
            if row is not None and (self.include_deleted or not row.get("IsDeleted")):
                found = (info, row)
                break
        self._parents[record_id] = found
        return found

    def _fetch(self, info: ObjectInfo, record_id: str) -> Row | None:
        # A few parents are fetched one by one; past BULK_AFTER distinct ids of one object,
        # one scan of that object is cheaper than thousands of point lookups.
        table = self._bulk.get(info.name)
        if table is not None:
            return table.get(record_id)
        count = self._fetches.get(info.name, 0) + 1
        self._fetches[info.name] = count
        if count > BULK_AFTER:
            rows = self.source.records(info.name, include_deleted=True)
            table = self._bulk[info.name] = {row.get("Id"): row for row in rows}
            return table.get(record_id)
        return self.source.record(info.name, record_id)


def _position(item: Any) -> Any:
    """The node an error about a SELECT item points at (one with ``line`` and ``column``)."""
    if isinstance(item, n.Query):
        return item.sobject
    if isinstance(item, n.AliasedField):
        return item.path
    return item


# ---- field resolution -------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    field: str  # the lookup field on the child, e.g. bpats__Job__c
    relationship: str  # its relationship name, e.g. bpats__Job__r
    targets: tuple[ObjectInfo, ...]


@dataclass(frozen=True)
class _Resolved:
    steps: tuple[_Step, ...]
    field: dict[str, Any]
    path: n.FieldPath

    @property
    def name(self) -> str:
        return self.field["name"]

    @property
    def category(self) -> str:
        return category(self.field)


def _resolve(context: _Context, obj: ObjectInfo, path: n.FieldPath) -> _Resolved:
    parts = list(path.parts)
    # "SELECT Contact.Name FROM Contact" and "SELECT c.Name FROM Contact c" are legal: a
    # leading object name or alias is dropped.
    first = parts[0].lower()
    own = context.prefixes.get(obj.name.lower(), set()) | {obj.name.lower()}
    if len(parts) > 1 and first in own and first not in obj.relationships:
        parts = parts[1:]
    current = obj
    steps: list[_Step] = []
    for part in parts[:-1]:
        ref = current.relationships.get(part.lower())
        targets = ()
        if ref is not None:
            infos = (context.object(t) for t in ref.get("referenceTo") or ())
            targets = tuple(info for info in infos if info is not None)
        if not targets:
            raise context.error(INVALID_FIELD, path, _BAD_RELATIONSHIP.format(name=part))
        steps.append(_Step(ref["name"], ref["relationshipName"], targets))
        current = targets[0]
    leaf = current.fields.get(parts[-1].lower())
    if leaf is None:
        text = _NO_SUCH_COLUMN.format(field=parts[-1], entity=current.name)
        raise context.error(INVALID_FIELD, path, text)
    return _Resolved(tuple(steps), leaf, path)


def _multi_values(value: str | None) -> frozenset[str] | None:
    """A multi-select picklist value ("A;B") as a set, compared case-insensitively."""
    if not value:
        return None
    return frozenset(p.strip().lower() for p in value.split(";") if p.strip()) or None


def _normalizer(cat: str) -> Callable[[Any], Any] | None:
    """Turns a stored value into the form literals are compared with (None: as stored)."""
    if cat == TEXT:
        return lambda v: str(v).lower() if v not in (None, "") else None
    if cat == MULTI:
        return _multi_values
    if cat == ID:
        return lambda v: v or None
    if cat == DATE:
        return lambda v: v[:10] if v else None
    if cat == DATETIME:
        return lambda v: normalize_datetime(v) if v else None
    if cat == BOOL:
        return lambda v: bool(v)
    return None


def _getter(context: _Context, resolved: _Resolved, *, normalize: bool = True) -> Getter:
    name = resolved.name
    norm = _normalizer(resolved.category) if normalize else None
    steps = resolved.steps
    if not steps:
        if norm is None:
            return lambda row: row.get(name)
        return lambda row: norm(row.get(name))

    parent = context.parent

    def get(row: Row) -> Any:
        current = row
        for step in steps:
            parent_id = current.get(step.field)
            if not parent_id:
                return norm(None) if norm else None
            found = parent(step.targets, parent_id)
            if found is None:
                return norm(None) if norm else None
            current = found[1]
        value = current.get(name)
        return norm(value) if norm else value

    return get


# ---- literals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    start: str
    end: str


def _type_error(context: _Context, resolved: _Resolved) -> SoqlError:
    quoted = resolved.category in (TEXT, MULTI, ID)
    should = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    text = (
        f"value of filter criterion for field '{resolved.name}' must be of type "
        f"{soap_word(resolved.field)} and {should}"
    )
    return context.error(INVALID_FIELD, resolved.path, text)


def _string(context: _Context, literal: n.StringLit) -> str:
    try:
        return unescape(literal.raw)
    except EscapeError as exc:
        text = (
            f"Invalid string literal '{literal.raw}'. Illegal character sequence "
            f"'{exc.sequence}' in string literal."
        )
        raise context.error(MALFORMED_QUERY, literal, text) from None


def _value(context: _Context, resolved: _Resolved, literal: n.Literal) -> Any:
    """The comparable form of ``literal`` for ``resolved``'s type: a value, None or a _Range."""
    if isinstance(literal, n.NullLit):
        return None
    cat = resolved.category
    if cat == TEXT and isinstance(literal, n.StringLit):
        return _string(context, literal).lower() or None
    if cat == MULTI and isinstance(literal, n.StringLit):
        return _multi_values(_string(context, literal))
    if cat == ID and isinstance(literal, n.StringLit):
        text = _string(context, literal)
        if text == "":
            return None
        long_id = to_18(text)
        if long_id is None:
            raise context.error(INVALID_QUERY_FILTER_OPERATOR, literal, f"invalid ID field: {text}")
        return long_id
    if cat == BOOL and isinstance(literal, n.BoolLit):
        return literal.value
    if cat == NUM and isinstance(literal, n.NumberLit):
        return literal.value
    if cat == DATE:
        if isinstance(literal, n.DateLit):
            return literal.value.isoformat()
        if isinstance(literal, n.RelativeDate):
            start, end = relative_date_range(literal.name, literal.n, context.today)
            return _Range(start.isoformat(), end.isoformat())
    if cat == DATETIME:
        if isinstance(literal, n.DateTimeLit):
            return format_datetime(literal.value)
        if isinstance(literal, n.RelativeDate):
            start, end = relative_date_range(literal.name, literal.n, context.today)
            return _Range(date_to_datetime_text(start), date_to_datetime_text(end))
    raise _type_error(context, resolved)


# ---- WHERE ------------------------------------------------------------------------------


def _filter_field(context: _Context, obj: ObjectInfo, path: n.FieldPath) -> _Resolved:
    resolved = _resolve(context, obj, path)
    if resolved.field.get("filterable") is False:
        text = f"field '{resolved.name}' can not be filtered in query call"
        raise context.error(INVALID_FIELD, path, text)
    return resolved


def _bad_operator(context: _Context, resolved: _Resolved) -> SoqlError:
    kind = "id" if resolved.category == ID else str(resolved.field.get("type", "")).lower()
    return context.error(
        INVALID_QUERY_FILTER_OPERATOR, resolved.path, f"invalid operator on {kind} field"
    )


def _compile_where(context: _Context, obj: ObjectInfo, cond: n.Condition) -> Predicate:
    if isinstance(cond, n.And):
        preds = [_compile_where(context, obj, item) for item in cond.items]
        if len(preds) == 2:
            a, b = preds
            return lambda row: a(row) and b(row)
        return lambda row: all(p(row) for p in preds)
    if isinstance(cond, n.Or):
        preds = [_compile_where(context, obj, item) for item in cond.items]
        if len(preds) == 2:
            a, b = preds
            return lambda row: a(row) or b(row)
        return lambda row: any(p(row) for p in preds)
    if isinstance(cond, n.Not):
        inner = _compile_where(context, obj, cond.item)
        return lambda row: not inner(row)
    if isinstance(cond, n.Compare):
        return _compile_compare(context, obj, cond)
    if isinstance(cond, n.Like):
        return _compile_like(context, obj, cond)
    if isinstance(cond, n.InList):
        return _compile_in(context, obj, cond)
    if isinstance(cond, n.Includes):
        return _compile_includes(context, obj, cond)
    if isinstance(cond, n.InSubquery):
        return _compile_semi_join(context, obj, cond)
    raise TypeError(cond)  # pragma: no cover - the parser builds only the nodes above


def _compile_compare(context: _Context, obj: ObjectInfo, cond: n.Compare) -> Predicate:
    resolved = _filter_field(context, obj, cond.field)
    op = cond.op
    if op not in ("=", "!=") and resolved.category in (BOOL, MULTI):
        raise _bad_operator(context, resolved)
    value = _value(context, resolved, cond.value)
    get = _getter(context, resolved)
    if isinstance(value, _Range):
        start, end = value.start, value.end

        def in_range(row: Row) -> bool:
            v = get(row)
            return v is not None and start <= v < end

        if op == "=":
            return in_range
        if op == "!=":
            return lambda row: not in_range(row)
        bound, strict_low = {"<": (start, True), "<=": (end, True), ">": (end, False)}.get(
            op, (start, False)
        )
        if strict_low:
            return lambda row: (v := get(row)) is not None and v < bound
        return lambda row: (v := get(row)) is not None and v >= bound
    if value is None:
        if op == "=":
            return lambda row: get(row) is None
        if op == "!=":
            return lambda row: get(row) is not None
        return lambda row: False
    if op == "=":
        return lambda row: get(row) == value
    if op == "!=":
        return lambda row: get(row) != value
    if op == "<":
        return lambda row: (v := get(row)) is not None and v < value
    if op == "<=":
        return lambda row: (v := get(row)) is not None and v <= value
    if op == ">":
        return lambda row: (v := get(row)) is not None and v > value
    return lambda row: (v := get(row)) is not None and v >= value


def _compile_like(context: _Context, obj: ObjectInfo, cond: n.Like) -> Predicate:
    resolved = _filter_field(context, obj, cond.field)
    if resolved.category != TEXT:
        raise _bad_operator(context, resolved)
    literal = cond.value
    if isinstance(literal, n.NullLit):
        return lambda row: False
    if not isinstance(literal, n.StringLit):
        raise _type_error(context, resolved)
    try:
        pattern = like_regex(literal.raw)
    except EscapeError as exc:
        text = (
            f"Invalid string literal '{literal.raw}'. Illegal character sequence "
            f"'{exc.sequence}' in string literal."
        )
        raise context.error(MALFORMED_QUERY, literal, text) from None
    get = _getter(context, resolved, normalize=False)
    match = pattern.fullmatch
    # An empty string is null to Salesforce, and null is never LIKE anything.
    return lambda row: bool(v := get(row)) and match(str(v)) is not None


def _compile_in(context: _Context, obj: ObjectInfo, cond: n.InList) -> Predicate:
    resolved = _filter_field(context, obj, cond.field)
    values = [_value(context, resolved, literal) for literal in cond.values]
    ranges = [(v.start, v.end) for v in values if isinstance(v, _Range)]
    has_null = any(v is None for v in values)
    scalars = {v for v in values if v is not None and not isinstance(v, _Range)}
    get = _getter(context, resolved)

    def member(row: Row) -> bool:
        v = get(row)
        if v is None:
            return has_null
        if v in scalars:
            return True
        return any(start <= v < end for start, end in ranges)

    if cond.negate:
        return lambda row: not member(row)
    return member


def _compile_includes(context: _Context, obj: ObjectInfo, cond: n.Includes) -> Predicate:
    resolved = _filter_field(context, obj, cond.field)
    if resolved.category != MULTI:
        raise context.error(
            INVALID_QUERY_FILTER_OPERATOR,
            cond.field,
            "includes or excludes operator only valid on multipicklist field",
        )
    wanted = [v for v in (_value(context, resolved, lit) for lit in cond.values) if v]
    get = _getter(context, resolved)

    def includes(row: Row) -> bool:
        v = get(row)
        return v is not None and any(group <= v for group in wanted)

    if cond.exclude:
        return lambda row: not includes(row)
    return includes


def _compile_semi_join(context: _Context, obj: ObjectInfo, cond: n.InSubquery) -> Predicate:
    resolved = _filter_field(context, obj, cond.field)
    sub = cond.subquery
    if resolved.category != ID:
        raise context.error(
            INVALID_FIELD,
            cond.field,
            f"semi/anti join sub-selects are only supported on id fields, not '{resolved.name}'",
        )
    inner_obj = context.object(sub.sobject.value)
    if inner_obj is None:
        raise context.error(
            INVALID_TYPE, sub.sobject, _NOT_SUPPORTED.format(name=sub.sobject.value)
        )
    if len(sub.select) != 1 or not isinstance(sub.select[0], n.FieldPath):
        raise context.error(
            MALFORMED_QUERY,
            _position(sub.select[0]),
            "semi join sub-selects can only select a single id field",
        )
    if sub.alias:
        context.prefixes.setdefault(inner_obj.name.lower(), set()).add(sub.alias.lower())
    inner_field = _resolve(context, inner_obj, sub.select[0])
    if inner_field.category != ID:
        raise context.error(
            INVALID_FIELD,
            sub.select[0],
            f"semi join sub-select field '{inner_field.name}' must be an id or a reference",
        )
    inner_pred = _compile_where(context, inner_obj, sub.where) if sub.where else None
    inner_get = _getter(context, inner_field)
    ids = {
        value
        for row in context.rows(inner_obj)
        if (inner_pred is None or inner_pred(row)) and (value := inner_get(row)) is not None
    }
    get = _getter(context, resolved)
    if cond.negate:
        return lambda row: get(row) not in ids
    return lambda row: get(row) in ids


# ---- ORDER BY ---------------------------------------------------------------------------

_SortSpec = tuple[Getter, bool, bool]  # getter, descending, nulls first


def _compile_order(
    context: _Context, obj: ObjectInfo, items: tuple[n.OrderItem, ...]
) -> list[_SortSpec]:
    specs: list[_SortSpec] = []
    for item in items:
        if isinstance(item.field, n.Aggregate):
            raise context.error(
                MALFORMED_QUERY, item.field, f"unexpected token: '{item.field.func}'"
            )
        resolved = _resolve(context, obj, item.field)
        if resolved.field.get("sortable") is False or resolved.category == MULTI:
            text = f"field '{resolved.name}' can not be sorted in a query call"
            raise context.error(INVALID_FIELD, item.field, text)
        getter = _getter(context, resolved)
        if resolved.category == BOOL:
            base = getter
            getter = lambda row, base=base: int(base(row))  # noqa: E731
        elif resolved.field.get("type") == "picklist" and resolved.field.get("picklistValues"):
            getter = _picklist_key(getter, resolved.field["picklistValues"])
        specs.append((getter, item.descending, item.nulls_first))
    return specs


def _picklist_key(getter: Getter, values: list[dict[str, Any]]) -> Getter:
    """Picklists sort in the order their values are defined, not alphabetically ("ORDER BY"
    in the SOQL and SOSL Reference); values not in the list come after, alphabetically."""
    rank = {str(v.get("value", "")).lower(): i for i, v in enumerate(values)}
    last = len(rank)

    def key(row: Row) -> Any:
        v = getter(row)
        return None if v is None else (rank.get(v, last), v)

    return key


def _sort(rows: list[Row], specs: list[_SortSpec]) -> None:
    # Stable sorts from the last key to the first give a multi-key sort with mixed directions.
    for getter, descending, nulls_first in reversed(specs):
        # Under reverse=True the smallest key ends up last, so the null rank flips.
        null_key = (0,) if nulls_first != descending else (2,)

        def key(row: Row, getter: Getter = getter, null_key: tuple = null_key) -> tuple:
            v = getter(row)
            return null_key if v is None else (1, v)

        rows.sort(key=key, reverse=descending)


# ---- SELECT and plans -------------------------------------------------------------------


@dataclass
class _Projection:
    """What one level of a record renders: fields, parent objects and child subqueries, in
    the order they were first selected."""

    entries: list[tuple] = field(default_factory=list)
    parents: dict[str, _Projection] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    context: _Context
    obj: ObjectInfo
    projection: _Projection
    predicate: Predicate | None
    order: list[_SortSpec]
    limit: int | None
    offset: int | None
    is_count: bool = False
    children: list[_ChildPlan] = field(default_factory=list)

    def select_rows(self, rows: Iterable[Row], *, filtered: bool = False) -> list[Row]:
        """Filter (unless ``filtered``), sort, then apply OFFSET and LIMIT."""
        pred = None if filtered else self.predicate
        selected = list(rows) if pred is None else [row for row in rows if pred(row)]
        if self.order:
            _sort(selected, self.order)
        start = self.offset or 0
        if start or self.limit is not None:
            end = None if self.limit is None else start + self.limit
            selected = selected[start:end]
        return selected

    def run(self) -> QueryResult:
        rows = self.select_rows(self.context.rows(self.obj))
        if self.is_count:
            return QueryResult([], len(rows), is_count=True, sobject=self.obj.name)
        return QueryResult(self.render(rows), len(rows), sobject=self.obj.name)

    def render(self, rows: list[Row]) -> list[dict[str, Any]]:
        child_results = [(child, child.results_for(rows)) for child in self.children]
        out = []
        for row in rows:
            record = self._render_row(self.obj, row, self.projection)
            for child, results in child_results:
                record[child.output_key] = results.get(row.get("Id"))
            out.append(record)
        return out

    def _render_row(self, obj: ObjectInfo, row: Row, projection: _Projection) -> dict[str, Any]:
        url = f"{self.context.url_prefix}{obj.name}/{row.get('Id')}"
        record: dict[str, Any] = {"attributes": {"type": obj.name, "url": url}}
        for entry in projection.entries:
            kind = entry[0]
            if kind == "field":
                record[entry[1]] = row.get(entry[1])
            elif kind == "parent":
                _, key, step, sub = entry
                parent_id = row.get(step.field)
                found = self.context.parent(step.targets, parent_id) if parent_id else None
                record[key] = None if found is None else self._render_row(found[0], found[1], sub)
            else:  # a child subquery: the key keeps its place; render() fills it in
                record[entry[1]] = None
        return record


@dataclass
class _ChildPlan:
    plan: _Plan
    output_key: str  # the relationship name as described, e.g. bpats__Job_Board_Applications__r
    parent_field: str  # the lookup on the child pointing at the parent

    def results_for(self, parents: list[Row]) -> dict[str, dict[str, Any]]:
        ids = {row.get("Id") for row in parents}
        groups: dict[str, list[Row]] = {}
        field_name = self.parent_field
        pred = self.plan.predicate
        for row in self.plan.context.rows(self.plan.obj):
            parent_id = row.get(field_name)
            if parent_id in ids and (pred is None or pred(row)):
                groups.setdefault(parent_id, []).append(row)
        chosen = {pid: self.plan.select_rows(rows, filtered=True) for pid, rows in groups.items()}
        # Render every parent's children in one go, so that grandchild subqueries and parent
        # lookups run once for all of them rather than once per parent.
        rendered = iter(self.plan.render([row for rows in chosen.values() for row in rows]))
        results: dict[str, dict[str, Any]] = {}
        for parent_id, rows in chosen.items():
            if rows:
                records = [next(rendered) for _ in rows]
                results[parent_id] = {"totalSize": len(records), "done": True, "records": records}
        return results


def _check_limits(context: _Context, query: n.Query) -> None:
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(NUMBER_OUTSIDE_VALID_RANGE, f"Maximum SOQL offset allowed is {MAX_OFFSET}")


def _compile_root(context: _Context, query: n.Query) -> _Plan | _AggregatePlan:
    obj = context.object(query.sobject.value)
    if obj is None:
        raise context.error(
            INVALID_TYPE, query.sobject, _NOT_SUPPORTED.format(name=query.sobject.value)
        )
    if query.group_by or any(isinstance(item, n.Aggregate) for item in query.select):
        return _compile_aggregate(context, obj, query)
    return _compile_plan(context, obj, query)


def _compile_plan(context: _Context, obj: ObjectInfo, query: n.Query) -> _Plan:
    _check_limits(context, query)
    if query.alias:
        context.prefixes.setdefault(obj.name.lower(), set()).add(query.alias.lower())
    counts = [item for item in query.select if isinstance(item, n.CountAll)]
    if counts and len(query.select) > 1:
        raise context.error(MALFORMED_QUERY, counts[0], "unexpected token: 'COUNT'")
    for item in query.select:
        if isinstance(item, n.Aggregate):  # only reachable inside a child subquery
            raise context.error(MALFORMED_QUERY, item, f"unexpected token: '{item.func}'")
        if isinstance(item, n.AliasedField):  # aliases name grouped fields only
            text = f"unexpected token: '{item.alias.value}'"
            raise context.error(MALFORMED_QUERY, item.alias, text)
    projection = _Projection()
    children: list[_ChildPlan] = []
    if not counts:
        for item in query.select:
            if isinstance(item, n.Query):
                child = _compile_child(context, obj, item)
                if child.output_key in projection.names:
                    raise context.error(
                        INVALID_FIELD, item.sobject, f"duplicate field selected: {child.output_key}"
                    )
                projection.names.add(child.output_key)
                projection.entries.append(("child", child.output_key))
                children.append(child)
            elif isinstance(item, n.FieldsFn):
                _add_fields_fn(context, obj, projection, item, query.limit)
            else:
                _add_field(context, obj, projection, item)
    predicate = _compile_where(context, obj, query.where) if query.where else None
    order = _compile_order(context, obj, query.order_by)
    return _Plan(
        context=context,
        obj=obj,
        projection=projection,
        predicate=predicate,
        order=order,
        limit=query.limit,
        offset=query.offset,
        is_count=bool(counts),
        children=children,
    )


def _add_field(
    context: _Context, obj: ObjectInfo, projection: _Projection, path: n.FieldPath
) -> None:
    resolved = _resolve(context, obj, path)
    node = projection
    for step in resolved.steps:
        key = step.relationship
        sub = node.parents.get(key)
        if sub is None:
            sub = _Projection()
            node.parents[key] = sub
            node.names.add(key)
            node.entries.append(("parent", key, step, sub))
        node = sub
    if resolved.name in node.names:
        raise context.error(INVALID_FIELD, path, f"duplicate field selected: {resolved.name}")
    node.names.add(resolved.name)
    node.entries.append(("field", resolved.name))


def _add_fields_fn(
    context: _Context,
    obj: ObjectInfo,
    projection: _Projection,
    item: n.FieldsFn,
    limit: int | None,
) -> None:
    """FIELDS(ALL | STANDARD | CUSTOM) ("FIELDS()" in the SOQL and SOSL Reference): ALL and
    CUSTOM need a LIMIT of at most 200."""
    if item.which != "STANDARD" and (limit is None or limit > MAX_FIELDS_LIMIT):
        text = f"The SOQL FIELDS function must have a LIMIT of at most {MAX_FIELDS_LIMIT}"
        raise context.error(MALFORMED_QUERY, item, text)
    for field_ in obj.describe.get("fields") or []:
        custom = field_.get("custom")
        if custom is None:
            custom = field_["name"].endswith("__c")
        wanted = item.which == "ALL" or custom == (item.which == "CUSTOM")
        if wanted and field_["name"] not in projection.names:
            projection.names.add(field_["name"])
            projection.entries.append(("field", field_["name"]))


def _compile_child(context: _Context, parent: ObjectInfo, query: n.Query) -> _ChildPlan:
    relationship = parent.children.get(query.sobject.value.lower())
    child_obj = context.object(relationship["childSObject"]) if relationship else None
    if relationship is None or child_obj is None:
        raise context.error(
            INVALID_TYPE, query.sobject, _BAD_CHILD_RELATIONSHIP.format(name=query.sobject.value)
        )
    if any(isinstance(item, n.CountAll) for item in query.select):
        item = next(i for i in query.select if isinstance(i, n.CountAll))
        raise context.error(MALFORMED_QUERY, item, "unexpected token: 'COUNT'")
    plan = _compile_plan(context, child_obj, query)
    return _ChildPlan(plan, relationship["relationshipName"], relationship["field"])


# ---- aggregate queries (GROUP BY, COUNT(f), SUM, ...) -----------------------------------

_AGG_NUMERIC = {"SUM", "AVG"}


def _aggregate_value(func: str, values: list[Any], norms: list[Any]) -> Any:
    """One aggregate over a group: ``values`` as stored, ``norms`` as compared."""
    present = [(norm, value) for norm, value in zip(norms, values, strict=True) if norm is not None]
    if func == "COUNT":
        return len(present)
    if func == "COUNT_DISTINCT":
        return len({norm for norm, _ in present})
    if not present:
        return None
    if func == "SUM":
        return sum(value for _, value in present)
    if func == "AVG":
        return sum(value for _, value in present) / len(present)
    chosen = min(present, key=lambda p: p[0]) if func == "MIN" else max(present, key=lambda p: p[0])
    return chosen[1]


@dataclass
class _AggregatePlan:
    """``SELECT f, COUNT(Id) n FROM X GROUP BY f``: records typed ``AggregateResult`` with no
    url, unaliased aggregates named expr0, expr1, ... (salesforce-wire-shapes.md §3)."""

    context: _Context
    obj: ObjectInfo
    predicate: Predicate | None
    groups: list[tuple[Getter, Getter]]  # (stored value, comparable value) per GROUP BY field
    aggregates: list[tuple[str, str, Getter, Getter]]  # func, category, stored, comparable
    outputs: list[tuple[str, str, int]]  # (key, "group" | "agg", index)
    order: list[_SortSpec]
    limit: int | None
    offset: int | None

    def run(self) -> QueryResult:
        pred = self.predicate
        rows = [row for row in self.context.rows(self.obj) if pred is None or pred(row)]
        buckets: dict[tuple, list[Row]] = {}
        for row in rows:
            key = tuple(norm(row) for _, norm in self.groups)
            buckets.setdefault(key, []).append(row)
        if not self.groups and not buckets:
            buckets[()] = []  # an aggregate without GROUP BY always answers one row
        results = []
        for key, members in buckets.items():
            stored = tuple(raw(members[0]) for raw, _ in self.groups)
            values = tuple(
                _aggregate_value(func, [raw(r) for r in members], [norm(r) for r in members])
                for func, _cat, raw, norm in self.aggregates
            )
            results.append((key, stored, values))
        if self.order:
            _sort(results, self.order)  # type: ignore[arg-type]
        start = self.offset or 0
        if start or self.limit is not None:
            results = results[start : None if self.limit is None else start + self.limit]
        records = []
        for _key, stored, values in results:
            record: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for name, kind, index in self.outputs:
                record[name] = stored[index] if kind == "group" else values[index]
            records.append(record)
        return QueryResult(records, len(records), sobject=self.obj.name)


def _path_key(resolved: _Resolved) -> tuple[str, ...]:
    return (*(step.relationship for step in resolved.steps), resolved.name)


def _compile_aggregate(context: _Context, obj: ObjectInfo, query: n.Query) -> _AggregatePlan:
    _check_limits(context, query)
    if query.alias:
        context.prefixes.setdefault(obj.name.lower(), set()).add(query.alias.lower())
    groups: list[tuple[Getter, Getter]] = []
    group_index: dict[tuple[str, ...], int] = {}
    for path in query.group_by:
        resolved = _resolve(context, obj, path)
        if resolved.field.get("groupable") is False or resolved.category == MULTI:
            text = f"field '{resolved.name}' can not be grouped in a query call"
            raise context.error(INVALID_FIELD, path, text)
        group_index.setdefault(_path_key(resolved), len(groups))
        groups.append((_getter(context, resolved, normalize=False), _getter(context, resolved)))

    aggregates: list[tuple[str, str, Getter, Getter]] = []
    agg_index: dict[tuple, int] = {}

    def add_aggregate(item: n.Aggregate) -> int:
        resolved = _resolve(context, obj, item.field)
        numeric = resolved.category == NUM
        if (item.func in _AGG_NUMERIC and not numeric) or (
            resolved.field.get("aggregatable") is False and item.func != "COUNT"
        ):
            text = f"field {resolved.name} does not support aggregate operator {item.func}"
            raise context.error(INVALID_FIELD, item.field, text)
        key = (item.func, _path_key(resolved))
        if key not in agg_index:
            agg_index[key] = len(aggregates)
            raw = _getter(context, resolved, normalize=False)
            norm = _getter(context, resolved)
            aggregates.append((item.func, resolved.category, raw, norm))
        return agg_index[key]

    outputs: list[tuple[str, str, int]] = []
    unnamed = 0
    for item in query.select:
        if isinstance(item, n.Aggregate):
            index = add_aggregate(item)
            if item.alias:
                name = item.alias
            else:
                name = f"expr{unnamed}"
                unnamed += 1
            outputs.append((name, "agg", index))
        elif isinstance(item, n.FieldPath | n.AliasedField):
            path = item.path if isinstance(item, n.AliasedField) else item
            resolved = _resolve(context, obj, path)
            if _path_key(resolved) not in group_index:
                text = f"Field must be grouped or aggregated: {resolved.name}"
                raise context.error(MALFORMED_QUERY, path, text)
            name = item.alias.value if isinstance(item, n.AliasedField) else resolved.name
            outputs.append((name, "group", group_index[_path_key(resolved)]))
        else:
            raise context.error(MALFORMED_QUERY, _position(item), "unexpected token: '('")

    order: list[_SortSpec] = []
    for order_item in query.order_by:
        if isinstance(order_item.field, n.Aggregate):
            index = add_aggregate(order_item.field)
            getter: Getter = _aggregate_sort_getter(index, aggregates[index][1])
        else:
            resolved = _resolve(context, obj, order_item.field)
            if _path_key(resolved) not in group_index:
                text = f"Ordered field must be grouped or aggregated: {resolved.name}"
                raise context.error(MALFORMED_QUERY, order_item.field, text)
            position = group_index[_path_key(resolved)]
            getter = lambda result, position=position: result[0][position]  # noqa: E731
        order.append((getter, order_item.descending, order_item.nulls_first))

    predicate = _compile_where(context, obj, query.where) if query.where else None
    return _AggregatePlan(
        context=context,
        obj=obj,
        predicate=predicate,
        groups=groups,
        aggregates=aggregates,
        outputs=outputs,
        order=order,
        limit=query.limit,
        offset=query.offset,
    )


def _aggregate_sort_getter(index: int, cat: str) -> Getter:
    if cat == TEXT:
        return lambda result: None if result[2][index] is None else str(result[2][index]).lower()
    return lambda result: result[2][index]
