"""Typed Salesforce errors, parsed from every error shape the REST API produces.

Exception tree (every class carries ``status``, ``error_code``, ``message``, ``fields``,
``retryable`` and ``errors``, the full list of :class:`ErrorDetail` Salesforce sent)::

    SalesforceError                 anything Salesforce (or the way to it) refused
    ├── AuthenticationFailed        token endpoint refused the credentials; 401 other than
    │                               INVALID_SESSION_ID (INVALID_AUTH_HEADER, ...)
    ├── SessionExpired              401 INVALID_SESSION_ID (the client re-authenticates once)
    ├── NotFound                    NOT_FOUND, ENTITY_IS_DELETED, 404
    ├── PermissionDenied            INSUFFICIENT_ACCESS*, 403
    │   └── OperationNotAllowed     refused locally by the connection's allow-list; no call made
    ├── RequestLimitExceeded        REQUEST_LIMIT_EXCEEDED (retryable later)
    ├── RecordLocked                UNABLE_TO_LOCK_ROW, ENTITY_IS_LOCKED (retryable)
    ├── RecordInvalid               REQUIRED_FIELD_MISSING, STRING_TOO_LONG,
    │                               INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST,
    │                               FIELD_CUSTOM_VALIDATION_EXCEPTION, INVALID_EMAIL_ADDRESS,
    │                               DUPLICATE_VALUE, MALFORMED_ID, ... (permanent)
    ├── RolledBack                  the record was fine but its transaction was rolled back
    │                               (ALL_OR_NONE_OPERATION_ROLLED_BACK, PROCESSING_HALTED,
    │                               BATCH_PROCESSING_HALTED); retryable without the bad records
    ├── MalformedQuery              MALFORMED_QUERY, INVALID_FIELD/INVALID_TYPE in a query,
    │                               INVALID_QUERY_LOCATOR
    └── Unavailable                 5xx, connection errors, timeouts, unparseable answers
                                    (retryable)

Parsers, one per wire shape (see ``salesforce-wire-shapes.md`` sections 1b, 2b, 5, 6):

* :func:`from_response` - a top-level REST error body ``[{"errorCode","message","fields"}]``
  (or the rare bare object), or the token endpoint's ``{"error","error_description"}``.
* :func:`from_token_response` - the token endpoint.
* :func:`from_record_errors` - a DML result's ``errors`` list (``statusCode`` key), as in sObject
  Collections, single-record create results and tree results.
* :func:`tree_errors` - ``{"hasErrors": true, "results": [{"referenceId", "errors"}]}``.
* :func:`from_subresponse` - one ``compositeResponse`` item (or graph node); ``None`` when it
  succeeded. A composite's HTTP 200 says nothing about its items.
* :func:`graph_error` - one graph of a ``/composite/graph`` answer; ``None`` when successful.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One error item as Salesforce sent it."""

    error_code: str
    message: str
    fields: tuple[str, ...] = ()


class SalesforceError(Exception):
    """Base of every error the Salesforce client raises or reports per record."""

    retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        error_code: str | None = None,
        fields: Iterable[str] = (),
        errors: Sequence[ErrorDetail] = (),
    ) -> None:
        self.message = message
        self.status = status
        self.error_code = error_code
        self.fields = tuple(fields)
        if errors:
            self.errors = tuple(errors)
        elif error_code or message:
            self.errors = (ErrorDetail(error_code or "", message, self.fields),)
        else:
            self.errors = ()
        super().__init__(message)

    def __str__(self) -> str:
        code = f"{self.error_code}: " if self.error_code else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{code}{self.message}{status}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_code={self.error_code!r}, "
            f"message={self.message!r}, fields={list(self.fields)!r})"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for status records and the dead-letter queue)."""
        return {
            "type": type(self).__name__,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "fields": list(self.fields),
            "retryable": self.retryable,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions; keyword-only arguments need an explicit recipe.
        return (
            _rebuild,
            (type(self), self.message, self.status, self.error_code, self.fields, self.errors),
        )


def _rebuild(
    cls: type[SalesforceError],
    message: str,
    status: int | None,
    error_code: str | None,
    fields: tuple[str, ...],
    errors: tuple[ErrorDetail, ...],
) -> SalesforceError:
    return cls(message, status=status, error_code=error_code, fields=fields, errors=errors)


class AuthenticationFailed(SalesforceError):
    """The credentials (or the token) were refused; retrying the same thing will not help."""


class SessionExpired(SalesforceError):
    """401 INVALID_SESSION_ID: the access token expired or was revoked."""


class NotFound(SalesforceError):
    """The record, object or resource does not exist (or is deleted)."""


class PermissionDenied(SalesforceError):
    """The integration user may not do this."""


class OperationNotAllowed(PermissionDenied):
    """Refused locally: the connection's allow-list does not grant this; nothing was sent."""


