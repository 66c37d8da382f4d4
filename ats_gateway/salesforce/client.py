"""``SalesforceClient``: the one object that speaks to a Salesforce org for a connection.

A facade over three parts, one concept each: :mod:`.transport` (session, timeouts, token and
re-authentication, HTTP failures as typed errors), :mod:`.allowlist` (every call checked
against the connection's grants before anything is sent) and :mod:`.composite` (packing batch
requests, reading their answers record by record: a composite 200 is never trusted).

Explicit methods take the sObject name (no attribute magic). API economy: Salesforce counts
one ``/composite`` request as one API call, and it may carry up to five sObject Collections
or query subrequests: :meth:`SalesforceClient.bulk_create` packs 1,000 records (5 x 200) into
one call and :meth:`SalesforceClient.query_many` five queries.

What the gateway calls: ``describe``, ``describe_global``, ``query``, ``query_many``,
``bulk_create``, ``tree``, ``may_spend``, ``status``, ``close`` (benchmarks also
``query_page`` and ``create``). The rest is the client's contract surface, exercised by
``tests/contract/client`` against recorded wire shapes and the sandbox org alike, so both
keep answering the whole REST subset the gateway may grow into: ``limits``, ``budget``,
``get``, ``update``, ``upsert``, ``delete``, ``create_file``, ``query_all``,
``collections_create`` / ``_update`` / ``_upsert`` / ``_delete``, ``bulk_update``,
``bulk_upsert``, ``composite`` and ``graph``.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import redis
import requests

from ats_gateway.salesforce import composite as packing
from ats_gateway.salesforce import soql as soql_mod
from ats_gateway.salesforce.allowlist import (
    AllowList,
    Describes,
    check_fields,
    check_id,
    check_record_ids,
    check_sobject,
)
from ats_gateway.salesforce.auth import TokenManager
from ats_gateway.salesforce.budget import ApiBudget
from ats_gateway.salesforce.connections import (
    CREATE,
    DELETE,
    EDIT,
    READ,
    ConnectionSettings,
    Grants,
)
from ats_gateway.salesforce.errors import SalesforceError, from_record_errors
from ats_gateway.salesforce.results import (
    Graph,
    GraphResult,
    QueryPage,
    QueryResult,
    RecordOutcome,
    Subrequest,
    SubResponse,
    UpsertResult,
)
from ats_gateway.salesforce.transport import Transport, query_options, response_body

BASE64_LIMIT = 37_500_000  # bytes of base64 in a JSON blob upload (wire shapes section 9)
_NEXT_RECORDS_URL = re.compile(r"/services/data/v\d+\.\d+/query/[A-Za-z0-9-]+")


def _part(part: str, name: str) -> Any:
    """``name`` of one of the client's parts, read and set through the client."""
    return property(
        lambda self: getattr(getattr(self, part), name),
        lambda self, value: setattr(getattr(self, part), name, value),
    )


