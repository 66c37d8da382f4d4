"""``SalesforceClient``: the one object that speaks to a Salesforce org for a connection.

Explicit methods take the sObject name (no attribute magic). Every call:

* is checked against the connection's allow-list before anything is sent
  (:class:`~ats_gateway.salesforce.errors.OperationNotAllowed`);
* runs on the client's own ``requests.Session`` (pooled) with the connection's timeouts;
* carries a token from the Redis cache; a 401 ``INVALID_SESSION_ID`` re-authenticates once
  (single-flight across processes) and replays the request once - a loop, not recursion;
* records ``Sforce-Limit-Info`` in the org's :class:`~ats_gateway.salesforce.budget.ApiBudget`;
* turns every failure into a typed :class:`~ats_gateway.salesforce.errors.SalesforceError`,
  and reads per-record / per-subrequest outcomes of batch calls (a composite 200 is never
  trusted).

API economy: Salesforce counts one ``/composite`` request as one API call, and it may carry up
to five sObject Collections or query subrequests. :meth:`SalesforceClient.bulk_create` packs
1,000 records (5 x 200) into one call and :meth:`SalesforceClient.query_many` five queries.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import redis
import requests
from requests.adapters import HTTPAdapter

from ats_gateway.salesforce import soql as soql_mod
from ats_gateway.salesforce.auth import Token, TokenManager
from ats_gateway.salesforce.budget import ApiBudget
from ats_gateway.salesforce.connections import (
    CREATE,
    DELETE,
    EDIT,
    OPERATIONS,
    READ,
    ConnectionSettings,
)
from ats_gateway.salesforce.errors import (
    AuthenticationFailed,
    MalformedQuery,
    OperationNotAllowed,
    PermissionDenied,
    RequestLimitExceeded,
    RolledBack,
    SalesforceError,
    SessionExpired,
    Unavailable,
    from_record_errors,
    from_response,
    from_subresponse,
    graph_error,
    tree_errors,
)
from ats_gateway.salesforce.results import (
    Graph,
    GraphResult,
    QueryPage,
    RecordOutcome,
    Subrequest,
    SubResponse,
    UpsertResult,
)

log = logging.getLogger(__name__)

COLLECTION_SIZE = 200  # records per sObject Collections request
TREE_SIZE = 200  # records per sObject Tree request (all levels)
COMPOSITE_SIZE = 25  # subrequests per /composite
COMPOSITE_HEAVY = 5  # collections or query subrequests per /composite
GRAPH_NODES = 500  # nodes per /composite/graph payload
GRAPH_COUNT = 75  # graphs per payload
BASE64_LIMIT = 37_500_000  # bytes of base64 in a JSON blob upload (wire shapes section 9)

_SOBJECT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?\Z")

Describes = Mapping[str, Mapping[str, Any]] | Callable[[str], Mapping[str, Any] | None]

# Raised for a whole batch request; records of the chunks not yet sent share the error.
_FATAL = (
    AuthenticationFailed,
    SessionExpired,
    PermissionDenied,
    RequestLimitExceeded,
    Unavailable,
)


def _new_session(pool_size: int, verify: bool | str = True) -> requests.Session:
    session = requests.Session()
    session.verify = verify
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _check_sobject(sobject: str) -> str:
    if not isinstance(sobject, str) or not _SOBJECT.match(sobject):
        raise ValueError(f"not an sObject name: {sobject!r}")
    return sobject


def _check_id(record_id: str) -> str:
    if not isinstance(record_id, str) or not _RECORD_ID.match(record_id):
        raise ValueError(f"not a Salesforce record id: {record_id!r}")
    return record_id


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


class QueryResult:
    """Records of a query, fetched page by page as iteration reaches them.

    ``total_size`` is known once the first page has been fetched (:meth:`fetch_first` or the
    first ``next()``); ``pages_fetched`` counts API calls spent so far.
    """

    def __init__(self, client: SalesforceClient, first: Callable[[], QueryPage]) -> None:
        self._client = client
        self._first = first
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
            page = self._client.query_page(next_url=page.next_records_url)
            self.pages_fetched += 1
            yield page

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page.records


class SalesforceClient:
    """A client for one connection (one integration user) of one org.

    ``redis_client`` holds the shared token cache and API budget. ``describes`` (a mapping of
    object name -> describe result, or a callable returning one) lets the allow-list follow
    relationship paths and subqueries in SOQL; without it such queries are refused.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        redis_client: redis.Redis,
        *,
        session: requests.Session | None = None,
        describes: Describes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.redis = redis_client
        self.session = session or _new_session(settings.pool_size, settings.verify_tls)
        self.auth = TokenManager(settings, redis_client, self.session, clock=clock)
        self.grants = settings.effective_grants
        self.describes = describes
        self.clock = clock
        self.api_calls = 0  # REST requests this client sent (token requests excluded)
        self._budgets: dict[str, ApiBudget] = {}

    def __repr__(self) -> str:
        return (
            f"SalesforceClient(connection={self.settings.name!r}, "
            f"api_version={self.settings.api_version!r})"
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ budget / status

    @property
    def base(self) -> str:
        return f"/services/data/v{self.settings.api_version}"

    def _budget_for(self, token: Token) -> ApiBudget:
        key = token.org_key
        budget = self._budgets.get(key)
        if budget is None:
            budget = ApiBudget(
                self.redis,
                key,
                reserve_fraction=self.settings.budget_reserve,
                key_prefix=self.settings.key_prefix,
                clock=self.clock,
            )
            self._budgets[key] = budget
        return budget

    def budget(self) -> ApiBudget | None:
        """The org's budget, once any process has logged in for this connection."""
        token = self.auth.cached()
        return None if token is None else self._budget_for(token)

    def may_spend(self, calls: int = 1) -> bool:
        """Whether background work may spend ``calls`` API calls now (see budget.py)."""
        budget = self.budget()
        return True if budget is None else budget.may_spend(calls)

    def status(self) -> dict[str, Any]:
        """For /readyz and /metrics: auth state and the org's API usage. Makes no API call.

        ``authenticated``: a token is cached (``None`` when Redis cannot say); ``auth_error``:
        the last failed login (code, message, at), cleared by the next successful one.
        """
        try:
            token = self.auth.cached()
            snapshot = self._budget_for(token).snapshot() if token is not None else None
            auth_error = self.auth.last_error()
        except redis.RedisError as exc:
            return {
                "connection": self.settings.name,
                "authenticated": None,
                "instance_url": None,
                "auth_error": None,
                "api_usage": None,
                "error": f"redis unavailable ({type(exc).__name__})",
            }
        return {
            "connection": self.settings.name,
            "authenticated": token is not None,
            "instance_url": token.instance_url if token else None,
            "auth_error": auth_error,
            "api_usage": snapshot.as_dict() if snapshot else None,
        }

    # ------------------------------------------------------------------ allow-list

    def _allow(self, sobject: str, *operations: str) -> str:
        _check_sobject(sobject)
        for op in operations:
            self.grants.check(self.settings.name, sobject, op)
        return sobject

    def _describe_of(
        self, sobject: str, fallback: Describes | None = None
    ) -> Mapping[str, Any] | None:
        source = self.describes if self.describes is not None else fallback
        if source is None:
            return None
        if callable(source):
            return source(sobject)
        return soql_mod.find_describe(source, sobject)

    def _allow_query(self, text: str, describes: Describes | None = None) -> None:
        """Refuse a query reading any object (incl. parents and children) not granted."""
        if self.grants.unrestricted:
            return
        try:
            tokens = soql_mod.tokenize(text)
            shape = soql_mod.inspect(text)
        except soql_mod.SoqlError as exc:
            raise MalformedQuery(str(exc), error_code="MALFORMED_QUERY") from None
        if any(t.kind == "ident" and t.text.lower() == "typeof" for t in tokens):
            # TYPEOF reads whichever objects a polymorphic field points to: not checkable here
            raise OperationNotAllowed(
                f"connection {self.settings.name!r} may not use TYPEOF",
                error_code="OPERATION_NOT_ALLOWED",
            )
        self._allow_shape(shape, describes)

    def _allow_shape(self, shape: soql_mod.QueryShape, describes: Describes | None) -> None:
        self._allow(shape.sobject, READ)
        for path in shape.paths:
            for sobject in self._path_objects(shape.sobject, path, describes):
                self._allow(sobject, READ)
        for sub in shape.subqueries:
            child = self._child_object(shape.sobject, sub.sobject, describes)
            self._allow_shape(
                soql_mod.QueryShape(child, sub.paths, sub.subqueries, sub.semi_joins), describes
            )
        for semi in shape.semi_joins:
            self._allow_shape(semi, describes)

    def _path_objects(self, sobject: str, path: str, describes: Describes | None) -> list[str]:
        """Objects a relationship path reads through, resolved with describe metadata."""
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == sobject.lower():
            parts = parts[1:]  # "Contact.Name" qualified with the queried object itself
        touched: list[str] = []
        current = sobject
        for rel in parts[:-1]:
            describe = self._describe_of(current, describes)
            if describe is None:
                raise OperationNotAllowed(
                    f"cannot check relationship {path!r} without describe metadata for {current}",
                    error_code="OPERATION_NOT_ALLOWED",
                )
            ref = next(
                (
                    f
                    for f in describe.get("fields") or ()
                    if str(f.get("relationshipName") or "").lower() == rel.lower()
                ),
                None,
            )
            if ref is None or not ref.get("referenceTo"):
                raise MalformedQuery(f"{current} has no relationship {rel!r}")
            targets = list(ref["referenceTo"])
            touched.extend(targets)  # polymorphic lookups: every target must be readable
            current = targets[0]
        return touched

    def _child_object(self, sobject: str, relationship: str, describes: Describes | None) -> str:
        describe = self._describe_of(sobject, describes)
        if describe is None:
            raise OperationNotAllowed(
                f"cannot check subquery on {relationship!r} without describe metadata for "
                f"{sobject}",
                error_code="OPERATION_NOT_ALLOWED",
            )
        try:
            return soql_mod.child_sobject({sobject: describe}, sobject, relationship)
        except soql_mod.UnknownField as exc:
            raise MalformedQuery(str(exc)) from None

    # ------------------------------------------------------------------ transport

    def _url(self, token: Token, path: str) -> str:
        if not path.startswith("/services/"):
            raise ValueError(f"refusing to send the session to {path!r}")
        return token.instance_url + path

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        query: bool = False,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> requests.Response:
        """One API request with one transparent re-authentication on INVALID_SESSION_ID."""
        token = self.auth.token()  # Unavailable when neither cache nor login works
        for attempt in (1, 2):
            response = self._http(method, self._url(token, path), token, params, json, headers)
            if response.status_code == 401 and attempt == 1 and _invalid_session(response):
                log.info("session expired for %s; re-authenticating", self.settings.name)
                token = self.auth.refresh(stale=token)
                continue
            break
        if response.status_code in ok:
            return response
        error = from_response(response.status_code, _body(response), query=query)
        if isinstance(error, RequestLimitExceeded):
            self._budget_for(token).record_exhausted()
        raise error

    def _http(
        self,
        method: str,
        url: str,
        token: Token,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        request_headers = {
            "Authorization": f"Bearer {token.access_token}",
            "Accept": "application/json",
        }
        if headers:
            request_headers.update(headers)
        self.api_calls += 1
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=request_headers,
                timeout=self.settings.timeout,
            )
        except requests.Timeout as exc:
            raise Unavailable(
                f"{method} {urlsplit(url).path} timed out ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            raise Unavailable(
                f"{method} {urlsplit(url).path} failed to connect ({type(exc).__name__})"
            ) from None
        log.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
        try:
            self._budget_for(token).record(response.headers.get("Sforce-Limit-Info"))
        except redis.RedisError as exc:  # the call succeeded; losing one sample is harmless
            log.warning("could not record API usage: %s", type(exc).__name__)
        return response

    # ------------------------------------------------------------------ metadata

    def describe(
        self, sobject: str, if_modified_since: datetime | None = None
    ) -> dict[str, Any] | None:
        """``/sobjects/{sobject}/describe``; ``None`` when unchanged since ``if_modified_since``."""
        _check_sobject(sobject)
        if not any(self.grants.allows(sobject, op) for op in OPERATIONS):
            self._allow(sobject, READ)
        return self._conditional_get(f"{self.base}/sobjects/{sobject}/describe", if_modified_since)

    def describe_global(self, if_modified_since: datetime | None = None) -> dict[str, Any] | None:
        """``/sobjects`` (the org's object list); ``None`` when unchanged."""
        return self._conditional_get(f"{self.base}/sobjects", if_modified_since)

    def _conditional_get(self, path: str, since: datetime | None) -> dict[str, Any] | None:
        headers = {"If-Modified-Since": format_datetime(since, usegmt=True)} if since else None
        response = self._send("GET", path, headers=headers, ok=(200, 304))
        return None if response.status_code == 304 else response.json()

    def limits(self) -> dict[str, Any]:
        """``/limits``: the org's limits as ``{"DailyApiRequests": {"Max", "Remaining"}, ...}``."""
        return self._send("GET", f"{self.base}/limits").json()

    # ------------------------------------------------------------------ single records

    def get(
        self, sobject: str, record_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """One record (all readable fields, or ``fields``)."""
        self._allow(sobject, READ)
        params = None
        if fields:
            for name in fields:
                if not isinstance(name, str) or not _SOBJECT.match(name):
                    raise ValueError(f"not a plain field name: {name!r}")
            params = {"fields": ",".join(fields)}
        path = f"{self.base}/sobjects/{sobject}/{_check_id(record_id)}"
        return self._send("GET", path, params=params).json()

    def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        """Create one record; returns its id."""
        self._allow(sobject, CREATE)
        body = self._send("POST", f"{self.base}/sobjects/{sobject}", json=dict(fields)).json()
        if not body.get("success", True) or not body.get("id"):
            raise from_record_errors(body.get("errors") or [], 201)
        return str(body["id"])

    def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        """Update one record (204)."""
        self._allow(sobject, EDIT)
        path = f"{self.base}/sobjects/{sobject}/{_check_id(record_id)}"
        self._send("PATCH", path, json=dict(fields))

    def upsert(
        self, sobject: str, external_id_field: str, value: str, fields: Mapping[str, Any]
    ) -> UpsertResult:
        """Insert or update by external id (201 created / 200 updated / 300 ambiguous)."""
        self._allow(sobject, CREATE, EDIT)
        _check_sobject(external_id_field)
        path = f"{self.base}/sobjects/{sobject}/{external_id_field}/{quote(str(value), safe='')}"
        response = self._send("PATCH", path, json=dict(fields))
        if response.status_code == 204:  # API <= 45.0
            return UpsertResult(None, False)
        body = response.json()
        return UpsertResult(body.get("id"), bool(body.get("created", response.status_code == 201)))

    def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record (204)."""
        self._allow(sobject, DELETE)
        self._send("DELETE", f"{self.base}/sobjects/{sobject}/{_check_id(record_id)}")

    def create_file(
        self,
        title: str,
        path_on_client: str,
        data: bytes,
        *,
        first_publish_location_id: str | None = None,
    ) -> str:
        """Upload a file as a ContentVersion (base64 JSON); returns the ContentVersion id.

        ``first_publish_location_id`` links the new document to that record.
        """
        self._allow("ContentVersion", CREATE)
        encoded = base64.b64encode(data).decode("ascii")
        if len(encoded) > BASE64_LIMIT:
            raise ValueError("file too large for a JSON upload (37.5 MB of base64)")
        body: dict[str, Any] = {
            "Title": title,
            "PathOnClient": path_on_client,
            "VersionData": encoded,
        }
        if first_publish_location_id:
            body["FirstPublishLocationId"] = _check_id(first_publish_location_id)
        return self.create("ContentVersion", body)

    # ------------------------------------------------------------------ queries

    def _soql(self, query: str | soql_mod.Query) -> str:
        text = query.render() if isinstance(query, soql_mod.Query) else query
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty SOQL")
        # a builder query brings its own describes; they serve when the client has none
        self._allow_query(text, query.describes if isinstance(query, soql_mod.Query) else None)
        return text

    def query(self, query: str | soql_mod.Query, *, batch_size: int | None = None) -> QueryResult:
        """Records matching ``query``, fetched lazily page by page (``nextRecordsUrl``)."""
        text, headers = self._soql(query), _query_headers(batch_size)
        return QueryResult(self, lambda: self._first_page(text, headers, include_deleted=False))

    def query_all(
        self, query: str | soql_mod.Query, *, batch_size: int | None = None
    ) -> QueryResult:
        """Like :meth:`query` through ``/queryAll``: deleted and archived rows included."""
        text, headers = self._soql(query), _query_headers(batch_size)
        return QueryResult(self, lambda: self._first_page(text, headers, include_deleted=True))

    def query_page(
        self,
        query: str | soql_mod.Query | None = None,
        *,
        next_url: str | None = None,
        batch_size: int | None = None,
        include_deleted: bool = False,
    ) -> QueryPage:
        """Exactly one API call: the first page of ``query``, or the page at ``next_url``."""
        headers = _query_headers(batch_size)
        if next_url is not None:
            if not re.fullmatch(r"/services/data/v\d+\.\d+/query/[A-Za-z0-9-]+", next_url):
                raise ValueError(f"not a nextRecordsUrl: {next_url!r}")
            response = self._send("GET", next_url, headers=headers, query=True)
            return _page(response.json())
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
        return _page(response.json())

    def query_many(self, queries: Sequence[str | soql_mod.Query]) -> list[list[dict[str, Any]]]:
        """All records of each query, five queries per ``/composite`` call (one API call),
        following ``nextRecordsUrl`` with one more call per extra page. In input order.

        A failed query raises its typed error (the batch is a read; retry it whole).
        """
        texts = [self._soql(q) for q in queries]
        results: list[list[dict[str, Any]]] = []
        for start, group in _chunks(texts, COMPOSITE_HEAVY):
            subrequests = [
                Subrequest("GET", f"{self.base}/query?q={quote(text, safe='')}", f"q{start + i}")
                for i, text in enumerate(group)
            ]
            for sub in self._composite_send(subrequests, all_or_none=False, query=True):
                if sub.error is not None:
                    raise sub.error
                page = _page(sub.body)
                records = list(page.records)
                while page.next_records_url:
                    page = self.query_page(next_url=page.next_records_url)
                    records.extend(page.records)
                results.append(records)
        return results

    # ------------------------------------------------------------------ sObject Collections

    def collections_create(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Create records 200 per call; one outcome per input record, in input order."""
        self._allow(sobject, CREATE)
        return self._collections(
            "POST", self.base + "/composite/sobjects", sobject, records, all_or_none
        )

    def collections_update(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Update records (each with ``Id``) 200 per call; outcomes in input order."""
        self._allow(sobject, EDIT)
        for record in records:
            _check_id(str(record.get("Id") or record.get("id") or ""))
        return self._collections(
            "PATCH", self.base + "/composite/sobjects", sobject, records, all_or_none
        )

    def collections_upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        """Upsert records by ``external_id_field`` 200 per call; outcomes carry ``created``."""
        self._allow(sobject, CREATE, EDIT)
        _check_sobject(external_id_field)
        path = f"{self.base}/composite/sobjects/{sobject}/{external_id_field}"
        return self._collections("PATCH", path, sobject, records, all_or_none)

    def collections_delete(
        self, sobject: str, ids: Sequence[str], *, all_or_none: bool
    ) -> list[RecordOutcome]:
        """Delete records by id 200 per call; outcomes in input order."""
        self._allow(sobject, DELETE)
        prefix = (self._describe_of(sobject) or {}).get("keyPrefix")
        for record_id in ids:
            _check_id(record_id)
            if prefix and not record_id.startswith(prefix):
                raise OperationNotAllowed(
                    f"id {record_id} is not a {sobject} id", error_code="OPERATION_NOT_ALLOWED"
                )
        return self._per_chunk(
            ids,
            lambda chunk: self._send(
                "DELETE",
                f"{self.base}/composite/sobjects",
                params={"ids": ",".join(chunk), "allOrNone": str(all_or_none).lower()},
            ),
        )

    def _collections(
        self,
        method: str,
        path: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        if not isinstance(all_or_none, bool):
            raise TypeError("all_or_none must be chosen: True or False")
        return self._per_chunk(
            records,
            lambda chunk: self._send(
                method,
                path,
                json={"allOrNone": all_or_none, "records": [_typed(sobject, r) for r in chunk]},
            ),
        )

    def _per_chunk(
        self, items: Sequence[Any], send: Callable[[list[Any]], requests.Response]
    ) -> list[RecordOutcome]:
        """Send ``items`` in sObject-collection chunks of 200, one outcome per item in order.

        A failed chunk fails only its own items; a fatal error (auth, permission, limit)
        fails every later chunk without sending it."""
        outcomes: list[RecordOutcome] = []
        fatal: SalesforceError | None = None
        for start, chunk in _chunks(list(items), COLLECTION_SIZE):
            error = fatal
            if error is None:
                try:
                    outcomes.extend(_save_results(send(chunk).json(), start, len(chunk)))
                    continue
                except SalesforceError as exc:
                    error = exc
                    if isinstance(exc, _FATAL):
                        fatal = exc
            outcomes.extend(_failed(start, len(chunk), error))
        return outcomes

    # ------------------------------------------------------------------ bulk via /composite

    def bulk_create(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Create up to 1,000 records per API call: one ``/composite`` holding five sObject
        Collections subrequests of 200. ``all_or_none`` applies within each 200-record
        collection. One outcome per input record, in input order."""
        self._allow(sobject, CREATE)
        return self._bulk("POST", self.base + "/composite/sobjects", sobject, records, all_or_none)

    def bulk_update(
        self, sobject: str, records: Sequence[Mapping[str, Any]], *, all_or_none: bool = False
    ) -> list[RecordOutcome]:
        """Update up to 1,000 records (each with ``Id``) per API call; see :meth:`bulk_create`."""
        self._allow(sobject, EDIT)
        for record in records:
            _check_id(str(record.get("Id") or record.get("id") or ""))
        return self._bulk("PATCH", self.base + "/composite/sobjects", sobject, records, all_or_none)

    def bulk_upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[RecordOutcome]:
        """Upsert up to 1,000 records by ``external_id_field`` per API call; outcomes carry
        ``created``. See :meth:`bulk_create`."""
        self._allow(sobject, CREATE, EDIT)
        _check_sobject(external_id_field)
        path = f"{self.base}/composite/sobjects/{sobject}/{external_id_field}"
        return self._bulk("PATCH", path, sobject, records, all_or_none)

    def _bulk(
        self,
        method: str,
        path: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        all_or_none: bool,
    ) -> list[RecordOutcome]:
        outcomes: list[RecordOutcome] = []
        fatal: SalesforceError | None = None
        per_call = COLLECTION_SIZE * COMPOSITE_HEAVY
        for start, group in _chunks(list(records), per_call):
            if fatal is not None:
                outcomes.extend(_failed(start, len(group), fatal))
                continue
            subrequests = []
            sizes = []
            for offset, chunk in _chunks(group, COLLECTION_SIZE):
                body = {"allOrNone": all_or_none, "records": [_typed(sobject, r) for r in chunk]}
                subrequests.append(Subrequest(method, path, f"c{start + offset}", body))
                sizes.append((start + offset, len(chunk)))
            try:
                responses = self._composite_send(subrequests, all_or_none=False)
            except SalesforceError as exc:
                if isinstance(exc, _FATAL):
                    fatal = exc
                outcomes.extend(_failed(start, len(group), exc))
                continue
            for (first, size), sub in zip(sizes, responses, strict=True):
                if sub.error is not None:
                    outcomes.extend(_failed(first, size, sub.error))
                else:
                    outcomes.extend(_save_results(sub.body, first, size))
        return outcomes

    # ------------------------------------------------------------------ sObject Tree

    def tree(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
        """Create record trees (children under their child relationship name as
        ``{"records": [...]}``), packed into calls of at most 200 records.

        Each call is one transaction: if any record of it fails, every record of that call
        fails (the culprit with its own error, the others :class:`RolledBack`). Returns one
        outcome per top-level input record; ``related`` maps descendants' referenceIds to ids.
        """
        self._allow(sobject, CREATE)
        prepared: list[tuple[dict[str, Any], list[str]]] = []
        counter = iter(range(1, 1 << 62))
        for record in records:
            refs: list[str] = []
            prepared.append((self._tree_record(sobject, record, counter, refs, depth=1), refs))
        all_refs = [ref for _, refs in prepared for ref in refs]
        if len(set(all_refs)) != len(all_refs):
            raise ValueError("referenceIds must be unique across the records")
        outcomes: list[RecordOutcome] = []
        batch: list[int] = []
        size = 0
        for index, (_, refs) in enumerate(prepared):
            if len(refs) > TREE_SIZE:
                raise ValueError(f"record {index} has {len(refs)} records in its tree (max 200)")
            if size + len(refs) > TREE_SIZE:
                outcomes.extend(self._tree_call(sobject, prepared, batch))
                batch, size = [], 0
            batch.append(index)
            size += len(refs)
        if batch:
            outcomes.extend(self._tree_call(sobject, prepared, batch))
        return outcomes

    def _tree_record(
        self,
        sobject: str,
        record: Mapping[str, Any],
        counter: Iterator[int],
        refs: list[str],
        depth: int,
    ) -> dict[str, Any]:
        if depth > 5:
            raise ValueError("sObject Tree allows at most 5 levels")
        attributes = dict(record.get("attributes") or {})
        rtype = self._allow(str(attributes.get("type") or sobject), CREATE)
        ref = str(attributes.get("referenceId") or f"ref{next(counter)}")
        refs.append(ref)
        out: dict[str, Any] = {"attributes": {"type": rtype, "referenceId": ref}}
        for key, value in record.items():
            if key == "attributes":
                continue
            if isinstance(value, Mapping) and isinstance(value.get("records"), list):
                children = []
                for child in value["records"]:
                    ctype = str((child.get("attributes") or {}).get("type") or "")
                    if not ctype:
                        raise ValueError(f"child records under {key} need attributes.type")
                    children.append(self._tree_record(ctype, child, counter, refs, depth + 1))
                out[key] = {"records": children}
            else:
                out[key] = value
        return out

    def _tree_call(
        self,
        sobject: str,
        prepared: list[tuple[dict[str, Any], list[str]]],
        indexes: list[int],
    ) -> list[RecordOutcome]:
        body = {"records": [prepared[i][0] for i in indexes]}
        try:
            response = self._send(
                "POST", f"{self.base}/composite/tree/{sobject}", json=body, ok=(200, 201, 400)
            )
        except SalesforceError as exc:
            return [RecordOutcome(i, False, error=exc) for i in indexes]
        payload = _body(response)
        if response.status_code == 400 and not (
            isinstance(payload, Mapping) and "hasErrors" in payload
        ):
            error = from_response(400, payload)
            return [RecordOutcome(i, False, error=error) for i in indexes]
        ids: dict[str, str] = {}
        for item in payload.get("results") or ():
            if item.get("id"):
                ids[str(item.get("referenceId") or item.get("referenceld"))] = str(item["id"])
        errors = tree_errors(payload, response.status_code) if payload.get("hasErrors") else {}
        outcomes = []
        for i in indexes:
            refs = prepared[i][1]
            root = refs[0]
            related = {r: ids[r] for r in refs[1:] if r in ids}
            if errors:
                own = next((errors[r] for r in refs if r in errors), None)
                error = own or RolledBack(
                    "rolled back: another record in the same tree request failed",
                    error_code="ALL_OR_NONE_OPERATION_ROLLED_BACK",
                )
                outcomes.append(RecordOutcome(i, False, error=error, reference_id=root))
            elif root in ids:
                outcome = RecordOutcome(i, True, ids[root], reference_id=root, related=related)
                outcomes.append(outcome)
            else:
                missing = Unavailable(f"tree answer has no result for {root}")
                outcomes.append(RecordOutcome(i, False, error=missing, reference_id=root))
        return outcomes

    # ------------------------------------------------------------------ composite / graph

    def composite(
        self, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
    ) -> list[SubResponse]:
        """One ``/composite`` call of at most 25 subrequests (5 collections/queries).

        Every subrequest is checked against the allow-list first; every subresponse is judged
        by its own status and carries a typed ``error`` when it failed.
        """
        for sub in subrequests:
            self._allow_subrequest(sub)
        return self._composite_send(list(subrequests), all_or_none=all_or_none)

    def _composite_send(
        self, subrequests: list[Subrequest], *, all_or_none: bool, query: bool = False
    ) -> list[SubResponse]:
        if not subrequests:
            return []
        if len(subrequests) > COMPOSITE_SIZE:
            raise ValueError(f"a composite holds at most {COMPOSITE_SIZE} subrequests")
        heavy = sum(1 for s in subrequests if _is_heavy(self._abs(s.url)))
        if heavy > COMPOSITE_HEAVY:
            raise ValueError(f"a composite holds at most {COMPOSITE_HEAVY} collections/queries")
        payload = {
            "allOrNone": all_or_none,
            "compositeRequest": [self._sub_json(s) for s in subrequests],
        }
        body = self._send("POST", f"{self.base}/composite", json=payload).json()
        items = body.get("compositeResponse") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise Unavailable("composite answer without compositeResponse")
        by_ref = {str(i.get("referenceId")): i for i in items if isinstance(i, Mapping)}
        out = []
        for sub in subrequests:
            item = by_ref.get(sub.reference_id)
            if item is None:
                missing = Unavailable(f"composite answer lacks {sub.reference_id}")
                out.append(SubResponse(sub.reference_id, 0, None, {}, missing))
                continue
            out.append(_subresponse(item, query=query or "/query" in sub.url))
        return out

    def graph(self, graphs: Sequence[Graph]) -> list[GraphResult]:
        """Run graphs (each atomic) in ``/composite/graph`` calls of at most 500 nodes."""
        ids = [g.graph_id for g in graphs]
        if len(set(ids)) != len(ids):
            raise ValueError("graph ids must be unique")
        for g in graphs:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}", g.graph_id):
                raise ValueError(f"invalid graph id {g.graph_id!r}")
            if len(g.subrequests) > GRAPH_NODES:
                raise ValueError(f"graph {g.graph_id} has more than {GRAPH_NODES} nodes")
            for sub in g.subrequests:
                self._allow_subrequest(sub)
        results: list[GraphResult] = []
        batch: list[Graph] = []
        nodes = 0
        for g in graphs:
            if batch and (nodes + len(g.subrequests) > GRAPH_NODES or len(batch) >= GRAPH_COUNT):
                results.extend(self._graph_call(batch))
                batch, nodes = [], 0
            batch.append(g)
            nodes += len(g.subrequests)
        if batch:
            results.extend(self._graph_call(batch))
        return results

    def _graph_call(self, graphs: list[Graph]) -> list[GraphResult]:
        payload = {"graphs": [self._graph_json(g) for g in graphs]}
        body = self._send("POST", f"{self.base}/composite/graph", json=payload).json()
        by_id = {str(g.get("graphId")): g for g in (body.get("graphs") or [])}
        results = []
        for g in graphs:
            item = by_id.get(g.graph_id)
            if item is None:
                missing = Unavailable(f"graph answer lacks {g.graph_id}")
                results.append(GraphResult(g.graph_id, False, [], missing))
                continue
            items = (item.get("graphResponse") or {}).get("compositeResponse") or []
            responses = [_subresponse(i) for i in items if isinstance(i, Mapping)]
            error = graph_error(item)
            results.append(GraphResult(g.graph_id, error is None, responses, error))
        return results

    def _graph_json(self, graph: Graph) -> dict[str, Any]:
        return {
            "graphId": graph.graph_id,
            "compositeRequest": [self._sub_json(s) for s in graph.subrequests],
        }

    def _abs(self, url: str) -> str:
        return url if url.startswith("/services/data/") else self.base + url

    def _sub_json(self, sub: Subrequest) -> dict[str, Any]:
        item: dict[str, Any] = {
            "method": sub.method,
            "url": self._abs(sub.url),
            "referenceId": sub.reference_id,
        }
        if sub.body is not None:
            item["body"] = sub.body
        if sub.headers:
            item["httpHeaders"] = dict(sub.headers)
        return item

    def _allow_subrequest(self, sub: Subrequest) -> None:
        """Map a subrequest's method and URL to (object, operation) and check it."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]{0,79}", sub.reference_id):
            raise ValueError(f"invalid referenceId {sub.reference_id!r}")
        parts = urlsplit(self._abs(sub.url))
        segments = parts.path.split("/")[4:]  # after /services/data/vXX.X
        method = sub.method.upper()
        if any(seg in (".", "..") for seg in parts.path.split("/")):
            raise ValueError(f"subrequest URL must not contain dot segments: {sub.url!r}")

        def refuse() -> None:
            raise OperationNotAllowed(
                f"connection {self.settings.name!r} may not send {method} {parts.path}",
                error_code="OPERATION_NOT_ALLOWED",
            )

        if segments and segments[0] in ("query", "queryAll"):
            q = parse_qs(parts.query).get("q")
            if method != "GET" or not q:
                refuse()
            self._allow_query(q[0])
            return
        if segments[:1] == ["sobjects"] and len(segments) >= 2:
            sobject = segments[1]
            rest = [s for s in segments[2:] if s]
            if not rest:
                ops = {"POST": (CREATE,), "GET": (READ,)}.get(method)
            elif rest == ["describe"]:
                ops = (READ,) if method == "GET" else None
            elif len(rest) == 1:
                ops = {"GET": (READ,), "PATCH": (EDIT,), "DELETE": (DELETE,)}.get(method)
            elif len(rest) == 2 and _RECORD_ID.match(rest[0]):
                ops = None  # /sobjects/X/{id}/{relationship} reads another object
            elif len(rest) == 2:
                ops = {
                    "GET": (READ,),
                    "PATCH": (CREATE, EDIT),
                    "POST": (CREATE, EDIT),
                    "DELETE": (DELETE,),
                }.get(method)
            else:
                ops = None
            if ops is None:
                refuse()
            self._allow(sobject, *ops)
            return
        if segments[:2] == ["composite", "sobjects"]:
            rest = [s for s in segments[2:] if s]
            if rest:  # /composite/sobjects/X[/ExtField]
                ops = (
                    {"PATCH": (CREATE, EDIT)}
                    if len(rest) == 2
                    else {"GET": (READ,), "POST": (READ,)}
                )
                chosen = ops.get(method)
                if chosen is None:
                    refuse()
                self._allow(rest[0], *chosen)
                return
            op = {"POST": CREATE, "PATCH": EDIT}.get(method)
            records = (sub.body or {}).get("records") if isinstance(sub.body, Mapping) else None
            if op is None or not isinstance(records, list):
                refuse()
            for record in records:
                rtype = str((record.get("attributes") or {}).get("type") or "")
                if not rtype:
                    refuse()
                self._allow(rtype, op)
            return
        refuse()


# ---------------------------------------------------------------------- wire helpers


def _invalid_session(response: requests.Response) -> bool:
    body = _body(response)
    if isinstance(body, list):
        return any(
            isinstance(i, Mapping) and i.get("errorCode") == "INVALID_SESSION_ID" for i in body
        )
    return isinstance(body, Mapping) and body.get("errorCode") == "INVALID_SESSION_ID"


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _query_headers(batch_size: int | None) -> dict[str, str] | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not 200 <= batch_size <= 2000:
        raise ValueError("batch_size must be within 200..2000")
    return {"Sforce-Query-Options": f"batchSize={batch_size}"}


def _page(body: Any) -> QueryPage:
    if not isinstance(body, Mapping) or not isinstance(body.get("records"), list):
        raise Unavailable("query answer without records")
    return QueryPage(
        records=list(body["records"]),
        total_size=int(body.get("totalSize") or 0),
        done=bool(body.get("done", True)),
        next_records_url=body.get("nextRecordsUrl") or None,
    )


def _typed(sobject: str, record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": sobject}}
    out.update({k: v for k, v in record.items() if k != "attributes"})
    return out


def _save_results(body: Any, start: int, count: int) -> list[RecordOutcome]:
    """SaveResult / UpsertResult arrays (collections), one per record in request order."""
    if not isinstance(body, list) or len(body) != count:
        error = Unavailable(
            f"expected {count} results, got {len(body) if isinstance(body, list) else body!r}"
        )
        return _failed(start, count, error)
    out = []
    for offset, item in enumerate(body):
        index = start + offset
        if not isinstance(item, Mapping):
            out.append(RecordOutcome(index, False, error=Unavailable("malformed result")))
        elif item.get("success") is True:
            created = item.get("created")
            out.append(RecordOutcome(index, True, item.get("id"), created=created))
        else:
            error = from_record_errors(item.get("errors") or [])
            out.append(RecordOutcome(index, False, item.get("id"), error=error))
    return out


def _failed(start: int, count: int, error: SalesforceError) -> list[RecordOutcome]:
    return [RecordOutcome(start + i, False, error=error) for i in range(count)]


def _subresponse(item: Mapping[str, Any], *, query: bool = False) -> SubResponse:
    status = item.get("httpStatusCode")
    return SubResponse(
        reference_id=str(item.get("referenceId")),
        status=status if isinstance(status, int) else 0,
        body=item.get("body"),
        headers=dict(item.get("httpHeaders") or {}),
        error=from_subresponse(item, query=query),
    )


def _is_heavy(url: str) -> bool:
    path = urlsplit(url).path
    return bool(re.search(r"/(query|queryAll)/?$|/composite/sobjects", path))


__all__ = ["QueryResult", "SalesforceClient"]
