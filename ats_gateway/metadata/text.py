"""Text the org would refuse or store dangerously, refused at intake instead.

* **Control and invisible formatting characters**: NUL, ESC, CR/LF in a one-line field, the
  bidirectional overrides (U+202A-U+202E, U+2066-U+2069) that make a name read differently
  from what it is, lone surrogates (not valid Unicode; the org's UTF-8 cannot store them) and
  non-characters of the Basic Multilingual Plane. A multi-line field (``textarea``) keeps tab,
  CR and LF.
* **Email addresses** as Salesforce's Email field takes them: ASCII only (Salesforce refuses
  internationalized addresses with ``INVALID_EMAIL_ADDRESS``), a dotted domain name, never an
  IP literal. The syntax check is the `email-validator` library's (RFC 5321/5322 with the
  usual practical limits), with deliverability (DNS) checks off: intake never waits on DNS.
* **Spreadsheet formulas** ([21]): recruiters export candidates and feedback from the org to
  spreadsheets, where a cell starting ``=``, ``+``, ``-``, ``@``, tab or CR is a formula
  (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``). :func:`neutralise_formula` applies OWASP's
  CSV-injection rule on the way to the org: such a text value is stored with a leading
  apostrophe (``'=HYPERLINK(...)``), which spreadsheets show as text. Only free-text fields
  (``string``, ``textarea``) are changed: a phone number's ``+`` or an email stays as it is.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, validate

# One definition of what text may not carry, used by the validator and published in the JSON
# Schema (a `pattern`: plain_text_pattern), written with \uXXXX escapes that Python's `re`
# and ECMA-262 (JSON Schema's regex dialect) read alike: C0/C1 controls, bidi embeddings and
# overrides (U+202A-E), isolates (U+2066-9), lone surrogates, and the BMP's non-characters.
_FORBIDDEN = r"\u007f-\u009f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
SINGLE_LINE_FORBIDDEN = r"[\u0000-\u001f" + _FORBIDDEN + "]"
MULTI_LINE_FORBIDDEN = r"[\u0000-\u0008\u000b\u000c\u000e-\u001f" + _FORBIDDEN + "]"
_SINGLE = re.compile(SINGLE_LINE_FORBIDDEN)
_MULTI = re.compile(MULTI_LINE_FORBIDDEN)
_BASIC_EMAIL = validate.Email()


#: OWASP, "CSV Injection": the characters that make a spreadsheet cell a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIELD_TYPES = frozenset({"string", "textarea"})


def neutralise_formula(text: str, max_length: int | None = None) -> str:
    """`text` with a leading apostrophe when a spreadsheet would read it as a formula (cut to
    `max_length` if the apostrophe makes it one character too long)."""
    if not text.startswith(FORMULA_PREFIXES):
        return text
    text = "'" + text
    return text[:max_length] if max_length else text


def plain_text_pattern(*, multiline: bool, not_blank: bool) -> str:
    """The JSON Schema `pattern` of acceptable text: none of the forbidden characters and,
    with `not_blank`, at least one that is not white space (no lookahead: JSON Schema
    generators such as hypothesis-jsonschema cannot use one)."""
    allowed = "[^" + (MULTI_LINE_FORBIDDEN if multiline else SINGLE_LINE_FORBIDDEN)[1:]
    if not not_blank:
        return f"^{allowed}*$"
    visible = r"[^\s" + (MULTI_LINE_FORBIDDEN if multiline else SINGLE_LINE_FORBIDDEN)[1:]
    return f"^{allowed}*{visible}{allowed}*$"


def bad_character(text: str, *, multiline: bool) -> str | None:
    """The first character `text` must not carry (as ``U+XXXX``), or None."""
    found = (_MULTI if multiline else _SINGLE).search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


class PlainText(validate.Validator):
    """Refuses control characters, bidi overrides, lone surrogates and non-characters."""

    def __init__(self, error: str, *, multiline: bool = False) -> None:
        self.error = error
        self.multiline = multiline

    def __call__(self, value: str) -> str:
        if isinstance(value, str) and bad_character(value, multiline=self.multiline):
            raise ValidationError(self.error)
        return value


class OrgEmail(validate.Validator):
    """An address Salesforce's Email field accepts (see the module docstring)."""

    def __init__(self, error: str) -> None:
        self.error = error

    def __call__(self, value: str) -> str:
        try:
            _BASIC_EMAIL(value)
        except ValidationError:
            return value  # marshmallow's own Email check already says so, once
        if not isinstance(value, str) or not value.isascii():
            raise ValidationError(self.error)
        try:
            validate_email(
                value,
                check_deliverability=False,
                allow_smtputf8=False,
                allow_domain_literal=False,
                allow_quoted_local=False,
            )
        except EmailNotValidError:
            raise ValidationError(self.error) from None
        return value