class RequestLimitExceeded(SalesforceError):
    """The org's API limit is spent; retry after the rolling 24 h window frees calls."""

    retryable = True


class RecordLocked(SalesforceError):
    """Another transaction holds the row lock; retry shortly."""

    retryable = True


class RecordInvalid(SalesforceError):
    """The record itself was rejected (validation, length, picklist, duplicate, ...)."""


class RolledBack(SalesforceError):
    """This record was rolled back because another one in the same transaction failed."""

    retryable = True


class MalformedQuery(SalesforceError):
    """The SOQL was not accepted."""


class Unavailable(SalesforceError):
    """Salesforce could not be reached or failed on its side; retry with backoff."""

    retryable = True


# errorCode / statusCode -> class. Anything else falls back to the HTTP status.
_BY_CODE: dict[str, type[SalesforceError]] = {
    "INVALID_SESSION_ID": SessionExpired,
    "INVALID_AUTH_HEADER": AuthenticationFailed,
    "NOT_FOUND": NotFound,
    "ENTITY_IS_DELETED": NotFound,
    "INSUFFICIENT_ACCESS": PermissionDenied,
    "INSUFFICIENT_ACCESS_OR_READONLY": PermissionDenied,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": PermissionDenied,
    "API_DISABLED_FOR_ORG": PermissionDenied,
    "API_CURRENTLY_DISABLED": PermissionDenied,
    "FUNCTIONALITY_NOT_ENABLED": PermissionDenied,
    "REQUEST_LIMIT_EXCEEDED": RequestLimitExceeded,
    "TXN_SECURITY_NO_ACCESS": PermissionDenied,
    "UNABLE_TO_LOCK_ROW": RecordLocked,
    "ENTITY_IS_LOCKED": RecordLocked,
    "REQUIRED_FIELD_MISSING": RecordInvalid,
    "STRING_TOO_LONG": RecordInvalid,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": RecordInvalid,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": RecordInvalid,
    "FIELD_FILTER_VALIDATION_EXCEPTION": RecordInvalid,
    "FIELD_INTEGRITY_EXCEPTION": RecordInvalid,
    "INVALID_EMAIL_ADDRESS": RecordInvalid,
    "DUPLICATE_VALUE": RecordInvalid,
    "DUPLICATES_DETECTED": RecordInvalid,
    "DUPLICATE_EXTERNAL_ID": RecordInvalid,
    "MALFORMED_ID": RecordInvalid,
    "INVALID_ID_FIELD": RecordInvalid,
    "INVALID_CROSS_REFERENCE_KEY": RecordInvalid,
    "INVALID_FIELD_FOR_INSERT_UPDATE": RecordInvalid,
    "INVALID_TYPE_ON_FIELD_IN_RECORD": RecordInvalid,
    "NUMBER_OUTSIDE_VALID_RANGE": RecordInvalid,
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": RecordInvalid,
    "JSON_PARSER_ERROR": RecordInvalid,
    "INVALID_FIELD": RecordInvalid,  # in a query context: MalformedQuery (see _classify)
    "INVALID_TYPE": RecordInvalid,  # idem
    "ALL_OR_NONE_OPERATION_ROLLED_BACK": RolledBack,
    "PROCESSING_HALTED": RolledBack,
    "BATCH_PROCESSING_HALTED": RolledBack,
    "MALFORMED_QUERY": MalformedQuery,
    "INVALID_QUERY_FILTER_OPERATOR": MalformedQuery,
    "INVALID_QUERY_LOCATOR": MalformedQuery,
    "QUERY_TIMEOUT": Unavailable,
    "SERVER_UNAVAILABLE": Unavailable,
}

_QUERY_CODES = {"INVALID_FIELD", "INVALID_TYPE"}

# Codes that only say "someone else failed"; the class comes from a more specific one if any.
_SECONDARY = {"ALL_OR_NONE_OPERATION_ROLLED_BACK", "PROCESSING_HALTED", "BATCH_PROCESSING_HALTED"}

# OAuth `error` values (section 1b): all mean "these credentials do not work".
_TOKEN_RETRYABLE = {"rate_limit_exceeded": RequestLimitExceeded}


def _by_status(status: int | None) -> type[SalesforceError]:
    if status is None:
        return SalesforceError
    if status == 401:
        return AuthenticationFailed
    if status == 403:
        return PermissionDenied
    if status in (404, 410):
        return NotFound
    if status >= 500:
        return Unavailable
    return SalesforceError


def _classify(
    details: Sequence[ErrorDetail], status: int | None, *, query: bool
) -> type[SalesforceError]:
    primary = [d for d in details if d.error_code not in _SECONDARY] or list(details)
    for detail in primary:
        if query and detail.error_code in _QUERY_CODES:
            return MalformedQuery
        cls = _BY_CODE.get(detail.error_code)
        if cls is not None:
            return cls
    return _by_status(status)


