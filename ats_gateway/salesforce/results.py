"""What the client returns: per-record outcomes, subresponses and query results."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ats_gateway.salesforce.errors import SalesforceError


@dataclass(frozen=True)
class RecordOutcome:
    """The fate of one input record, at its input position ``index``.

    ``error`` is a typed :class:`SalesforceError` (its ``retryable`` says what to do next).
    ``created`` is set by upserts; ``related`` holds the ids of a tree record's descendants by
    referenceId.
    """

    index: int
    success: bool
    id: str | None = None
    error: SalesforceError | None = None
    created: bool | None = None
    reference_id: str | None = None
    related: Mapping[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.retryable

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for status records and the dead-letter queue)."""
        return {
            "index": self.index,
            "success": self.success,
            "id": self.id,
            "created": self.created,
            "reference_id": self.reference_id,
            "related": dict(self.related),
            "error": self.error.as_dict() if self.error is not None else None,
        }


@dataclass(frozen=True)
class UpsertResult:
    id: str | None
    created: bool


@dataclass(frozen=True)
class QueryPage:
    """One page of a query answer."""

    records: list[dict[str, Any]]
    total_size: int
    done: bool
    next_records_url: str | None


class QueryResult:
    """Records of a query, fetched page by page as iteration reaches them.

    ``first`` fetches the first page, ``next_page`` the page at a ``nextRecordsUrl`` (one API
    call each). ``total_size`` is known once the first page has been fetched
    (:meth:`fetch_first` or the first ``next()``); ``pages_fetched`` counts API calls so far.
    """

    def __init__(
        self, first: Callable[[], QueryPage], next_page: Callable[[str], QueryPage]
    ) -> None:
        self._first = first
        self._next_page = next_page
        self._page: QueryPage | None = None
        self.pages_fetched = 0

    def fetch_first(self) -> QueryPage:
        if self._page is None:
            self._page = self._first()
            self.pages_fetched = 1
        return self._page

    @property
    def total_size(self) -> int:
        return self.fetch_first().total_size

    def pages(self) -> Iterator[QueryPage]:
        page = self.fetch_first()
        yield page
        while page.next_records_url:
            page = self._next_page(page.next_records_url)
            self.pages_fetched += 1
            yield page

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page.records


@dataclass(frozen=True)
class Subrequest:
    """One ``/composite`` (or graph) subrequest. ``url`` may be relative to the API version
    (``/sobjects/Contact``) or absolute (``/services/data/v62.0/sobjects/Contact``)."""

    method: str
    url: str
    reference_id: str
    body: Any = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class SubResponse:
    """One ``compositeResponse`` item, judged by its own status (never by the outer 200)."""

    reference_id: str
    status: int
    body: Any
    headers: Mapping[str, str]
    error: SalesforceError | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Graph:
    """One atomic graph of subrequests for ``/composite/graph``."""

    graph_id: str
    subrequests: tuple[Subrequest, ...]


@dataclass(frozen=True)
class GraphResult:
    graph_id: str
    successful: bool
    responses: list[SubResponse]
    error: SalesforceError | None
