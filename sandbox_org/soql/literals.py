"""Literal values: Salesforce string escapes, LIKE patterns, dates, date literals and ids."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta

# Escape sequences a SOQL string literal may hold ("Quoted String Escape Sequences" in the
# SOQL and SOSL Reference): \n \r \t \b \f in either case, \" \' \\ and \uXXXX; \_ and \%
# only inside LIKE. "If you use a backslash character in any other context, an error occurs."
_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "N": "\n",
    "R": "\r",
    "T": "\t",
    "B": "\b",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
_HEX = frozenset("0123456789abcdefABCDEF")


def _escape_at(raw: str, i: int) -> tuple[str, int]:
    """The character the escape at ``raw[i]`` (a backslash) stands for, and its length."""
    nxt = raw[i + 1] if i + 1 < len(raw) else ""
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], 2
    if nxt == "u":
        digits = raw[i + 2 : i + 6]
        if len(digits) == 4 and set(digits) <= _HEX:
            return chr(int(digits, 16)), 6
        raise EscapeError("\\u" + digits)
    raise EscapeError("\\" + nxt)


_LIKE_ONLY = {"_", "%"}


class EscapeError(ValueError):
    """An illegal escape; ``sequence`` is the offending two characters."""

    def __init__(self, sequence: str) -> None:
        super().__init__(sequence)
        self.sequence = sequence


def unescape(raw: str) -> str:
    """The value of a string literal outside LIKE (``raw`` is the text between the quotes)."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        char, size = _escape_at(raw, i)
        out.append(char)
        i += size
    return "".join(out)


def escape(value: str) -> str:
    """Escape ``value`` for a SOQL string literal (the inverse of ``unescape``)."""
    return (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
    )


def like_regex(raw: str) -> re.Pattern[str]:
    """A case-insensitive regex that matches the whole value for a LIKE pattern.

    ``%`` is any run of characters, ``_`` exactly one; ``\\%`` and ``\\_`` are themselves.
    """
    parts: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _LIKE_ONLY:
                parts.append(re.escape(nxt))
                i += 2
            else:
                char, size = _escape_at(raw, i)
                parts.append(re.escape(char))
                i += size
            continue
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# ---- dates ------------------------------------------------------------------------------

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})",
    re.IGNORECASE,
)


def parse_date(text: str) -> date:
    return date.fromisoformat(text)


def parse_datetime(text: str) -> datetime:
    """A SOQL dateTime literal (``2024-01-31T10:00:00Z``, ``...+01:00``, ``...000+0100``) in UTC."""
    m = _DATETIME_RE.fullmatch(text)
    if not m:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    millis = int((m.group(7) or "0").ljust(3, "0"))
    zone = m.group(8).upper()
    if zone == "Z":
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    naive = datetime(year, month, day, hour, minute, second, millis * 1000)
    return (naive - offset).replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """The wire form of a dateTime: ``2021-11-06T17:38:40.000+0000`` (always UTC)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def normalize_datetime(value: str) -> str:
    """A stored dateTime in the canonical wire form, so that strings compare as instants."""
    if len(value) == 28 and value.endswith("+0000") and value[19] == ".":
        return value
    return format_datetime(parse_datetime(value))


# Relative date literals ("Date Formats and Date Literals" in the SOQL and SOSL Reference).
# Weeks start on Sunday and fiscal periods equal calendar ones, as in an org with the default
# locale (en_US) and fiscal year settings. Ranges are evaluated in UTC.
_UNITS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")


def _start_of(unit: str, today: date) -> date:
    if unit == "DAY":
        return today
    if unit == "WEEK":
        return today - timedelta(days=(today.weekday() + 1) % 7)
    if unit == "MONTH":
        return today.replace(day=1)
    if unit == "QUARTER":
        return date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    return date(today.year, 1, 1)


def _shift(unit: str, start: date, k: int) -> date:
    if unit == "DAY":
        return start + timedelta(days=k)
    if unit == "WEEK":
        return start + timedelta(days=7 * k)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit] * k
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))


def _unit(word: str, *, plural: bool) -> str | None:
    word = word.removeprefix("FISCAL_")
    if plural != word.endswith("S"):
        return None
    word = word[:-1] if plural else word
    return word if word in _UNITS else None


_SIMPLE_ALIASES = {
    "TODAY": ("THIS", "DAY"),
    "YESTERDAY": ("LAST", "DAY"),
    "TOMORROW": ("NEXT", "DAY"),
    "LAST_90_DAYS": ("LAST_N", "DAY", 90),
    "NEXT_90_DAYS": ("NEXT_N", "DAY", 90),
}


def _classify(name: str) -> tuple[str, str] | None:
    """(kind, unit) for a literal name: kind THIS/LAST/NEXT/LAST_N/NEXT_N/N_AGO."""
    unit: str | None
    if name.startswith("N_") and name.endswith("_AGO"):
        unit = _unit(name[2:-4], plural=True)
        return ("N_AGO", unit) if unit else None
    for prefix in ("LAST_N_", "NEXT_N_"):
        if name.startswith(prefix):
            unit = _unit(name[len(prefix) :], plural=True)
            return (prefix[:-1], unit) if unit else None
    for prefix in ("THIS_", "LAST_", "NEXT_"):
        if name.startswith(prefix):
            unit = _unit(name[len(prefix) :], plural=False)
            return (prefix[:-1], unit) if unit and unit != "DAY" else None
    return None


def relative_date_kind(name: str) -> str | None:
    """``"plain"`` for literals like TODAY, ``"n"`` for ones that take ``:n``, else None."""
    name = name.upper()
    if name in _SIMPLE_ALIASES:
        return "plain"
    kind = _classify(name)
    if kind is None:
        return None
    return "n" if kind[0] in ("LAST_N", "NEXT_N", "N_AGO") else "plain"


def relative_date_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The half-open range [start, end) of dates a date literal stands for."""
    name = name.upper()
    alias = _SIMPLE_ALIASES.get(name)
    if alias is not None:
        kind, unit = alias[0], alias[1]
        if len(alias) == 3:
            n = alias[2]
    else:
        classified = _classify(name)
        if classified is None:
            raise ValueError(name)
        kind, unit = classified
    start = _start_of(unit, today)
    if kind == "THIS":
        return start, _shift(unit, start, 1)
    if kind == "LAST":
        return _shift(unit, start, -1), start
    if kind == "NEXT":
        return _shift(unit, start, 1), _shift(unit, start, 2)
    assert n is not None
    if kind == "N_AGO":
        return _shift(unit, start, -n), _shift(unit, start, -n + 1)
    if kind == "LAST_N":
        # LAST_N_DAYS:n includes today; LAST_N_WEEKS:n and longer end before the current one.
        if unit == "DAY":
            return today - timedelta(days=n), today + timedelta(days=1)
        return _shift(unit, start, -n), start
    # NEXT_N: starts with the next day/week/month/... and covers n of them.
    return _shift(unit, start, 1), _shift(unit, start, 1 + n)


def date_to_datetime_text(value: date) -> str:
    return f"{value.isoformat()}T00:00:00.000+0000"


# ---- ids --------------------------------------------------------------------------------

_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to_18(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None if it is not an id."""
    if not _ID_RE.fullmatch(record_id):
        return None
    if len(record_id) == 18:
        return record_id
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX_CHARS[bits]
    return record_id + suffix


def today_utc(now: datetime | None) -> date:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()
