"""The REST resources under ``/services/data/vNN.N``, independent of Flask.

``dispatch`` maps (method, path, params, body) to a ``Reply``; the Flask layer calls it for
real requests, and the composite resources call it for their subrequests, so a subrequest
behaves exactly like the same request sent alone.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from sandbox_org.dml import Caller, now_iso, parse_datetime
from sandbox_org.errors import SfError, not_found
from sandbox_org.query import StoreSource, batch_size
from sandbox_org.state import Sandbox

log = logging.getLogger(__name__)


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None and raw None -> empty body
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str | None = None

    @classmethod
    def error(cls, err: SfError) -> Reply:
        return cls(err.status, [err.rest()])

    def json_body(self) -> Any:
        """The body as JSON data (for composite results), also when pre-rendered."""
        if self.raw is not None and (self.content_type or "").startswith("application/json"):
            return json.loads(self.raw)
        return self.body


@dataclass
class Ctx:
    sb: Sandbox
    caller: Caller
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case request headers

    def lock_fault(self) -> bool:
        return self.sb.faults.roll(self.sb.faults.lock_rate)


NO_BODY = object()  # the request had no body


@dataclass
class BadJson:
    message: str


JSON_TYPE = "application/json;charset=UTF-8"


def to_json(value: Any) -> bytes:
    """JSON as real orgs print it (Jackson's default pretty printer, wire-shapes §0): objects
    one member a line with `` : ``, arrays inline (``[ {`` ... ``}, {`` ... ``} ]``), empty
    containers ``[ ]`` / ``{ }``; only objects add indentation."""
    out: list[str] = []
    _emit(value, 0, out)
    return "".join(out).encode()


_scalar = json.JSONEncoder(ensure_ascii=False).encode


def _emit(value: Any, level: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{ }")
            return
        pad = "\n" + "  " * (level + 1)
        out.append("{")
        first = True
        for key, item in value.items():
            out.append(pad if first else "," + pad)
            first = False
            out.append(_scalar(str(key)))
            out.append(" : ")
            _emit(item, level + 1, out)
        out.append("\n" + "  " * level + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[ ]")
            return
        out.append("[ ")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _emit(item, level, out)
        out.append(" ]")
    else:
        out.append(_scalar(value))


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _not_modified(ctx: Ctx, last_modified: datetime) -> bool:
    ims = ctx.headers.get("if-modified-since")
    if not ims:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified <= since


def _json_body(body: Any) -> Any:
    if body is NO_BODY:
        raise SfError(400, "JSON_PARSER_ERROR", "No content to map due to end-of-input")
    if isinstance(body, BadJson):
        raise SfError(400, "JSON_PARSER_ERROR", body.message)
    return body


# -- resources --------------------------------------------------------------------------------


def resources(ctx: Ctx) -> Reply:
    base = f"/services/data/v{ctx.version}"
    names = [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "iot",
        "analytics",
        "search",
        "identity",
        "composite",
        "parameterizedSearch",
        "fingerprint",
        "theme",
        "nouns",
        "event",
        "serviceTemplates",
        "recent",
        "connect",
        "licensing",
        "limits",
        "process",
        "async-queries",
        "query",
        "match",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
    ]
    return Reply(200, {n: f"{base}/{n}" for n in names})


def limits(ctx: Ctx) -> Reply:
    usage = ctx.sb.usage.snapshot()

    def pair(n: int) -> dict[str, int]:
        return {"Max": n, "Remaining": n}

    body = {
        "ConcurrentAsyncGetReportInstances": pair(200),
        "ConcurrentSyncReportRuns": pair(20),
        "DailyApiRequests": {
            "Max": usage["limit"],
            "Remaining": max(0, usage["remaining"]),
        },
        "DailyAsyncApexExecutions": pair(250000),
        "DailyBulkApiBatches": pair(15000),
        "DailyBulkV2QueryFileStorageMB": pair(976562),
        "DailyBulkV2QueryJobs": pair(10000),
        # High-volume platform events + change events delivered (Pub/Sub, CometD), 24 h.
        "DailyDeliveredPlatformEvents": ctx.sb.events.allocation.snapshot(),
        "DataStorageMB": pair(1024),
        "FileStorageMB": pair(2048),
        "HourlyDashboardRefreshes": pair(200),
        "MassEmail": pair(5000),
        "SingleEmail": pair(5000),
    }
    return Reply(200, body)


def record_count(ctx: Ctx, params: dict[str, str]) -> Reply:
    names = [n for n in params.get("sObjects", "").split(",") if n]
    out = []
    for obj in ctx.sb.schema.readable_objects(ctx.caller.perms):
        if names and obj.name not in names:
            continue
        out.append({"count": ctx.sb.store.count(obj.name), "name": obj.name})
    return Reply(200, {"sObjects": out})


def describe_global(ctx: Ctx) -> Reply:
    """Describe Global. With `If-Modified-Since`, 304 when "no available object's metadata has
    changed since the provided date" (REST API Developer Guide, Describe Global,
    developer.salesforce.com/docs/platform/api-rest/guide/resources-describeglobal.md): the
    newest metadata change of the objects this caller can read (each object's own describe
    Last-Modified), so a change to an object one integration user cannot see does not make
    that user's gateway connection re-describe anything."""
    schema = ctx.sb.schema
    readable = schema.readable_objects(ctx.caller.perms)
    changed = max((o.last_modified for o in readable), default=schema.global_last_modified)
    headers = {"Last-Modified": http_date(changed)}
    if _not_modified(ctx, changed):
        return Reply(304, None, headers)
    entries = [
        schema.global_entry(o, ctx.caller.perms, ctx.version)
        for o in sorted(readable, key=lambda o: o.name)
    ]
    return Reply(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": entries}, headers)


def describe(ctx: Ctx, sobject: str) -> Reply:
    obj = ctx.sb.records.object_for(sobject, ctx.caller)
    headers = {"Last-Modified": http_date(obj.last_modified)}
    if _not_modified(ctx, obj.last_modified):
        return Reply(304, None, headers)
    data = ctx.sb.schema.describe_json(obj.name, ctx.caller.perms, ctx.version, to_json)
    return Reply(200, None, headers, raw=data, content_type=JSON_TYPE)


def basic_info(ctx: Ctx, sobject: str) -> Reply:
    obj = ctx.sb.records.object_for(sobject, ctx.caller)
    entry = ctx.sb.schema.global_entry(obj, ctx.caller.perms, ctx.version)
    return Reply(200, {"objectDescribe": entry, "recentItems": []})


def create(ctx: Ctx, sobject: str, body: Any) -> Reply:
    body = _json_body(body)
    rid = ctx.sb.records.create(sobject, body, ctx.caller, lock_fault=ctx.lock_fault())
    obj = ctx.sb.schema.get(sobject)
    location = ctx.sb.records.url(obj.name, rid, ctx.version) if obj else ""
    return Reply(201, {"id": rid, "success": True, "errors": []}, {"Location": location})


def _fields_param(params: dict[str, str]) -> list[str] | None:
    raw = params.get("fields")
    if raw is None:
        return None
    return [f for f in (x.strip() for x in raw.split(",")) if f]


def _looks_like_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isascii() and value.isalnum()


def row(ctx: Ctx, method: str, sobject: str, ident: str, params: dict, body: Any) -> Reply:
    records = ctx.sb.records
    obj = records.object_for(sobject, ctx.caller)
    if ident in ("updated", "deleted") and method == "GET":
        return changes_since(ctx, obj.name, ident, params)
    if not _looks_like_id(ident) or obj.field(ident) is not None:
        # /sobjects/X/{ExtIdField} (POST/PATCH): insert or upsert without a value
        if method in ("POST", "PATCH") and obj.field(ident) is not None:
            return _upsert(ctx, obj.name, ident, None, body)
        if obj.field(ident) is not None:
            raise SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")
        raise not_found(f"Provided external ID field does not exist or is not accessible: {ident}")
    if method == "GET":
        return Reply(200, records.retrieve(obj.name, ident, ctx.caller, _fields_param(params)))
    if method == "PATCH":
        records.update(obj.name, ident, _json_body(body), ctx.caller, lock_fault=ctx.lock_fault())
        return Reply(204)
    if method == "DELETE":
        records.delete(obj.name, ident, ctx.caller, lock_fault=ctx.lock_fault())
        return Reply(204)
    raise SfError(
        405,
        "METHOD_NOT_ALLOWED",
        f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD,PATCH,DELETE",
    )


def changes_since(ctx: Ctx, sobject: str, kind: str, params: dict[str, str]) -> Reply:
    """GET /sobjects/X/updated|deleted?start=&end= (wire-shapes §5)."""
    start = parse_datetime(params.get("start", ""))
    end = parse_datetime(params.get("end", ""))
    if start is None or end is None:
        raise SfError(
            400,
            "INVALID_REPLICATION_DATE",
            "start and end must be dateTime values (yyyy-MM-ddTHH:mm:ss+00:00)",
        )
    covered = now_iso(min(end, datetime.now(UTC)).replace(second=0, microsecond=0))
    lo, hi = now_iso(start), now_iso(end)
    rows = ctx.sb.store.all(sobject, include_deleted=True)
    if kind == "updated":
        ids_ = [
            r["Id"]
            for r in rows
            if not r["IsDeleted"] and lo <= (r.get("SystemModstamp") or "") < hi
        ]
        return Reply(200, {"ids": ids_, "latestDateCovered": covered})
    deleted = [
        {"id": r["Id"], "deletedDate": r["SystemModstamp"]}
        for r in rows
        if r["IsDeleted"] and lo <= (r.get("SystemModstamp") or "") < hi
    ]
    earliest = min((r["CreatedDate"] for r in rows), default=covered)
    return Reply(
        200,
        {
            "deletedRecords": deleted,
            "earliestDateAvailable": earliest,
            "latestDateCovered": covered,
        },
    )


def _upsert(ctx: Ctx, sobject: str, field_name: str, value: str | None, body: Any) -> Reply:
    result = ctx.sb.records.upsert(
        sobject, field_name, value, _json_body(body), ctx.caller, lock_fault=ctx.lock_fault()
    )
    if isinstance(result, list):
        return Reply(300, result)
    rid, created = result
    return Reply(
        201 if created else 200,
        {"id": rid, "success": True, "errors": [], "created": created},
    )


def by_external_id(
    ctx: Ctx, method: str, sobject: str, a: str, b: str, params: dict, body: Any
) -> Reply:
    records = ctx.sb.records
    obj = records.object_for(sobject, ctx.caller)
    if _looks_like_id(a) and obj.field(a) is None:
        if obj.name == "ContentVersion" and b == "VersionData" and method == "GET":
            rid = records.check_id(obj, a)
            row_ = ctx.sb.store.get(obj.name, rid)
            data = ctx.sb.store.get_blob(rid)
            if row_ is None or row_["IsDeleted"] or data is None:
                raise not_found()
            return Reply(200, raw=data, content_type="application/octetstream")
        return _child_relationship(ctx, obj.name, a, b)
    f = obj.field(a)
    if f is None or not (f["externalId"] or f["idLookup"]):
        raise not_found(f"Provided external ID field does not exist or is not accessible: {a}")
    if method in ("PATCH", "POST"):
        return _upsert(ctx, obj.name, a, b, body)
    matches = records.find_by(obj, f, b)
    if len(matches) > 1:
        return Reply(300, [records.url(obj.name, r["Id"], ctx.version) for r in matches])
    if not matches:
        raise not_found()
    if method == "GET":
        return Reply(200, records.render(obj, matches[0], ctx.version, _fields_param(params)))
    if method == "DELETE":
        records.delete(obj.name, matches[0]["Id"], ctx.caller, lock_fault=ctx.lock_fault())
        return Reply(204)
    raise SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")


def _child_relationship(ctx: Ctx, sobject: str, rid: str, rel: str) -> Reply:
    """GET /sobjects/X/{id}/{relationship}: children as a query result, or the parent."""
    records = ctx.sb.records
    obj = ctx.sb.schema.get(sobject)
    assert obj is not None
    record_id = records.check_id(obj, rid)
    parent = ctx.sb.store.get(obj.name, record_id)
    if parent is None or parent["IsDeleted"]:
        raise not_found()
    child = obj.children.get(rel.lower())
    if child is not None:
        child_obj = ctx.sb.schema.get(child["childSObject"])
        if child_obj is None or not ctx.caller.perms.can(child_obj.name, "read"):
            raise not_found()
        rows = [
            records.render(child_obj, r, ctx.version)
            for r in ctx.sb.store.all(child_obj.name)
            if r.get(child["field"]) == record_id
        ]
        return Reply(200, {"totalSize": len(rows), "done": True, "records": rows})
    ref = obj.parents.get(rel.lower())
    if ref is not None and parent.get(ref["name"]):
        target_id = parent[ref["name"]]
        target = ctx.sb.schema.by_prefix.get(target_id[:3])
        if target and ctx.caller.perms.can(target, "read"):
            return Reply(200, records.retrieve(target, target_id, ctx.caller))
    raise not_found()


# -- query --------------------------------------------------------------------------------------


def run_query(ctx: Ctx, soql: str | None, *, include_deleted: bool) -> Reply:
    if soql is None or not soql.strip():
        raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        from sandbox_org.soql import SoqlError, execute
    except ImportError:  # pragma: no cover - only while the SOQL engine is being written
        raise SfError(500, "UNKNOWN_EXCEPTION", "SOQL engine unavailable") from None
    source = StoreSource(ctx.sb.schema, ctx.sb.store, ctx.caller.perms, ctx.version)
    try:
        result = execute(soql, source, include_deleted=include_deleted, api_version=ctx.version)
    except SoqlError as exc:
        raise SfError(400, exc.error_code, exc.message) from None
    page = ctx.sb.cursors.page(
        result.records,
        result.total_size,
        batch=batch_size(ctx.headers.get("sforce-query-options")),
        owner=ctx.caller.user_id,
        version=ctx.version,
        is_count=result.is_count,
    )
    return Reply(200, page)


def next_query_page(ctx: Ctx, locator: str) -> Reply:
    page = ctx.sb.cursors.next_page(locator, owner=ctx.caller.user_id, version=ctx.version)
    return Reply(200, page)


# -- dispatch -----------------------------------------------------------------------------------

_SOBJ = re.compile(r"^/sobjects/([^/]+)(?:/([^/]+))?(?:/([^/]+))?/?$")
_QUERY = re.compile(r"^/(query|queryAll)(?:/([^/]*))?/?$")


def dispatch(ctx: Ctx, method: str, path: str, params: dict[str, str], body: Any) -> Reply:
    """Answer one request to ``/services/data/v{ctx.version}{path}``."""
    from sandbox_org import composite

    try:
        return _route(ctx, method, path or "/", params, body, composite)
    except SfError as err:
        return Reply.error(err)
    except Exception:
        # A bug in the emulator: answer as an org does for internal errors, and log it.
        log.exception("sandbox error on %s %s", method, path)
        return Reply(
            500,
            [
                {
                    "errorCode": "UNKNOWN_EXCEPTION",
                    "message": "An unexpected error occurred. Please include this ErrorId if "
                    "you contact support: sandbox",
                }
            ],
        )


def _route(ctx: Ctx, method: str, path: str, params: dict, body: Any, composite: Any) -> Reply:
    if path in ("", "/"):
        return _only(method, "GET", lambda: resources(ctx))
    if path.rstrip("/") == "/limits":
        return _only(method, "GET", lambda: limits(ctx))
    if path.rstrip("/") == "/limits/recordCount":
        return _only(method, "GET", lambda: record_count(ctx, params))
    if path.rstrip("/") == "/sobjects":
        return _only(method, "GET", lambda: describe_global(ctx))
    m = _SOBJ.match(path)
    if m:
        sobject, a, b = m.groups()
        if a is None:
            if method == "GET":
                return basic_info(ctx, sobject)
            if method == "POST":
                return create(ctx, sobject, body)
            raise _not_allowed(method, "GET,POST")
        if b is None and a == "describe":
            return _only(method, "GET", lambda: describe(ctx, sobject))
        if b is None:
            return row(ctx, method, sobject, a, params, body)
        return by_external_id(ctx, method, sobject, a, b, params, body)
    m = _QUERY.match(path)
    if m:
        kind, locator = m.groups()
        if method != "GET":
            raise _not_allowed(method, "GET,HEAD")
        if locator:
            return next_query_page(ctx, locator)
        return run_query(ctx, params.get("q"), include_deleted=kind == "queryAll")
    if path.startswith("/composite"):
        return composite.route(ctx, method, path, params, body)
    raise not_found()


def _not_allowed(method: str, allowed: str) -> SfError:
    return SfError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def _only(method: str, allowed: str, fn: Any) -> Reply:
    if method not in (allowed, "HEAD"):
        raise SfError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {allowed},HEAD",
        )
    return fn()
