"""A small SOQL builder: field names checked against describe metadata, values as typed literals.

    from ats_gateway.salesforce.soql import select, field as f

    q = (
        select("Id", "Name", "bpats__Job__r.Name")
        .from_("bpats__Job_Board_Application__c", describes=catalog)
        .where(f("bpats__Email__c").in_(emails) & f("bpats__Status__c").ne("Rejected"))
        .order_by("-CreatedDate")
        .limit(200)
    )
    q.render()  # "SELECT Id, Name, bpats__Job__r.Name FROM ... WHERE (...) AND (...) ..."

User text only ever reaches SOQL through :func:`literal`, which escapes it the way the SOQL
reference requires ("Quoted String Escape Sequences",
developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
sforce_api_calls_soql_select_quotedstringescapes.htm): backslash, both quotes, new line,
carriage return, tab, bell (``\\b``) and form feed; in LIKE patterns also ``%`` and ``_``. Field
and object names must be identifiers (checked always) and, when describe metadata is given,
fields of the object (relationship paths resolved through ``relationshipName`` and
``referenceTo``, child subqueries through ``childRelationships``).

:func:`tokenize` and :func:`inspect` read SOQL back (strings, identifiers, literals, operators);
the client uses them to check a query's objects against a connection's allow-list, and the tests
use them to show that no value can change a query's structure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any, Union

__all__ = [
    "Condition",
    "DateLiteral",
    "Field",
    "Query",
    "QueryShape",
    "SoqlError",
    "UnknownField",
    "and_",
    "escape",
    "field",
    "find_describe",
    "inspect",
    "literal",
    "not_",
    "or_",
    "select",
    "tokenize",
    "unescape",
]

Describe = Mapping[str, Any]
Describes = Mapping[str, Describe]

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*\Z")
_AGGREGATE = re.compile(r"COUNT\(\)\Z", re.IGNORECASE)


class SoqlError(ValueError):
    """A query that cannot be built (bad name, bad value, bad SOQL text)."""


class UnknownField(SoqlError):
    """A field, relationship or object not in the describe metadata given."""


# --------------------------------------------------------------------------- literals

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {**_ESCAPES, "%": "\\%", "_": "\\_"}
_UNESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    "%": "\\%",  # kept escaped: only LIKE gives them meaning
    "_": "\\_",
}


def escape(text: str, *, like: bool = False) -> str:
    """``text`` escaped for use between single quotes (and as a literal LIKE pattern)."""
    table = _LIKE_ESCAPES if like else _ESCAPES
    return "".join(table.get(ch, ch) for ch in text)


def unescape(body: str) -> str:
    """Inverse of :func:`escape` for the text between the quotes (``\\%``/``\\_`` stay escaped)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body):
                raise SoqlError("dangling backslash in string literal")
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 2 : i + 6]):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _UNESCAPES:
                raise SoqlError(f"invalid escape sequence \\{nxt}")
            out.append(_UNESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class DateLiteral:
    """A SOQL date literal such as ``TODAY`` or ``LAST_N_DAYS:30``."""

    name: str
    n: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.name):
            raise SoqlError(f"not a date literal: {self.name!r}")
        if self.n is not None and (not isinstance(self.n, int) or isinstance(self.n, bool)):
            raise SoqlError("date literal argument must be an int")

    def render(self) -> str:
        return self.name if self.n is None else f"{self.name}:{self.n}"


