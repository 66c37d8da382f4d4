"""Reading SOQL back: tokens, and the shape of a statement (the objects it reads).

The client checks a query's objects against a connection's allow-list with :func:`inspect`;
the tests use :func:`tokenize` to show that no value can change a query's structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from ats_gateway.salesforce.soql.literals import SoqlError, unescape

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
