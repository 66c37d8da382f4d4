"""Composite packing: what goes into one API call, and how its answer is read record by record.

Request building, within Salesforce's limits (wire shapes: the Salesforce REST API Developer
Guide, "Composite Resources"):

* sObject Collections: :data:`COLLECTION_SIZE` records a request;
* ``/composite``: :data:`COMPOSITE_SIZE` subrequests, at most :data:`COMPOSITE_HEAVY` of them
  collections or queries - so one API call carries 1,000 records or five queries;
* sObject Tree: :data:`TREE_SIZE` records in all levels of one request, five levels deep;
* ``/composite/graph``: :data:`GRAPH_NODES` nodes and :data:`GRAPH_COUNT` graphs a payload.

Answer reading: a 200 is never trusted. Every record gets its own
:class:`~ats_gateway.salesforce.results.RecordOutcome` (in input order), every subrequest its
own :class:`~ats_gateway.salesforce.results.SubResponse` and every graph a
:class:`~ats_gateway.salesforce.results.GraphResult`, each with a typed error when it failed.
Nothing here sends anything: the client passes the sending in as a callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ats_gateway.salesforce.errors import (
    AuthenticationFailed,
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
)

COLLECTION_SIZE = 200  # records per sObject Collections request
TREE_SIZE = 200  # records per sObject Tree request (all levels)
TREE_DEPTH = 5  # levels of one sObject Tree record
COMPOSITE_SIZE = 25  # subrequests per /composite
COMPOSITE_HEAVY = 5  # collections or query subrequests per /composite
GRAPH_NODES = 500  # nodes per /composite/graph payload
GRAPH_COUNT = 75  # graphs per payload

_GRAPH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")

# Raised for a whole batch request; records of the chunks not yet sent share the error.
FATAL = (
    AuthenticationFailed,
    SessionExpired,
    PermissionDenied,
    RequestLimitExceeded,
    Unavailable,
)

#: A tree record ready to send, and the referenceIds of it and its descendants (its own first).
TreeItem = tuple[dict[str, Any], list[str]]


def chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(offset, slice) of ``items`` in slices of ``size``."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def absolute(url: str, base: str) -> str:
    """A subrequest URL under ``base`` (``/services/data/vXX.X``) unless it already is."""
    return url if url.startswith("/services/data/") else base + url


def read_page(body: Any) -> QueryPage:
    """One page of a query answer (``records``, ``totalSize``, ``done``, ``nextRecordsUrl``)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("records"), list):
        raise Unavailable("query answer without records")
    return QueryPage(
        records=list(body["records"]),
        total_size=int(body.get("totalSize") or 0),
        done=bool(body.get("done", True)),
        next_records_url=body.get("nextRecordsUrl") or None,
    )


# --------------------------------------------------------------------------- collections


def collection_body(
    sobject: str, records: Sequence[Mapping[str, Any]], all_or_none: bool
) -> dict[str, Any]:
    """An sObject Collections request body: each record typed as ``sobject``."""
    return {"allOrNone": all_or_none, "records": [_typed(sobject, r) for r in records]}


def per_chunk(items: Sequence[Any], send: Callable[[list[Any]], Any]) -> list[RecordOutcome]:
    """Send ``items`` in sObject-collection chunks of 200 (``send`` returns the answer's
    JSON), one outcome per item in order.

    A failed chunk fails only its own items; a fatal error (auth, permission, limit)
    fails every later chunk without sending it."""
    outcomes: list[RecordOutcome] = []
    fatal: SalesforceError | None = None
    for start, chunk in chunks(list(items), COLLECTION_SIZE):
        error = fatal
        if error is None:
            try:
                outcomes.extend(save_results(send(list(chunk)), start, len(chunk)))
                continue
            except SalesforceError as exc:
                error = exc
                if isinstance(exc, FATAL):
                    fatal = exc
        outcomes.extend(failed(start, len(chunk), error))
    return outcomes


