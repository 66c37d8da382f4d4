"""Text made safe for a terminal or a log line: every non-printable character escaped.

One function, used by the access log (`gunicorn_conf`), the app logs (`logs`) and the CLI's
output (`cli`, reports): client text (a request path, a `source`, a webhook URL) must not
end a log line, move a terminal's cursor, retitle or clear it, or read differently from what
it is ([21]). No dependencies, so the gunicorn master and services can import it.
"""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides and
#: isolates, the byte-order mark and lone surrogates: what can move a terminal's cursor, end a
#: log line, recolour or retitle a terminal, or make text read differently from what it is.
_NONPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_nonprintable(text: str, *, keep: str = "") -> str:
    """`text` with each non-printable character written as an escape (characters in `keep`,
    such as a newline in multi-line CLI output, stay)."""
    if keep:
        return _NONPRINTABLE.sub(
            lambda m: m.group() if m.group() in keep else _escape_char(m), text
        )
    return _NONPRINTABLE.sub(_escape_char, text)
