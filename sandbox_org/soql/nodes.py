"""The syntax tree ``parse`` returns. Every node that can be blamed in an error keeps its
1-based ``line`` and ``column`` in the query text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Name:
    value: str
    line: int
    column: int


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class AliasedField:
    """``field alias`` in the SELECT list: legal only for grouped fields."""

    path: FieldPath
    alias: Name


@dataclass(frozen=True)
class FieldsFn:
    """``FIELDS(ALL)``, ``FIELDS(STANDARD)`` or ``FIELDS(CUSTOM)``."""

    which: str  # upper case
    line: int
    column: int


@dataclass(frozen=True)
class CountAll:
    line: int
    column: int


@dataclass(frozen=True)
class Aggregate:
    """``COUNT(Id)``, ``COUNT_DISTINCT(f)``, ``SUM(f)``, ``AVG(f)``, ``MIN(f)``, ``MAX(f)``."""

    func: str  # upper case
    field: FieldPath
    alias: str | None
    line: int
    column: int


# ---- literals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StringLit:
    """A quoted string; ``raw`` is the text between the quotes, escapes not yet applied,
    because ``\\_`` and ``\\%`` mean something only in LIKE."""

    raw: str
    line: int
    column: int


@dataclass(frozen=True)
class NumberLit:
    value: int | float
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class BoolLit:
    value: bool
    line: int
    column: int


@dataclass(frozen=True)
class NullLit:
    line: int
    column: int


@dataclass(frozen=True)
class DateLit:
    value: date
    line: int
    column: int


@dataclass(frozen=True)
class DateTimeLit:
    value: datetime  # timezone-aware, UTC
    line: int
    column: int


@dataclass(frozen=True)
class RelativeDate:
    """A date literal such as ``TODAY`` or ``LAST_N_DAYS:7`` (``n`` is None without ``:n``)."""

    name: str
    n: int | None
    line: int
    column: int


Literal = StringLit | NumberLit | BoolLit | NullLit | DateLit | DateTimeLit | RelativeDate


# ---- conditions -------------------------------------------------------------------------


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Compare:
    field: FieldPath
    op: str  # one of = != < <= > >=  (<> is normalised to !=)
    value: Literal


@dataclass(frozen=True)
class Like:
    field: FieldPath
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldPath
    values: tuple[Literal, ...]
    negate: bool


@dataclass(frozen=True)
class InSubquery:
    field: FieldPath
    subquery: Query
    negate: bool


@dataclass(frozen=True)
class Includes:
    field: FieldPath
    values: tuple[Literal, ...]
    exclude: bool


Condition = And | Or | Not | Compare | Like | InList | InSubquery | Includes


# ---- query ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath | Aggregate
    descending: bool
    nulls_first: bool  # defaults: ASC NULLS FIRST, DESC NULLS LAST


@dataclass(frozen=True)
class Query:
    select: tuple[FieldPath | AliasedField | FieldsFn | CountAll | Aggregate | Query, ...]
    sobject: Name
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    alias: str | None = None  # FROM Contact c
    group_by: tuple[FieldPath, ...] = ()
    line: int = 1
    column: int = 1