def bulk(
    method: str,
    path: str,
    sobject: str,
    records: Sequence[Mapping[str, Any]],
    all_or_none: bool,
    composite: Callable[[list[Subrequest]], list[SubResponse]],
) -> list[RecordOutcome]:
    """Records as five collections subrequests of 200 per ``/composite`` call (``composite``
    sends one); one outcome per record, in order. A fatal error fails the later calls unsent."""
    outcomes: list[RecordOutcome] = []
    fatal: SalesforceError | None = None
    for start, group in chunks(list(records), COLLECTION_SIZE * COMPOSITE_HEAVY):
        if fatal is not None:
            outcomes.extend(failed(start, len(group), fatal))
            continue
        subrequests = []
        sizes = []
        for offset, chunk in chunks(group, COLLECTION_SIZE):
            body = collection_body(sobject, chunk, all_or_none)
            subrequests.append(Subrequest(method, path, f"c{start + offset}", body))
            sizes.append((start + offset, len(chunk)))
        try:
            responses = composite(subrequests)
        except SalesforceError as exc:
            if isinstance(exc, FATAL):
                fatal = exc
            outcomes.extend(failed(start, len(group), exc))
            continue
        for (first, size), sub in zip(sizes, responses, strict=True):
            if sub.error is not None:
                outcomes.extend(failed(first, size, sub.error))
            else:
                outcomes.extend(save_results(sub.body, first, size))
    return outcomes


def save_results(body: Any, start: int, count: int) -> list[RecordOutcome]:
    """SaveResult / UpsertResult arrays (collections), one per record in request order."""
    if not isinstance(body, list) or len(body) != count:
        error = Unavailable(
            f"expected {count} results, got {len(body) if isinstance(body, list) else body!r}"
        )
        return failed(start, count, error)
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


def failed(start: int, count: int, error: SalesforceError) -> list[RecordOutcome]:
    """``count`` failed outcomes from index ``start``, sharing ``error``."""
    return [RecordOutcome(start + i, False, error=error) for i in range(count)]