def make_error(
    details: Sequence[ErrorDetail], status: int | None = None, *, query: bool = False
) -> SalesforceError:
    """The typed error for a list of error items (the first non-secondary item leads)."""
    details = list(details)
    if not details:
        return _by_status(status)(f"HTTP {status} without an error body", status=status)
    cls = _classify(details, status, query=query)
    primary = next((d for d in details if d.error_code not in _SECONDARY), details[0])
    return cls(
        primary.message,
        status=status,
        error_code=primary.error_code or None,
        fields=primary.fields,
        errors=details,
    )


def _detail(item: Mapping[str, Any]) -> ErrorDetail:
    code = item.get("errorCode") or item.get("statusCode") or ""
    fields = item.get("fields") or ()
    if isinstance(fields, str):
        fields = (fields,)
    return ErrorDetail(str(code), str(item.get("message") or ""), tuple(str(f) for f in fields))


def from_record_errors(
    errors: Iterable[Mapping[str, Any]], status: int | None = None
) -> SalesforceError:
    """A DML result's ``errors`` list (``statusCode`` key) as one typed error."""
    return make_error([_detail(e) for e in errors if isinstance(e, Mapping)], status)


def from_token_response(status: int, body: Any) -> SalesforceError:
    """The token endpoint's ``{"error", "error_description"}`` (400) or anything else it sent."""
    if status >= 500:
        return Unavailable(f"token endpoint answered HTTP {status}", status=status)
    if isinstance(body, Mapping) and "error" in body:
        code = str(body.get("error") or "")
        cls = _TOKEN_RETRYABLE.get(code, AuthenticationFailed)
        return cls(str(body.get("error_description") or code), status=status, error_code=code)
    return AuthenticationFailed(f"token endpoint answered HTTP {status}", status=status)


def from_response(status: int, body: Any, *, query: bool = False) -> SalesforceError:
    """The typed error for a failed (non-2xx) REST response body, whatever its shape.

    ``query`` says the request was a SOQL query, where INVALID_FIELD means bad SOQL rather
    than a bad record.
    """
    if isinstance(body, list):
        items = [b for b in body if isinstance(b, Mapping)]
        if items:
            return make_error([_detail(b) for b in items], status, query=query)
        if body and all(isinstance(b, str) for b in body):
            # 300 Multiple Choices: a list of record URLs matching an external id (2d).
            return RecordInvalid(
                f"external id matches {len(body)} records: {', '.join(body)}",
                status=status,
                error_code="DUPLICATE_EXTERNAL_ID",
            )
    if isinstance(body, Mapping):
        if "error" in body and "error_description" in body:
            return from_token_response(status, body)
        if "errorCode" in body or "statusCode" in body:
            return make_error([_detail(body)], status, query=query)
        if body.get("hasErrors") and isinstance(body.get("results"), list):
            errs = tree_errors(body, status)
            if errs:
                return next(iter(errs.values()))
    return _by_status(status)(f"HTTP {status} with an unrecognised error body", status=status)


def tree_errors(body: Any, status: int | None = None) -> dict[str, SalesforceError]:
    """``referenceId -> error`` from a failed sObject Tree answer (section 6a)."""
    out: dict[str, SalesforceError] = {}
    if not isinstance(body, Mapping):
        return out
    for item in body.get("results") or ():
        if isinstance(item, Mapping) and item.get("errors"):
            ref = str(item.get("referenceId") or item.get("referenceld") or "")
            out[ref] = from_record_errors(item["errors"], status)
    return out


def from_subresponse(item: Mapping[str, Any], *, query: bool = False) -> SalesforceError | None:
    """The error of one ``compositeResponse`` item, or ``None`` if it succeeded.

    Items are judged by their own ``httpStatusCode``, and a 2xx collection item whose body is
    a list of results is left to the caller (per-record outcomes).
    """
    status = item.get("httpStatusCode")
    if not isinstance(status, int):
        return Unavailable("composite subresponse without httpStatusCode")
    if 200 <= status < 400:
        return None
    return from_response(status, item.get("body"), query=query)


def graph_error(graph: Mapping[str, Any]) -> SalesforceError | None:
    """The error of one graph in a ``/composite/graph`` answer, or ``None`` if it succeeded.

    A graph is atomic: when it failed, the node that caused it leads (not the nodes that only
    report PROCESSING_HALTED).
    """
    if graph.get("isSuccessful") is True:
        return None
    items = (graph.get("graphResponse") or {}).get("compositeResponse") or []
    errors = [e for e in (from_subresponse(i) for i in items if isinstance(i, Mapping)) if e]
    if not errors:
        return SalesforceError(f"graph {graph.get('graphId')!r} was not successful")
    primary = next((e for e in errors if not isinstance(e, RolledBack)), errors[0])
    return primary
