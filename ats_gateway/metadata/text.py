"""Text the org would refuse or store dangerously, refused at intake instead.

* **Control and invisible formatting characters**: NUL, ESC, CR/LF in a one-line field, the
  bidirectional overrides (U+202A-U+202E, U+2066-U+2069) that make a name read differently
  from what it is, lone surrogates (not valid Unicode; the org's UTF-8 cannot store them) and
  non-characters. A multi-line field (``textarea``) keeps tab, CR and LF.
* **Email addresses** as Salesforce's Email field takes them: ASCII only (Salesforce refuses
  internationalized addresses with ``INVALID_EMAIL_ADDRESS``), a dotted domain name, never an
  IP literal. The syntax check is the `email-validator` library's (RFC 5321/5322 with the
  usual practical limits), with deliverability (DNS) checks off: intake never waits on DNS.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, validate

_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_MULTILINE_OK = {"\t", "\n", "\r"}
_BASIC_EMAIL = validate.Email()


def bad_character(text: str, *, multiline: bool) -> str | None:
    """The first character `text` must not carry (as ``U+XXXX``), or None."""
    for ch in text:
        if multiline and ch in _MULTILINE_OK:
            continue
        category = unicodedata.category(ch)
        if (
            category in ("Cc", "Cs")
            or ch in _BIDI
            or (ord(ch) & 0xFFFE) == 0xFFFE
            or 0xFDD0 <= ord(ch) <= 0xFDEF
        ):
            return f"U+{ord(ch):04X}"
    return None


class PlainText(validate.Validator):
    """Refuses control characters, bidi overrides, lone surrogates and non-characters."""

    def __init__(self, error: str, *, multiline: bool = False) -> None:
        self.error = error
        self.multiline = multiline

    def __call__(self, value: str) -> str:
        if isinstance(value, str):
            found = bad_character(value, multiline=self.multiline)
            if found is not None:
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