def _typed(sobject: str, record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": sobject}}
    out.update({k: v for k, v in record.items() if k != "attributes"})
    return out


# --------------------------------------------------------------------------- /composite


def composite_payload(
    subrequests: Sequence[Subrequest], *, all_or_none: bool, base: str
) -> dict[str, Any]:
    """A ``/composite`` body; ValueError when it would break the subrequest limits."""
    if len(subrequests) > COMPOSITE_SIZE:
        raise ValueError(f"a composite holds at most {COMPOSITE_SIZE} subrequests")
    heavy = sum(1 for s in subrequests if _is_heavy(absolute(s.url, base)))
    if heavy > COMPOSITE_HEAVY:
        raise ValueError(f"a composite holds at most {COMPOSITE_HEAVY} collections/queries")
    return {
        "allOrNone": all_or_none,
        "compositeRequest": [_subrequest_json(s, base) for s in subrequests],
    }


def read_composite(
    body: Any, subrequests: Sequence[Subrequest], *, query: bool = False
) -> list[SubResponse]:
    """One :class:`SubResponse` per subrequest, in request order, each judged on its own."""
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


def _subrequest_json(sub: Subrequest, base: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "method": sub.method,
        "url": absolute(sub.url, base),
        "referenceId": sub.reference_id,
    }
    if sub.body is not None:
        item["body"] = sub.body
    if sub.headers:
        item["httpHeaders"] = dict(sub.headers)
    return item


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


# --------------------------------------------------------------------------- /composite/graph


def check_graphs(graphs: Sequence[Graph]) -> None:
    """ValueError for duplicate or invalid graph ids and graphs over the node limit."""
    ids = [g.graph_id for g in graphs]
    if len(set(ids)) != len(ids):
        raise ValueError("graph ids must be unique")
    for g in graphs:
        if not _GRAPH_ID.fullmatch(g.graph_id):
            raise ValueError(f"invalid graph id {g.graph_id!r}")
        if len(g.subrequests) > GRAPH_NODES:
            raise ValueError(f"graph {g.graph_id} has more than {GRAPH_NODES} nodes")


def graph_batches(graphs: Sequence[Graph]) -> Iterator[list[Graph]]:
    """Graphs in payloads of at most :data:`GRAPH_NODES` nodes and :data:`GRAPH_COUNT` graphs."""
    batch: list[Graph] = []
    nodes = 0
    for g in graphs:
        if batch and (nodes + len(g.subrequests) > GRAPH_NODES or len(batch) >= GRAPH_COUNT):
            yield batch
            batch, nodes = [], 0
        batch.append(g)
        nodes += len(g.subrequests)
    if batch:
        yield batch


def graph_payload(graphs: Sequence[Graph], base: str) -> dict[str, Any]:
    return {
        "graphs": [
            {
                "graphId": g.graph_id,
                "compositeRequest": [_subrequest_json(s, base) for s in g.subrequests],
            }
            for g in graphs
        ]
    }


def read_graphs(body: Any, graphs: Sequence[Graph]) -> list[GraphResult]:
    """One :class:`GraphResult` per graph, in request order."""
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


# --------------------------------------------------------------------------- sObject Tree


def prepare_tree(
    sobject: str, records: Sequence[Mapping[str, Any]], allow: Callable[[str], str]
) -> list[TreeItem]:
    """Each record with ``attributes`` (type, referenceId) on every level; ``allow`` checks
    (and returns) each record's type. ValueError for trees too deep, too large or with
    duplicate referenceIds."""
    counter = iter(range(1, 1 << 62))
    prepared: list[TreeItem] = []
    for record in records:
        refs: list[str] = []
        prepared.append((_tree_record(sobject, record, counter, refs, 1, allow), refs))
    all_refs = [ref for _, refs in prepared for ref in refs]
    if len(set(all_refs)) != len(all_refs):
        raise ValueError("referenceIds must be unique across the records")
    return prepared


def tree_batches(prepared: Sequence[TreeItem]) -> Iterator[list[int]]:
    """Indexes of ``prepared`` packed into requests of at most :data:`TREE_SIZE` records."""
    batch: list[int] = []
    size = 0
    for index, (_, refs) in enumerate(prepared):
        if len(refs) > TREE_SIZE:
            raise ValueError(f"record {index} has {len(refs)} records in its tree (max 200)")
        if size + len(refs) > TREE_SIZE:
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += len(refs)
    if batch:
        yield batch


def tree_body(prepared: Sequence[TreeItem], indexes: Sequence[int]) -> dict[str, Any]:
    return {"records": [prepared[i][0] for i in indexes]}


def read_tree(
    status: int, payload: Any, prepared: Sequence[TreeItem], indexes: Sequence[int]
) -> list[RecordOutcome]:
    """Outcomes of one tree request: one transaction, so if any record failed every record
    fails (the culprit with its own error, the others :class:`RolledBack`)."""
    if status == 400 and not (isinstance(payload, Mapping) and "hasErrors" in payload):
        error = from_response(400, payload)
        return [RecordOutcome(i, False, error=error) for i in indexes]
    ids: dict[str, str] = {}
    for item in payload.get("results") or ():
        if item.get("id"):
            ids[str(item.get("referenceId") or item.get("referenceld"))] = str(item["id"])
    errors = tree_errors(payload, status) if payload.get("hasErrors") else {}
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


def _tree_record(
    sobject: str,
    record: Mapping[str, Any],
    counter: Iterator[int],
    refs: list[str],
    depth: int,
    allow: Callable[[str], str],
) -> dict[str, Any]:
    if depth > TREE_DEPTH:
        raise ValueError("sObject Tree allows at most 5 levels")
    attributes = dict(record.get("attributes") or {})
    rtype = allow(str(attributes.get("type") or sobject))
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
                children.append(_tree_record(ctype, child, counter, refs, depth + 1, allow))
            out[key] = {"records": children}
        else:
            out[key] = value
    return out