def literal(value: Any) -> str:
    """``value`` as a SOQL literal of its type.

    str -> quoted and escaped; bool -> true/false; int, float, Decimal -> plain digits;
    date -> 2024-01-31; aware datetime -> 2024-01-31T12:00:00Z (UTC; naive ones are refused);
    None -> null; :class:`DateLiteral` -> as is.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{escape(value)}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SoqlError("NaN and infinity have no SOQL literal")
        return _plain_decimal(Decimal(repr(value)))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SoqlError("NaN and infinity have no SOQL literal")
        return _plain_decimal(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise SoqlError("naive datetime: give a timezone (SOQL datetimes are absolute)")
        utc = value.astimezone(dt.UTC)
        frac = f".{utc.microsecond // 1000:03d}" if utc.microsecond else ""
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, DateLiteral):
        return value.render()
    raise SoqlError(f"no SOQL literal for {type(value).__name__}")


def _plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


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


# --------------------------------------------------------------------------- reading SOQL back

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<=|>=|<>|=|<|>|\(|\)|,|:)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, datetime, date, number, ident, op
    text: str

    @property
    def value(self) -> str:
        """For a string token, the text it stands for."""
        return unescape(self.text[1:-1]) if self.kind == "string" else self.text


def tokenize(soql: str) -> list[Token]:
    """SOQL text as tokens; raises :class:`SoqlError` on anything unlexable."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if m is None:
            raise SoqlError(f"cannot read SOQL at offset {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group()))
        pos = m.end()
    return tokens


_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "includes",
    "excludes",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "null",
    "true",
    "false",
    "group",
    "having",
    "with",
    "for",
    "view",
    "reference",
    "update",
    "using",
    "scope",
    "typeof",
    "when",
    "then",
    "else",
    "end",
    "all",
    "rows",
    "security_enforced",
    "user_mode",
    "system_mode",
}


@dataclass
class QueryShape:
    """What a SOQL statement reads: its object, relationship paths and nested queries."""

    sobject: str
    paths: set[str] = dc_field(default_factory=set)  # dotted paths used anywhere
    subqueries: list[QueryShape] = dc_field(default_factory=list)  # FROM <child relationship>
    semi_joins: list[QueryShape] = dc_field(default_factory=list)  # WHERE x IN (SELECT ...)


def inspect(soql: str) -> QueryShape:
    """The shape of a SOQL statement (objects it reads), read from its tokens."""
    tokens = tokenize(soql)
    shape, pos = _shape(tokens, 0)
    if pos != len(tokens):
        raise SoqlError("unbalanced parentheses in SOQL")
    return shape


def _is_select(tokens: list[Token], pos: int) -> bool:
    tok = tokens[pos] if pos < len(tokens) else None
    return tok is not None and tok.kind == "ident" and tok.text.lower() == "select"


def _shape(tokens: list[Token], pos: int) -> tuple[QueryShape, int]:
    """One SELECT statement from ``pos`` to its closing parenthesis (or the end)."""
    shape = QueryShape("")
    expect_from = False
    seen_from = False
    while pos < len(tokens):
        tok = tokens[pos]
        if tok.kind == "op" and tok.text == ")":
            break
        if tok.kind == "op" and tok.text == "(":
            pos = _group(tokens, pos + 1, shape, semi_join=seen_from)
            continue
        if tok.kind == "ident":
            if expect_from:
                shape.sobject = tok.text
                expect_from = False
            elif tok.text.lower() == "from" and not seen_from:
                expect_from = seen_from = True
            elif "." in tok.text:
                shape.paths.add(tok.text)
        pos += 1
    if not shape.sobject:
        raise SoqlError("SOQL without FROM")
    return shape, pos


def _group(tokens: list[Token], pos: int, shape: QueryShape, *, semi_join: bool) -> int:
    """A parenthesised part starting after "("; returns the position after its ")"."""
    if _is_select(tokens, pos):
        sub, pos = _shape(tokens, pos)
        (shape.semi_joins if semi_join else shape.subqueries).append(sub)
    else:
        while pos < len(tokens) and not (tokens[pos].kind == "op" and tokens[pos].text == ")"):
            tok = tokens[pos]
            if tok.kind == "op" and tok.text == "(":
                pos = _group(tokens, pos + 1, shape, semi_join=semi_join)
                continue
            if tok.kind == "ident" and "." in tok.text:
                shape.paths.add(tok.text)
            pos += 1
    if pos >= len(tokens):
        raise SoqlError("unbalanced parentheses in SOQL")
    return pos + 1
