"""SOQL literals: user text only ever reaches SOQL through :func:`literal`.

:func:`escape` follows the SOQL reference ("Quoted String Escape Sequences",
developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
sforce_api_calls_soql_select_quotedstringescapes.htm): backslash, both quotes, new line,
carriage return, tab, bell (``\\b``) and form feed; in LIKE patterns also ``%`` and ``_``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


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


def parse_datetime(value: Any) -> dt.datetime | None:
    """A dateTime as the REST API returns it (``2026-01-02T03:04:05.000+0000``), or None."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
