"""The one exception the SOQL engine raises, with Salesforce's caret-style messages.

Real orgs answer a bad query with HTTP 400 and a body such as ``[{"message":
"\\nSELECT Foo FROM Account\\n       ^\\nERROR at Row:1:Column:8\\nNo such column ...",
"errorCode": "INVALID_FIELD"}]`` (salesforce-wire-shapes.md §2c). ``SoqlError`` carries exactly
the ``errorCode`` and ``message`` of that element.
"""

from __future__ import annotations

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
INVALID_QUERY_FILTER_OPERATOR = "INVALID_QUERY_FILTER_OPERATOR"
# Salesforce answers OFFSET > 2000 with this code, not MALFORMED_QUERY.
NUMBER_OUTSIDE_VALID_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"


class SoqlError(Exception):
    """A query the org refuses: ``error_code`` and ``message`` as in the REST error body."""

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        row: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.row = row
        self.column = column

    def __repr__(self) -> str:
        return f"SoqlError({self.error_code!r}, {self.message!r})"


def located(error_code: str, soql: str, row: int, column: int, text: str) -> SoqlError:
    """An error whose message points at ``row``/``column`` (1-based) of ``soql``.

    Salesforce prints the offending row, a caret under the column, ``ERROR at Row:r:Column:c``
    and the reason. Real orgs sometimes show only a window of a long row; the whole row is
    shown here.
    """
    lines = soql.splitlines() or [""]
    line = lines[row - 1] if 0 < row <= len(lines) else ""
    caret = " " * max(column - 1, 0) + "^"
    message = f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{text}"
    return SoqlError(error_code, message, row=row, column=column)
