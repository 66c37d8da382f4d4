"""The SOQL builder: conditions, describe checks of names, and immutable queries."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Any, Union

from ats_gateway.salesforce.soql.literals import SoqlError, UnknownField, escape, literal

Describe = Mapping[str, Any]
Describes = Mapping[str, Describe]

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*\Z")
_AGGREGATE = re.compile(r"COUNT\(\)\Z", re.IGNORECASE)


# --------------------------------------------------------------------------- conditions


class Condition:
    """A WHERE condition; combine with ``&``, ``|`` and ``~`` (or and_/or_/not_)."""

    def render(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def fields(self) -> Iterable[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return and_(self, other)

    def __or__(self, other: Condition) -> Condition:
        return or_(self, other)

    def __invert__(self) -> Condition:
        return not_(self)

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class _Compare(Condition):
    name: str
    op: str
    value: str  # rendered literal

    def render(self) -> str:
        return f"{self.name} {self.op} {self.value}"

    def fields(self) -> Iterable[str]:
        return (self.name,)


@dataclass(frozen=True)
class _Bool(Condition):
    op: str  # AND / OR
    parts: tuple[Condition, ...]

    def render(self) -> str:
        return f" {self.op} ".join(f"({p.render()})" for p in self.parts)

    def fields(self) -> Iterable[str]:
        for part in self.parts:
            yield from part.fields()


@dataclass(frozen=True)
class _Not(Condition):
    part: Condition

    def render(self) -> str:
        return f"NOT ({self.part.render()})"

    def fields(self) -> Iterable[str]:
        return self.part.fields()


def and_(*conditions: Condition) -> Condition:
    """All of ``conditions``."""
    return _combine("AND", conditions)


def or_(*conditions: Condition) -> Condition:
    """Any of ``conditions``."""
    return _combine("OR", conditions)


def not_(condition: Condition) -> Condition:
    """The negation of ``condition``."""
    if not isinstance(condition, Condition):
        raise SoqlError("not_() takes a condition")
    return _Not(condition)


def _combine(op: str, conditions: Sequence[Condition]) -> Condition:
    if not conditions:
        raise SoqlError(f"{op} of no conditions")
    parts: list[Condition] = []
    for cond in conditions:
        if not isinstance(cond, Condition):
            raise SoqlError(f"{op} takes conditions, not {type(cond).__name__}")
        parts.extend(cond.parts if isinstance(cond, _Bool) and cond.op == op else (cond,))
    return parts[0] if len(parts) == 1 else _Bool(op, tuple(parts))


def _check_path(name: str) -> str:
    if not isinstance(name, str) or not _PATH.match(name):
        raise SoqlError(f"not a field name: {name!r}")
    return name


@dataclass(frozen=True)
class Field:
    """A field (or relationship path) to build conditions on: ``field("Name").eq("x")``."""

    name: str

    def __post_init__(self) -> None:
        _check_path(self.name)

    def _cmp(self, op: str, value: Any) -> Condition:
        return _Compare(self.name, op, literal(value))

    def eq(self, value: Any) -> Condition:
        return self._cmp("=", value)

    def ne(self, value: Any) -> Condition:
        return self._cmp("!=", value)

    def lt(self, value: Any) -> Condition:
        return self._cmp("<", value)

    def le(self, value: Any) -> Condition:
        return self._cmp("<=", value)

    def gt(self, value: Any) -> Condition:
        return self._cmp(">", value)

    def ge(self, value: Any) -> Condition:
        return self._cmp(">=", value)

    def is_null(self) -> Condition:
        return _Compare(self.name, "=", "null")

    def is_not_null(self) -> Condition:
        return _Compare(self.name, "!=", "null")

    def in_(self, values: Iterable[Any]) -> Condition:
        """``IN (...)``; an empty list is refused (SOQL has no empty IN list)."""
        return _Compare(self.name, "IN", _list(values))

    def not_in(self, values: Iterable[Any]) -> Condition:
        return _Compare(self.name, "NOT IN", _list(values))

    def includes(self, values: Iterable[str]) -> Condition:
        """Multi-select picklist ``INCLUDES``."""
        return _Compare(self.name, "INCLUDES", _list(values))

    def excludes(self, values: Iterable[str]) -> Condition:
        return _Compare(self.name, "EXCLUDES", _list(values))

    def like(self, pattern: str, *, wildcards: bool = False) -> Condition:
        """``LIKE`` on ``pattern`` taken literally (``%``/``_`` escaped).

        With ``wildcards=True`` the caller's ``%`` and ``_`` keep their LIKE meaning (quotes and
        backslashes are still escaped); use that only for patterns the code wrote itself.
        """
        if not isinstance(pattern, str):
            raise SoqlError("LIKE takes a string")
        return _Compare(self.name, "LIKE", f"'{escape(pattern, like=not wildcards)}'")

    def contains(self, text: str) -> Condition:
        return _Compare(self.name, "LIKE", f"'%{_like_text(text)}%'")

    def startswith(self, text: str) -> Condition:
        return _Compare(self.name, "LIKE", f"'{_like_text(text)}%'")

    def endswith(self, text: str) -> Condition:
        return _Compare(self.name, "LIKE", f"'%{_like_text(text)}'")


def _like_text(text: str) -> str:
    if not isinstance(text, str):
        raise SoqlError("LIKE takes a string")
    return escape(text, like=True)


def _list(values: Iterable[Any]) -> str:
    if isinstance(values, (str, bytes)):
        raise SoqlError("IN takes a list of values, not a string")
    rendered = [literal(v) for v in values]
    if not rendered:
        raise SoqlError("IN of an empty list")
    return "(" + ", ".join(rendered) + ")"


def field(name: str) -> Field:
    """A field reference for conditions."""
    return Field(name)


# --------------------------------------------------------------------------- describe checks


def find_describe(describes: Describes, sobject: str) -> Describe | None:
    """``describes[sobject]``, matching the name case-insensitively as Salesforce does."""
    found = describes.get(sobject)
    if found is not None:
        return found
    lowered = sobject.lower()
    for name, describe in describes.items():
        if name.lower() == lowered:
            return describe
    return None


def _fields_of(describe: Describe) -> dict[str, Mapping[str, Any]]:
    return {str(f["name"]).lower(): f for f in describe.get("fields") or ()}


def resolve_path(describes: Describes, sobject: str, path: str) -> tuple[str, Mapping[str, Any]]:
    """Follow ``path`` from ``sobject``; returns (object the last field is on, its describe).

    Raises :class:`UnknownField` for anything not in ``describes``.
    """
    current = sobject
    parts = _check_path(path).split(".")
    for rel in parts[:-1]:
        describe = find_describe(describes, current)
        if describe is None:
            raise UnknownField(f"no describe metadata for {current}")
        ref = next(
            (
                f
                for f in describe.get("fields") or ()
                if str(f.get("relationshipName") or "").lower() == rel.lower()
            ),
            None,
        )
        if ref is None:
            raise UnknownField(f"{current} has no relationship {rel!r}")
        targets = [
            t for t in ref.get("referenceTo") or () if find_describe(describes, t) is not None
        ]
        if not targets:
            raise UnknownField(
                f"relationship {current}.{rel} leads to {list(ref.get('referenceTo') or ())}, "
                "whose describe metadata was not given"
            )
        current = targets[0]
    describe = find_describe(describes, current)
    if describe is None:
        raise UnknownField(f"no describe metadata for {current}")
    meta = _fields_of(describe).get(parts[-1].lower())
    if meta is None:
        raise UnknownField(f"{current} has no field {parts[-1]!r}")
    return current, meta


def child_sobject(describes: Describes, sobject: str, relationship: str) -> str:
    """The child object behind ``relationship`` (a childRelationships name) of ``sobject``."""
    describe = find_describe(describes, sobject)
    if describe is None:
        raise UnknownField(f"no describe metadata for {sobject}")
    for rel in describe.get("childRelationships") or ():
        if str(rel.get("relationshipName") or "").lower() == relationship.lower():
            return str(rel["childSObject"])
    raise UnknownField(f"{sobject} has no child relationship {relationship!r}")


# --------------------------------------------------------------------------- queries

SelectItem = Union[str, "Query"]


@dataclass(frozen=True)
class _Order:
    name: str
    descending: bool
    nulls: str | None


@dataclass(frozen=True)
class Select:
    """``select(...)`` before ``.from_(...)``."""

    items: tuple[SelectItem, ...]

    def from_(self, sobject: str, *, describes: Describes | None = None) -> Query:
        """The object to query (or, for a subquery, the child relationship name).

        ``describes`` maps object API names to describe results; when given, every field,
        relationship path and subquery is checked against it on render.
        """
        if not isinstance(sobject, str) or not _IDENT.match(sobject):
            raise SoqlError(f"not an object name: {sobject!r}")
        return Query(self.items, sobject, describes=describes)


def select(*items: SelectItem) -> Select:
    """Start a query: field names, relationship paths, ``COUNT()`` or subqueries."""
    if not items:
        raise SoqlError("select() needs at least one field")
    for item in items:
        if isinstance(item, Query):
            continue
        if not (isinstance(item, str) and (_PATH.match(item) or _AGGREGATE.match(item))):
            raise SoqlError(f"not a field name: {item!r}")
    return Select(tuple(items))


@dataclass(frozen=True)
class Query:
    """An immutable query; every builder method returns a new one."""

    items: tuple[SelectItem, ...]
    sobject: str
    condition: Condition | None = None
    orders: tuple[_Order, ...] = ()
    limit_: int | None = None
    offset_: int | None = None
    describes: Describes | None = dc_field(default=None, compare=False, repr=False)

    def where(self, *conditions: Condition, **equals: Any) -> Query:
        """AND the conditions (and ``field=value`` equalities) to the query's WHERE."""
        parts = list(conditions) + [Field(k).eq(v) for k, v in equals.items()]
        if not parts:
            return self
        if self.condition is not None:
            parts.insert(0, self.condition)
        return replace(self, condition=and_(*parts))

    def order_by(self, *names: str, nulls: str | None = None) -> Query:
        """Sort by fields; a leading ``-`` means descending. ``nulls`` is "first" or "last"."""
        if nulls is not None and nulls.lower() not in ("first", "last"):
            raise SoqlError("nulls must be 'first' or 'last'")
        orders = list(self.orders)
        for name in names:
            desc = name.startswith("-")
            orders.append(_Order(_check_path(name.lstrip("-")), desc, nulls and nulls.upper()))
        return replace(self, orders=tuple(orders))

    def limit(self, n: int) -> Query:
        return replace(self, limit_=_non_negative(n, "LIMIT"))

    def offset(self, n: int) -> Query:
        return replace(self, offset_=_non_negative(n, "OFFSET"))

    # -- checks ---------------------------------------------------------------------

    def check(self, describes: Describes | None = None) -> None:
        """Refuse fields, paths and subqueries not in the describe metadata."""
        describes = describes if describes is not None else self.describes
        if describes is None:
            return
        self._check(describes, self.sobject)

    def _check(self, describes: Describes, sobject: str) -> None:
        if find_describe(describes, sobject) is None:
            raise UnknownField(f"no describe metadata for {sobject}")
        for item in self.items:
            if isinstance(item, Query):
                child = child_sobject(describes, sobject, item.sobject)
                item._check(describes, child)
            elif not _AGGREGATE.match(item):
                resolve_path(describes, sobject, item)
        if self.condition is not None:
            for name in self.condition.fields():
                _, meta = resolve_path(describes, sobject, name)
                if meta.get("filterable") is False:
                    raise UnknownField(f"{name} is not filterable")
        for order in self.orders:
            _, meta = resolve_path(describes, sobject, order.name)
            if meta.get("sortable") is False:
                raise UnknownField(f"{order.name} is not sortable")

    # -- rendering ------------------------------------------------------------------

    def render(self) -> str:
        """The SOQL text (checked against the describes given to ``from_``, if any)."""
        self.check()
        return self._render()

    def _render(self) -> str:
        cols = ", ".join(f"({i._render()})" if isinstance(i, Query) else i for i in self.items)
        # names were checked as identifiers and values rendered by literal()
        parts = [f"SELECT {cols} FROM {self.sobject}"]  # noqa: S608
        if self.condition is not None:
            parts.append(f"WHERE {self.condition.render()}")
        if self.orders:
            rendered = []
            for o in self.orders:
                text = f"{o.name} {'DESC' if o.descending else 'ASC'}"
                rendered.append(text + (f" NULLS {o.nulls}" if o.nulls else ""))
            parts.append("ORDER BY " + ", ".join(rendered))
        if self.limit_ is not None:
            parts.append(f"LIMIT {self.limit_}")
        if self.offset_ is not None:
            parts.append(f"OFFSET {self.offset_}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.render()


def _non_negative(n: int, what: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise SoqlError(f"{what} must be a non-negative int")
    return n
