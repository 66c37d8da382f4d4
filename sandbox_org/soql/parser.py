"""Text -> syntax tree (``nodes.Query``), with lark and the grammar in ``soql.lark``."""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from . import nodes as n
from .errors import MALFORMED_QUERY, SoqlError, located
from .literals import parse_date, parse_datetime, relative_date_kind

_parser: Lark | None = None
_parser_lock = threading.Lock()


def _get_parser() -> Lark:
    """The LALR parser, built on first use (building it costs a few tens of milliseconds)."""
    global _parser
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                grammar = resources.files(__package__).joinpath("soql.lark").read_text("utf-8")
                _parser = Lark(grammar, parser="lalr", lexer="basic", propagate_positions=False)
    return _parser


def parse(soql: str) -> n.Query:
    """Parse a SOQL statement; raises ``SoqlError`` (MALFORMED_QUERY) on a syntax error."""
    if soql is None or not soql.strip():
        raise SoqlError(MALFORMED_QUERY, "SOQL statements cannot be empty or null")
    try:
        tree = _get_parser().parse(soql)
    except UnexpectedInput as exc:
        raise _syntax_error(soql, exc) from None
    except LarkError as exc:  # pragma: no cover - lark raises UnexpectedInput for bad input
        raise SoqlError(MALFORMED_QUERY, str(exc)) from None
    try:
        return _ToAst(soql).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise


def _end_position(soql: str) -> tuple[int, int]:
    lines = soql.split("\n")
    return len(lines), len(lines[-1]) + 1


def _syntax_error(soql: str, exc: UnexpectedInput) -> SoqlError:
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            row, column = _end_position(soql)
            return located(MALFORMED_QUERY, soql, row, column, "unexpected token: <EOF>")
        return located(
            MALFORMED_QUERY, soql, token.line, token.column, f"unexpected token: '{token}'"
        )
    if isinstance(exc, UnexpectedCharacters):
        char = soql[exc.pos_in_stream] if exc.pos_in_stream < len(soql) else "<EOF>"
        if char == "'":
            # An unterminated string literal: the lexer cannot find the closing quote.
            return located(MALFORMED_QUERY, soql, exc.line, exc.column, "unexpected token: <EOF>")
        return SoqlError(
            MALFORMED_QUERY,
            f"line {exc.line}:{exc.column - 1} no viable alternative at character '{char}'",
            row=exc.line,
            column=exc.column,
        )
    row, column = _end_position(soql)  # pragma: no cover - UnexpectedEOF is not used by LALR
    return located(MALFORMED_QUERY, soql, row, column, "unexpected token: <EOF>")


class _Ignored:
    """A clause that is accepted and has no effect here (WITH SECURITY_ENFORCED, FOR VIEW)."""


_WITH_WORDS = {"SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"}
_FOR_WORDS = {"VIEW", "REFERENCE", "UPDATE"}


