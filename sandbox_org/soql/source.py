"""What the engine needs from the store: describes and rows (the sandbox store implements it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class RecordSource(Protocol):
    def describe(self, sobject: str) -> dict | None:
        """The full describe of ``sobject`` (any case) if it exists and the caller may read it;
        else None, which the engine reports as INVALID_TYPE."""
        ...

    def records(self, sobject: str, *, include_deleted: bool) -> Iterable[dict]:
        """Every row of ``sobject`` (canonical name): API field name -> JSON value, with ``Id``
        and ``IsDeleted``; dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM:SS.000+0000``."""
        ...

    def record(self, sobject: str, record_id: str) -> dict | None:
        """One row by its 18-character Id, or None."""
        ...