class SalesforceClient:
    """A client for one connection (one integration user) of one org.

    ``redis_client`` holds the shared token cache and API budget. ``describes`` (a mapping of
    object name -> describe result, or a callable returning one) lets the allow-list follow
    relationship paths and subqueries in SOQL; without it such queries are refused.
    """

    settings: ConnectionSettings = _part("transport", "settings")
    redis: redis.Redis = _part("transport", "redis")
    session: requests.Session = _part("transport", "session")
    auth: TokenManager = _part("transport", "auth")
    api_calls: int = _part("transport", "api_calls")  # REST requests (token requests excluded)
    grants: Grants = _part("policy", "grants")
    describes: Describes | None = _part("policy", "describes")

    def __init__(
        self,
        settings: ConnectionSettings,
        redis_client: redis.Redis,
        *,
        session: requests.Session | None = None,
        describes: Describes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = Transport(settings, redis_client, session=session, clock=clock)
        self.policy = AllowList(settings.name, settings.effective_grants, describes)
        self._send = self.transport.send

    def __repr__(self) -> str:
        return (
            f"SalesforceClient(connection={self.settings.name!r}, "
            f"api_version={self.settings.api_version!r})"
        )

    @property
    def base(self) -> str:
        return self.transport.base

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ budget / status

    def budget(self) -> ApiBudget | None:
        """The org's budget, once any process has logged in (contract surface)."""
        return self.transport.budget()

    def may_spend(self, calls: int = 1) -> bool:
        """Whether background work may spend ``calls`` API calls now (see budget.py)."""
        budget = self.budget()
        return True if budget is None else budget.may_spend(calls)

    def status(self) -> dict[str, Any]:
        """For /readyz and /metrics: auth state and the org's API usage. Makes no API call.

        ``authenticated``: a token is cached (``None`` when Redis cannot say); ``auth_error``:
        the last failed login (code, message, at), cleared by the next successful one.
        """
        return self.transport.status()

    # ------------------------------------------------------------------ metadata

    def describe(
        self, sobject: str, if_modified_since: datetime | None = None
    ) -> dict[str, Any] | None:
        """``/sobjects/{sobject}/describe``; ``None`` when unchanged since ``if_modified_since``."""
        self.policy.check_describe(sobject)
        return self._conditional_get(f"{self.base}/sobjects/{sobject}/describe", if_modified_since)

    def describe_global(self, if_modified_since: datetime | None = None) -> dict[str, Any] | None:
        """``/sobjects`` (the org's object list); ``None`` when unchanged."""
        return self._conditional_get(f"{self.base}/sobjects", if_modified_since)

    def _conditional_get(self, path: str, since: datetime | None) -> dict[str, Any] | None:
        headers = {"If-Modified-Since": format_datetime(since, usegmt=True)} if since else None
        response = self._send("GET", path, headers=headers, ok=(200, 304))
        return None if response.status_code == 304 else response.json()

    def limits(self) -> dict[str, Any]:
        """``/limits`` as ``{"DailyApiRequests": {"Max", "Remaining"}, ...}`` (contract surface)."""
        return self._send("GET", f"{self.base}/limits").json()

    # ------------------------------------------------------------------ single records

    def get(
        self, sobject: str, record_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """One record, all readable fields or ``fields`` (contract surface)."""
        self.policy.check(sobject, READ)
        params = {"fields": check_fields(fields)} if fields else None
        path = f"{self.base}/sobjects/{sobject}/{check_id(record_id)}"
        return self._send("GET", path, params=params).json()

    def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        """Create one record; returns its id."""
        self.policy.check(sobject, CREATE)
        body = self._send("POST", f"{self.base}/sobjects/{sobject}", json=dict(fields)).json()
        if not body.get("success", True) or not body.get("id"):
            raise from_record_errors(body.get("errors") or [], 201)
        return str(body["id"])

    def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Update one record, 204 (contract surface)."""
        self.policy.check(sobject, EDIT)
        path = f"{self.base}/sobjects/{sobject}/{check_id(record_id)}"
        self._send("PATCH", path, json=dict(fields))

    def upsert(
        self, sobject: str, external_id_field: str, value: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        """Insert or update by external id: 201 created / 200 updated / 300 ambiguous
        (contract surface)."""
        self.policy.check(sobject, CREATE, EDIT)
        check_sobject(external_id_field)
        path = f"{self.base}/sobjects/{sobject}/{external_id_field}/{quote(str(value), safe='')}"
        response = self._send("PATCH", path, json=dict(fields))
        if response.status_code == 204:  # API <= 45.0
            return UpsertResult(None, False)
        body = response.json()
        return UpsertResult(body.get("id"), bool(body.get("created", response.status_code == 201)))

    def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record, 204 (contract surface)."""
        self.policy.check(sobject, DELETE)
        self._send("DELETE", f"{self.base}/sobjects/{sobject}/{check_id(record_id)}")

    def create_file(
        self,
        title: str,
        path_on_client: str,
        data: bytes,
        *,
        first_publish_location_id: str | None = None,
    ) -> str:
        """Upload a file as a ContentVersion (base64 JSON); returns the ContentVersion id.

        ``first_publish_location_id`` links the new document to that record. Contract
        surface: deliveries upload résumés in bulk through :meth:`bulk_create`.
        """
        self.policy.check("ContentVersion", CREATE)
        encoded = base64.b64encode(data).decode("ascii")
        if len(encoded) > BASE64_LIMIT:
            raise ValueError("file too large for a JSON upload (37.5 MB of base64)")
        body: dict[str, Any] = {
            "Title": title,
            "PathOnClient": path_on_client,
            "VersionData": encoded,
        }
        if first_publish_location_id:
            body["FirstPublishLocationId"] = check_id(first_publish_location_id)
        return self.create("ContentVersion", body)

    # ------------------------------------------------------------------ queries

    def _soql(self, query: str | soql_mod.Query) -> str:
        text = query.render() if isinstance(query, soql_mod.Query) else query
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty SOQL")
        # a builder query brings its own describes; they serve when the client has none
        self.policy.check_query(
            text, query.describes if isinstance(query, soql_mod.Query) else None
        )
        return text

    def query(self, query: str | soql_mod.Query, *, batch_size: int | None = None) -> QueryResult:
        """Records matching ``query``, fetched lazily page by page (``nextRecordsUrl``)."""
        text, headers = self._soql(query), query_options(batch_size)
        first = functools.partial(self._first_page, text, headers, include_deleted=False)
        return QueryResult(first, lambda url: self.query_page(next_url=url))

    def query_all(
        self, query: str | soql_mod.Query, *, batch_size: int | None = None
    ) -> QueryResult:
        """Like :meth:`query` through ``/queryAll``: deleted and archived rows included
        (contract surface)."""
        text, headers = self._soql(query), query_options(batch_size)
        first = functools.partial(self._first_page, text, headers, include_deleted=True)
        return QueryResult(first, lambda url: self.query_page(next_url=url))

    def query_page(
        self,
        query: str | soql_mod.Query | None = None,
        *,
        next_url: str | None = None,
        batch_size: int | None = None,
        include_deleted: bool = False,
    ) -> QueryPage:
        """Exactly one API call: the first page of ``query``, or the page at ``next_url``."""
        headers = query_options(batch_size)
        if next_url is not None:
            if not _NEXT_RECORDS_URL.fullmatch(next_url):
                raise ValueError(f"not a nextRecordsUrl: {next_url!r}")
            response = self._send("GET", next_url, headers=headers, query=True)
            return packing.read_page(response.json())
        if query is not None:
            return self._first_page(self._soql(query), headers, include_deleted=include_deleted)
        raise ValueError("query_page needs a query or a next_url")

    def _first_page(
        self, text: str, headers: dict[str, str] | None, *, include_deleted: bool
    ) -> QueryPage:
        """The first page of an already checked query."""
        endpoint = "queryAll" if include_deleted else "query"
        response = self._send(
            "GET", f"{self.base}/{endpoint}", params={"q": text}, headers=headers, query=True
        )
        return packing.read_page(response.json())

    def query_many(self, queries: Sequence[str | soql_mod.Query]) -> list[list[dict[str, Any]]]:
        """All records of each query, five queries per ``/composite`` call (one API call),
        following ``nextRecordsUrl`` with one more call per extra page. In input order.

        A failed query raises its typed error (the batch is a read; retry it whole).
        """
        texts = [self._soql(q) for q in queries]
        results: list[list[dict[str, Any]]] = []
        for start, group in packing.chunks(texts, packing.COMPOSITE_HEAVY):
            subrequests = [
                Subrequest("GET", f"{self.base}/query?q={quote(text, safe='')}", f"q{start + i}")
                for i, text in enumerate(group)
            ]
            for sub in self._composite_send(subrequests, all_or_none=False, query=True):
                if sub.error is not None:
                    raise sub.error
                page = packing.read_page(sub.body)
                records = list(page.records)
                while page.next_records_url:
                    page = self.query_page(next_url=page.next_records_url)
                    records.extend(page.records)
                results.append(records)
        return results

    # ------------------------------------------------------------------ sObject Collections
    # Contract surface: one API call per 200 records; the gateway uses bulk_* (1,000 a call).

    def collections_create(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Create records 200 per call; one outcome per input record, in input order."""
        self.policy.check(sobject, CREATE)
        return self._collections("POST", "", sobject, records, all_or_none)

    def collections_update(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Update records (each with ``Id``) 200 per call; outcomes in input order."""
        self.policy.check(sobject, EDIT)
        check_record_ids(records)
        return self._collections("PATCH", "", sobject, records, all_or_none)

    def collections_upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        """Upsert records by ``external_id_field`` 200 per call; outcomes carry ``created``."""
        self.policy.check(sobject, CREATE, EDIT)
        suffix = f"/{sobject}/{check_sobject(external_id_field)}"
        return self._collections("PATCH", suffix, sobject, records, all_or_none)

    def collections_delete(
        self, sobject: str, ids: Sequence[str], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Delete records by id 200 per call; outcomes in input order."""
        self.policy.check(sobject, DELETE)
        self.policy.check_delete_ids(sobject, ids)
        params = {"allOrNone": str(all_or_none).lower()}
        path = f"{self.base}/composite/sobjects"
        return packing.per_chunk(
            ids,
            lambda chunk: self._send(
                "DELETE", path, params={"ids": ",".join(chunk), **params}
            ).json(),
        )

    def _collections(
        self,
        method: str,
        suffix: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        if not isinstance(all_or_none, bool):
            raise TypeError("all_or_none must be chosen: True or False")
        path = f"{self.base}/composite/sobjects{suffix}"
        return packing.per_chunk(
            records,
            lambda chunk: self._send(
                method, path, json=packing.collection_body(sobject, chunk, all_or_none)
            ).json(),
        )

    # ------------------------------------------------------------------ bulk via /composite

    def bulk_create(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Create up to 1,000 records per API call: one ``/composite`` holding five sObject
        Collections subrequests of 200. ``all_or_none`` applies within each 200-record
        collection. One outcome per input record, in input order."""
        self.policy.check(sobject, CREATE)
        return self._bulk("POST", "", sobject, records, all_or_none)

    def bulk_update(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Update up to 1,000 records (each with ``Id``) per API call; see :meth:`bulk_create`.
        Contract surface."""
        self.policy.check(sobject, EDIT)
        check_record_ids(records)
        return self._bulk("PATCH", "", sobject, records, all_or_none)

    def bulk_upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[RecordOutcome]:
        """Upsert up to 1,000 records by ``external_id_field`` per API call; outcomes carry
        ``created``. See :meth:`bulk_create`. Contract surface."""
        self.policy.check(sobject, CREATE, EDIT)
        suffix = f"/{sobject}/{check_sobject(external_id_field)}"
        return self._bulk("PATCH", suffix, sobject, records, all_or_none)

    def _bulk(
        self,
        method: str,
        suffix: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        path = f"{self.base}/composite/sobjects{suffix}"
        send = functools.partial(self._composite_send, all_or_none=False)
        return packing.bulk(method, path, sobject, records, all_or_none, send)

    # ------------------------------------------------------------------ sObject Tree

    def tree(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
        """Create record trees (children under their child relationship name as
        ``{"records": [...]}``), packed into calls of at most 200 records.

        Each call is one transaction: if any record of it fails, every record of that call
        fails (the culprit with its own error, the others :class:`RolledBack`). Returns one
        outcome per top-level input record; ``related`` maps descendants' referenceIds to ids.
        """
        self.policy.check(sobject, CREATE)
        prepared = packing.prepare_tree(
            sobject, records, lambda rtype: self.policy.check(rtype, CREATE)
        )
        outcomes: list[RecordOutcome] = []
        path = f"{self.base}/composite/tree/{sobject}"
        for indexes in packing.tree_batches(prepared):
            body = packing.tree_body(prepared, indexes)
            try:
                response = self._send("POST", path, json=body, ok=(200, 201, 400))
            except SalesforceError as exc:
                outcomes.extend(RecordOutcome(i, False, error=exc) for i in indexes)
                continue
            payload = response_body(response)
            outcomes.extend(packing.read_tree(response.status_code, payload, prepared, indexes))
        return outcomes

    # ------------------------------------------------------------------ composite / graph

    def composite(
        self, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
    ) -> list[SubResponse]:
        """One ``/composite`` call of at most 25 subrequests (5 collections/queries).

        Every subrequest is checked against the allow-list first; every subresponse is judged
        by its own status and carries a typed ``error`` when it failed. Contract surface.
        """
        for sub in subrequests:
            self.policy.check_subrequest(sub, packing.absolute(sub.url, self.base))
        return self._composite_send(list(subrequests), all_or_none=all_or_none)

    def _composite_send(
        self, subrequests: list[Subrequest], *, all_or_none: bool, query: bool = False
    ) -> list[SubResponse]:
        if not subrequests:
            return []
        payload = packing.composite_payload(subrequests, all_or_none=all_or_none, base=self.base)
        body = self._send("POST", f"{self.base}/composite", json=payload).json()
        return packing.read_composite(body, subrequests, query=query)

    def graph(self, graphs: Sequence[Graph]) -> list[GraphResult]:
        """Run graphs (each atomic) in ``/composite/graph`` calls of at most 500 nodes.
        Contract surface."""
        packing.check_graphs(graphs)
        for g in graphs:
            for sub in g.subrequests:
                self.policy.check_subrequest(sub, packing.absolute(sub.url, self.base))
        results: list[GraphResult] = []
        for batch in packing.graph_batches(graphs):
            payload = packing.graph_payload(batch, self.base)
            body = self._send("POST", f"{self.base}/composite/graph", json=payload).json()
            results.extend(packing.read_graphs(body, batch))
        return results


__all__ = ["QueryResult", "SalesforceClient"]
