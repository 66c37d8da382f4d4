"""Structured logging: JSON lines in production, readable lines in dev; request ids; redaction.

`RedactingFilter` scrubs every record (message, arguments and extra fields) before any handler
formats it: bearer tokens, API keys, Salesforce session ids, passwords, client secrets, security
tokens, JWT assertions, `Authorization` headers and e-mail addresses (candidate data).

It also escapes every non-printable character ([21]): a request path such as
``/v1/jobs/X%0d%0a127.0.0.1 ...`` decodes to CR LF and once wrote a forged line of its own into
the access log, and ESC or NUL reached the operator's terminal raw. :func:`escape_nonprintable`
(:mod:`ats_gateway.printable`) writes them as ``\\xNN`` / ``\\uNNNN``; the access log
(``gunicorn_conf``) and the CLI's output (``cli.py``) use the same function.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from ats_gateway.printable import escape_nonprintable

REDACTED = "[REDACTED]"

_SECRET_KEYS = (
    r"access_token|refresh_token|id_token|password|passwd|client_secret|security_token"
    r"|assertion|api_key|apikey|secret|authorization|token|private_key|signature"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # key=value, key: value, "key": "value" (JSON, form bodies, query strings, reprs)
    (
        re.compile(
            rf"""(?i)(["']?\b(?:{_SECRET_KEYS})\b["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,&;}}\]]+)"""
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=!-]+"), r"\1 " + REDACTED),
    (re.compile(r"\b(?:sk|pk)_(?:live|test|demo)?_?[A-Za-z0-9_-]{8,}"), REDACTED),
    # Salesforce session ids: org id, "!", opaque token
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]+"), REDACTED),
    # JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
]

_STANDARD_ATTRS = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "request_id",
}


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return escape_nonprintable(redact(value))
    if isinstance(value, int | float | bool) or value is None:
        return value
    return escape_nonprintable(redact(repr(value)))


class RedactingFilter(logging.Filter):
    """Renders the message once, scrubbed, so formatters never see the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the log line
            message = str(record.msg)
        record.msg = escape_nonprintable(redact(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` from the Flask request (or '-' outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current_request_id()
        return True


def _current_request_id() -> str:
    try:
        from flask import g, has_request_context
    except ImportError:  # pragma: no cover
        return "-"
    if has_request_context():
        return getattr(g, "request_id", "-")
    return "-"


def configure_logging(fmt: str = "json", level: str = "INFO", stream: Any = None) -> None:
    """Install one handler on the root logger; safe to call again (replaces ours)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ats_gateway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._ats_gateway = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # gunicorn's access log has handlers of its own: scrub its records at the logger, since
    # some URLs carry a secret (the job boards' feed URLs, `?token=`; [16]).
    access = logging.getLogger("gunicorn.access")
    if not any(isinstance(f, RedactingFilter) for f in access.filters):
        access.addFilter(RedactingFilter())