@v_args(inline=True)
class _ToAst(Transformer):
    def __init__(self, soql: str) -> None:
        super().__init__()
        self.soql = soql

    def _error(self, token: Token, text: str) -> SoqlError:
        return located(MALFORMED_QUERY, self.soql, token.line, token.column, text)

    # -- top level ------------------------------------------------------------------------

    def start(self, query: n.Query) -> n.Query:
        return query

    def query(self, select: tuple, sobject: Token, *clauses: Any) -> n.Query:
        return self._build(select, sobject, clauses)

    def subquery(self, select: tuple, sobject: Token, *clauses: Any) -> n.Query:
        return self._build(select, sobject, clauses)

    def _build(self, select: tuple, sobject: Token, clauses: tuple) -> n.Query:
        where = None
        order: tuple[n.OrderItem, ...] = ()
        limit = offset = alias = None
        group: tuple[n.FieldPath, ...] = ()
        for clause in clauses:
            kind, value = clause if isinstance(clause, tuple) else (None, None)
            if kind == "where":
                where = value
            elif kind == "order":
                order = value
            elif kind == "limit":
                limit = value
            elif kind == "offset":
                offset = value
            elif kind == "alias":
                alias = value
            elif kind == "group":
                group = value
        return n.Query(
            select=select,
            sobject=n.Name(str(sobject), sobject.line, sobject.column),
            where=where,
            order_by=order,
            limit=limit,
            offset=offset,
            alias=alias,
            group_by=group,
        )

    def select_list(self, *items: Any) -> tuple:
        return items

    def count_all(self, token: Token) -> n.CountAll:
        return n.CountAll(token.line, token.column)

    def fields_fn(self, token: Token, which: Token) -> n.FieldsFn:
        word = str(which).upper()
        if word not in ("ALL", "STANDARD", "CUSTOM"):
            raise self._error(which, f"unexpected token: '{which}'")
        return n.FieldsFn(word, token.line, token.column)

    def aliased_field(self, path: n.FieldPath, alias: Token) -> n.AliasedField:
        return n.AliasedField(path, n.Name(str(alias), alias.line, alias.column))

    def agg_call(self, func: Token, field: n.FieldPath) -> n.Aggregate:
        return n.Aggregate(str(func).upper(), field, None, func.line, func.column)

    def aggregate(self, call: n.Aggregate, alias: Token | None = None) -> n.Aggregate:
        if alias is None:
            return call
        return n.Aggregate(call.func, call.field, str(alias), call.line, call.column)

    def group_clause(self, *fields: n.FieldPath) -> tuple:
        return ("group", fields)

    def alias(self, token: Token) -> tuple:
        return ("alias", str(token))

    def field_path(self, *parts: Token) -> n.FieldPath:
        return n.FieldPath(tuple(str(p) for p in parts), parts[0].line, parts[0].column)

    # -- clauses --------------------------------------------------------------------------

    def where_clause(self, condition: n.Condition) -> tuple:
        return ("where", condition)

    def order_clause(self, *items: n.OrderItem) -> tuple:
        return ("order", items)

    def order_item(self, field: n.FieldPath, *mods: Any) -> n.OrderItem:
        descending = False
        nulls_first: bool | None = None
        for mod in mods:
            if isinstance(mod, str):
                descending = mod == "DESC"
            else:
                nulls_first = mod
        if nulls_first is None:
            nulls_first = not descending
        return n.OrderItem(field, descending, nulls_first)

    def direction(self, token: Token) -> str:
        return str(token).upper()

    def nulls(self, _nulls: Token, position: Token) -> bool:
        return str(position).upper() == "FIRST"

    def _count(self, token: Token) -> int:
        text = str(token)
        if not text.isdigit():
            raise self._error(token, f"unexpected token: '{text}'")
        return int(text)

    def limit_clause(self, _kw: Token, number: Token) -> tuple:
        return ("limit", self._count(number))

    def offset_clause(self, _kw: Token, number: Token) -> tuple:
        return ("offset", self._count(number))

    def with_clause(self, _kw: Token, word: Token) -> _Ignored:
        if str(word).upper() not in _WITH_WORDS:
            raise self._error(word, f"unexpected token: '{word}'")
        return _Ignored()

    def for_clause(self, _kw: Token, *words: Token) -> _Ignored:
        for word in words:
            if str(word).upper() not in _FOR_WORDS:
                raise self._error(word, f"unexpected token: '{word}'")
        return _Ignored()

    # -- conditions -----------------------------------------------------------------------

    def and_chain(self, *items: n.Condition) -> n.And:
        return n.And(items)

    def or_chain(self, *items: n.Condition) -> n.Or:
        return n.Or(items)

    def not_expr(self, _kw: Token, item: n.Condition) -> n.Not:
        return n.Not(item)

    def compare(self, field: n.FieldPath, op: Token, value: n.Literal) -> n.Compare:
        text = str(op)
        return n.Compare(field, "!=" if text == "<>" else text, value)

    def like(self, field: n.FieldPath, _kw: Token, value: n.Literal) -> n.Like:
        return n.Like(field, value)

    def in_list(self, field: n.FieldPath, _kw: Token, values: tuple) -> n.InList:
        return n.InList(field, values, negate=False)

    def not_in_list(self, field: n.FieldPath, _not: Token, _kw: Token, values: tuple) -> n.InList:
        return n.InList(field, values, negate=True)

    def in_subquery(self, field: n.FieldPath, _kw: Token, query: n.Query) -> n.InSubquery:
        return n.InSubquery(field, query, negate=False)

    def not_in_subquery(
        self, field: n.FieldPath, _not: Token, _kw: Token, query: n.Query
    ) -> n.InSubquery:
        return n.InSubquery(field, query, negate=True)

    def includes(self, field: n.FieldPath, _kw: Token, values: tuple) -> n.Includes:
        return n.Includes(field, values, exclude=False)

    def excludes(self, field: n.FieldPath, _kw: Token, values: tuple) -> n.Includes:
        return n.Includes(field, values, exclude=True)

    def value_list(self, *values: n.Literal) -> tuple:
        return values

    # -- literals -------------------------------------------------------------------------

    def string_value(self, token: Token) -> n.StringLit:
        return n.StringLit(str(token)[1:-1], token.line, token.column)

    def number_value(self, token: Token) -> n.NumberLit:
        text = str(token)
        value: int | float = float(text) if "." in text else int(text)
        return n.NumberLit(value, text, token.line, token.column)

    def date_value(self, token: Token) -> n.DateLit:
        try:
            return n.DateLit(parse_date(str(token)), token.line, token.column)
        except ValueError:
            raise self._error(token, f"Invalid date: {token}") from None

    def datetime_value(self, token: Token) -> n.DateTimeLit:
        try:
            return n.DateTimeLit(parse_datetime(str(token)), token.line, token.column)
        except ValueError:
            raise self._error(token, f"Invalid datetime: {token}") from None

    def word_value(self, token: Token) -> n.Literal:
        word = str(token).upper()
        if word == "NULL":
            return n.NullLit(token.line, token.column)
        if word in ("TRUE", "FALSE"):
            return n.BoolLit(word == "TRUE", token.line, token.column)
        kind = relative_date_kind(word)
        if kind == "plain":
            return n.RelativeDate(word, None, token.line, token.column)
        if kind == "n":
            # Salesforce's wording for a date literal that needs ":n" but has none.
            raise self._error(token, f"unexpected token: '{token}'")
        raise self._error(token, f"unexpected token: '{token}'")

    def date_n_value(self, token: Token, number: Token) -> n.RelativeDate:
        if relative_date_kind(str(token)) != "n":
            raise self._error(token, f"unexpected token: '{token}'")
        if not str(number).isdigit():
            raise self._error(number, f"unexpected token: '{number}'")
        return n.RelativeDate(str(token).upper(), int(str(number)), token.line, token.column)
