"""Client text on a terminal or in a log line ([21]): every non-printable character escaped."""

from __future__ import annotations

import io

from ats_gateway.cli import TerminalSafe
from ats_gateway.printable import escape_nonprintable


def test_controls_bidi_and_separators_are_escaped():
    text = "a\x1b]0;t\x07\x00\r\nb\u202e\u2028\x85\ufeff"
    assert escape_nonprintable(text) == "a\\x1b]0;t\\x07\\x00\\x0d\\x0ab\\u202e\\u2028\\x85\\ufeff"
    assert escape_nonprintable("Zürich 東京 café") == "Zürich 東京 café"


def test_kept_characters_stay():
    assert escape_nonprintable("a\tb\nc\rd", keep="\n\t") == "a\tb\nc\\x0dd"


def test_terminal_safe_stream_escapes_everything_but_newline_and_tab():
    out = io.StringIO()
    stream = TerminalSafe(out)
    print("name\x1b[2J", "x\ty", file=stream)
    assert out.getvalue() == "name\\x1b[2J x\ty\n"
