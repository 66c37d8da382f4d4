"""The sandbox's one exception type and its two wire renderings.

Top-level REST errors are arrays of ``{message, errorCode[, fields]}``; inside DML results
(sObject collections, tree, SaveResult) the same error is ``{statusCode, message, fields}``
(salesforce-wire-shapes.md §2b).
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_MESSAGE = "The requested resource does not exist"


class SfError(Exception):
    """A Salesforce error: HTTP status, errorCode, message and (for DML errors) fields."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def rest(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = list(self.fields)
        return body

    def result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields or [])}


def not_found(message: str = NOT_FOUND_MESSAGE) -> SfError:
    return SfError(404, "NOT_FOUND", message)


def invalid_session() -> SfError:
    return SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def dml(code: str, message: str, fields: list[str] | None = None, status: int = 400) -> SfError:
    return SfError(status, code, message, list(fields or []))


def insufficient_access() -> SfError:
    return dml("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")


def invalid_type(sobject: str) -> SfError:
    return SfError(
        400,
        "INVALID_TYPE",
        f"sObject type '{sobject}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
        "or the describe call for the appropriate names.",
    )
