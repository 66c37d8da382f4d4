"""The composite family: tree, sObject collections, composite, graph, batch.

Shapes and limits follow salesforce-wire-shapes.md §6. Where it is silent, limit errors use
``EXCEEDED_ID_LIMIT`` "record limit reached. cannot submit more than 200 records into this
call" (the message real orgs return, quoted in restforce/restforce#726 and
sorenkrabbe/Chrome-Salesforce-inspector#134) and ``INVALID_API_INPUT`` for malformed composite
envelopes [U: exact wording].
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox_org.errors import SfError, dml, invalid_type
from sandbox_org.rest import NO_BODY, BadJson, Ctx, Reply, dispatch

MAX_COLLECTION = 200
MAX_TREE_RECORDS = 200
MAX_TREE_DEPTH = 5
MAX_TREE_TYPES = 5
MAX_SUBREQUESTS = 25
MAX_HEAVY_SUBREQUESTS = 5  # collections or queries inside one /composite
MAX_GRAPH_NODES = 500
MAX_GRAPHS = 75
MAX_BATCH = 25

HALTED_MESSAGE = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}
_REF_RE = re.compile(r"@\{([^}]*)\}")
_REF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_VERSION_URL = re.compile(r"^/services/data/v(\d+\.\d)(/[^?]*)?(?:\?(.*))?$")


class _Rollback(Exception):
    """Raised inside a transaction to undo it."""


def _limit(message: str, code: str = "EXCEEDED_ID_LIMIT") -> SfError:
    return SfError(400, code, message)


def _body(body: Any) -> Any:
    if body is NO_BODY:
        raise SfError(400, "JSON_PARSER_ERROR", "No content to map due to end-of-input")
    if isinstance(body, BadJson):
        raise SfError(400, "JSON_PARSER_ERROR", body.message)
    return body


def route(ctx: Ctx, method: str, path: str, params: dict[str, str], body: Any) -> Reply:
    parts = [p for p in path.split("/") if p]  # ["composite", ...]
    base = f"/services/data/v{ctx.version}/composite"
    if len(parts) == 1:
        if method == "GET":
            return Reply(
                200,
                {
                    "tree": f"{base}/tree",
                    "batch": f"{base}/batch",
                    "sobjects": f"{base}/sobjects",
                    "graph": f"{base}/graph",
                },
            )
        _method(method, "POST")
        return composite(ctx, _body(body))
    kind = parts[1]
    if kind == "tree" and len(parts) == 3:
        _method(method, "POST")
        return tree(ctx, parts[2], _body(body))
    if kind == "sobjects":
        if len(parts) == 2:
            if method == "POST":
                return collection_create(ctx, _body(body))
            if method == "PATCH":
                return collection_update(ctx, _body(body))
            if method == "DELETE":
                return collection_delete(ctx, params)
            _method(method, "POST")
        if len(parts) == 3:
            if method == "GET":
                return collection_retrieve(
                    ctx, parts[2], params.get("ids", "").split(","), params.get("fields")
                )
            if method == "POST":
                data = _body(body) or {}
                return collection_retrieve(
                    ctx, parts[2], data.get("ids") or [], ",".join(data.get("fields") or [])
                )
            _method(method, "GET")
        if len(parts) == 4:
            _method(method, "PATCH")
            return collection_upsert(ctx, parts[2], parts[3], _body(body))
    if kind == "graph" and len(parts) == 2:
        _method(method, "POST")
        return graph(ctx, _body(body))
    if kind == "batch" and len(parts) == 2:
        _method(method, "POST")
        return batch(ctx, _body(body))
    raise SfError(404, "NOT_FOUND", "The requested resource does not exist")


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise SfError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
        )


# -- sObject Tree -----------------------------------------------------------------------------


def tree(ctx: Ctx, sobject: str, body: Any) -> Reply:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must contain records")
    root = ctx.sb.schema.get(sobject)
    if root is None or not ctx.caller.perms.can(root.name, "read"):
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    # Flatten level by level: (level, referenceId, object, fields, parent index, parent field)
    levels: list[list[dict[str, Any]]] = []
    total = 0
    types: set[str] = set()
    ref_ids: list[str] = []

    def walk(records: list[Any], obj_name: str, level: int, parent: dict | None, fk: str | None):
        nonlocal total
        if level > MAX_TREE_DEPTH:
            raise _limit(f"Exceeded max depth of {MAX_TREE_DEPTH} levels", "INVALID_INPUT")
        obj = ctx.sb.schema.get(obj_name)
        for rec in records:
            if not isinstance(rec, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
            total += 1
            attrs = rec.get("attributes") or {}
            rtype = attrs.get("type") or obj_name
            ref = attrs.get("referenceId")
            if not ref or not _REF_ID_RE.match(str(ref)):
                raise SfError(
                    400,
                    "INVALID_INPUT",
                    "Include a reference ID for each record in the request. The reference "
                    "ID must begin with an alphanumeric character.",
                )
            ref_ids.append(ref)
            types.add(rtype.lower())
            node = {"ref": ref, "type": rtype, "fields": {}, "parent": parent, "fk": fk}
            while len(levels) < level:
                levels.append([])
            levels[level - 1].append(node)
            for key, value in rec.items():
                if key == "attributes":
                    continue
                child = obj.children.get(key.lower()) if obj else None
                if child is not None and isinstance(value, dict) and "records" in value:
                    walk(value["records"], child["childSObject"], level + 1, node, child["field"])
                else:
                    node["fields"][key] = value

    walk(body["records"], root.name, 1, None, None)
    if total > MAX_TREE_RECORDS:
        raise _limit("record limit reached. cannot submit more than 200 records into this call")
    if len(types) > MAX_TREE_TYPES:
        raise _limit("Exceeded max limit of 5 sObject types in a tree request", "INVALID_INPUT")
    duplicates = {r for r in ref_ids if ref_ids.count(r) > 1}
    if duplicates:
        results = [
            {
                "referenceId": r,
                "errors": [
                    {
                        "statusCode": "INVALID_INPUT",
                        "message": f"Duplicate ReferenceId provided in the request: {r}",
                        "fields": [],
                    }
                ],
            }
            for r in ref_ids
            if r in duplicates
        ]
        return Reply(400, {"hasErrors": True, "results": results})
    failures: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    try:
        with ctx.sb.store.transaction():
            for level in levels:
                for node in level:
                    fields = dict(node["fields"])
                    if node["parent"] is not None:
                        if "id" not in node["parent"]:
                            continue  # parent failed; its error is reported
                        fields[node["fk"]] = node["parent"]["id"]
                    try:
                        node["id"] = _create(ctx, node["type"], fields)
                        done.append({"referenceId": node["ref"], "id": node["id"]})
                    except SfError as err:
                        failures.append({"referenceId": node["ref"], "errors": [err.result()]})
            if failures:
                raise _Rollback
    except _Rollback:
        return Reply(400, {"hasErrors": True, "results": failures})
    return Reply(201, {"hasErrors": False, "results": done})


def _create(ctx: Ctx, sobject: str, fields: dict[str, Any]) -> str:
    obj = ctx.sb.schema.get(sobject)
    if obj is None or not ctx.caller.perms.can(obj.name, "read"):
        raise invalid_type(sobject)
    return ctx.sb.records.create(obj.name, fields, ctx.caller, lock_fault=ctx.lock_fault())


# -- sObject Collections ----------------------------------------------------------------------


def _collection_records(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must contain records")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise _limit("record limit reached. cannot submit more than 200 records into this call")
    return records, bool(body.get("allOrNone", False))


def _type_of(rec: Any) -> str:
    if not isinstance(rec, dict):
        raise dml("JSON_PARSER_ERROR", "Each record must be a JSON object")
    attrs = rec.get("attributes")
    if not isinstance(attrs, dict) or not attrs.get("type"):
        raise dml("INVALID_FIELD", "No SObject Type defined in the attributes of the record", [])
    return attrs["type"]


def _run_collection(ctx: Ctx, items: list[Any], all_or_none: bool, op: Any) -> Reply:
    """Run op(item) -> (id, extra) per item; errors per item; allOrNone rolls back all."""
    results: list[dict[str, Any]] = []
    failed = False

    def one(item: Any) -> dict[str, Any]:
        nonlocal failed
        try:
            with ctx.sb.store.transaction():
                rid, extra = op(item)
            return {"id": rid, "success": True, "errors": [], **extra}
        except SfError as err:
            failed = True
            # Failed items carry no id (wire-shapes §6b).
            return {"success": False, "errors": [err.result()]}

    if not all_or_none:
        return Reply(200, [one(item) for item in items])
    try:
        with ctx.sb.store.transaction():
            results = [one(item) for item in items]
            if failed:
                raise _Rollback
    except _Rollback:
        rolled = []
        for r in results:
            if r["success"]:
                rolled.append({"id": r["id"], "success": False, "errors": [dict(ROLLED_BACK)]})
            else:
                rolled.append(r)
        return Reply(200, rolled)
    return Reply(200, results)


def collection_create(ctx: Ctx, body: Any) -> Reply:
    records, all_or_none = _collection_records(body)

    def op(rec: Any) -> tuple[str, dict]:
        sobject = _type_of(rec)
        if any(k.lower() == "id" for k in rec):
            raise dml("INVALID_FIELD", "Records with IDs can't be created", [])
        return _create(ctx, sobject, rec), {}

    return _run_collection(ctx, records, all_or_none, op)


def collection_update(ctx: Ctx, body: Any) -> Reply:
    records, all_or_none = _collection_records(body)

    def op(rec: Any) -> tuple[str, dict]:
        sobject = _type_of(rec)
        rid = next((v for k, v in rec.items() if k.lower() == "id"), None)
        if not rid:
            raise dml("MISSING_ARGUMENT", "Id not specified in an update call", [])
        obj = ctx.sb.schema.get(sobject)
        if obj is None or not ctx.caller.perms.can(obj.name, "read"):
            raise invalid_type(sobject)
        fields = {k: v for k, v in rec.items() if k.lower() != "id"}
        try:
            return ctx.sb.records.update(
                obj.name, str(rid), fields, ctx.caller, lock_fault=ctx.lock_fault()
            ), {}
        except SfError as err:
            if err.code == "NOT_FOUND":
                err = dml("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            raise err from None

    return _run_collection(ctx, records, all_or_none, op)


def collection_upsert(ctx: Ctx, sobject: str, field_name: str, body: Any) -> Reply:
    records, all_or_none = _collection_records(body)
    obj = ctx.sb.schema.get(sobject)
    if obj is None or not ctx.caller.perms.can(obj.name, "read"):
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    f = obj.field(field_name)
    if f is None or not (f["externalId"] or f["idLookup"]):
        raise SfError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field_name}",
        )

    def op(rec: Any) -> tuple[str, dict]:
        rtype = _type_of(rec)
        if rtype.lower() != obj.name.lower():
            raise dml("INVALID_FIELD", "All records must be of the type named in the URL", [])
        value = next((v for k, v in rec.items() if k.lower() == f["name"].lower()), None)
        fields = {k: v for k, v in rec.items() if k.lower() != f["name"].lower()}
        if f["name"] == "Id" and value in (None, ""):
            return _create(ctx, obj.name, fields), {"created": True}
        result = ctx.sb.records.upsert(
            obj.name, f["name"], value, fields, ctx.caller, lock_fault=ctx.lock_fault()
        )
        if isinstance(result, list):
            ids = ", ".join(u.rsplit("/", 1)[-1] for u in result)
            raise dml(
                "DUPLICATE_EXTERNAL_ID",
                f"{f['label']}: more than one record found for external id field: [{ids}]",
                [f["name"]],
            )
        rid, created = result
        return rid, {"created": created}

    return _run_collection(ctx, records, all_or_none, op)


def collection_delete(ctx: Ctx, params: dict[str, str]) -> Reply:
    ids_ = [i for i in params.get("ids", "").split(",") if i]
    if len(ids_) > MAX_COLLECTION:
        raise _limit("record limit reached. cannot submit more than 200 records into this call")
    all_or_none = params.get("allOrNone", "false").lower() == "true"
    from sandbox_org import ids as idmod

    def op(rid: str) -> tuple[str, dict]:
        full = idmod.normalize(rid)
        sobject = ctx.sb.schema.by_prefix.get(full[:3]) if full else None
        if full is None or sobject is None:
            raise dml("MALFORMED_ID", f"malformed id {rid}", [])
        try:
            return ctx.sb.records.delete(sobject, full, ctx.caller, lock_fault=ctx.lock_fault()), {}
        except SfError as err:
            if err.code == "NOT_FOUND":
                err = dml("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            raise err from None

    return _run_collection(ctx, ids_, all_or_none, op)


def collection_retrieve(ctx: Ctx, sobject: str, id_list: list[str], fields: str | None) -> Reply:
    obj = ctx.sb.records.object_for(sobject, ctx.caller)
    names = [f.strip() for f in (fields or "").split(",") if f.strip()]
    if not names:
        raise SfError(400, "MALFORMED_QUERY", "The fields parameter is required")
    out: list[Any] = []
    for rid in [i for i in id_list if i]:
        try:
            out.append(ctx.sb.records.retrieve(obj.name, rid, ctx.caller, names))
        except SfError as err:
            if err.code == "INVALID_FIELD":
                raise
            out.append(None)
    return Reply(200, out)


# -- /composite -------------------------------------------------------------------------------


def _lookup(results: dict[str, Any], expr: str) -> tuple[bool, Any]:
    """Resolve ``ref.path[0].field`` against earlier subresponse bodies."""
    tokens = re.findall(r"[^.\[\]]+|\[\d+\]", expr)
    if not tokens or tokens[0] not in results:
        return False, None
    value = results[tokens[0]]
    for tok in tokens[1:]:
        if tok.startswith("["):
            idx = int(tok[1:-1])
            if not isinstance(value, list) or idx >= len(value):
                return False, None
            value = value[idx]
        else:
            if not isinstance(value, dict) or tok not in value:
                return False, None
            value = value[tok]
    return True, value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REF_RE.fullmatch(value)
        if whole:
            ok, got = _lookup(results, whole.group(1))
            if not ok:
                raise _BadReference(whole.group(1))
            return got

        def repl(m: re.Match) -> str:
            ok, got = _lookup(results, m.group(1))
            if not ok:
                raise _BadReference(m.group(1))
            return "" if got is None else str(got)

        return _REF_RE.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    return value


class _BadReference(Exception):
    def __init__(self, expr: str) -> None:
        super().__init__(expr)
        self.expr = expr

    def error(self) -> dict[str, str]:
        ref = self.expr.split(".")[0].split("[")[0]
        return {
            "errorCode": "PROCESSING_HALTED",
            "message": f"Invalid reference specified. No value for {self.expr} found in {ref}. "
            "Provided referenceId ('"
            + self.expr
            + "') must start with a letter or a number, and it can contain only letters, "
            "numbers and underscores ('_').",
        }


def _halted(ref: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED_MESSAGE}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def _is_heavy(url: str) -> bool:
    path = urlsplit(url).path
    return bool(re.search(r"/(query|queryAll)(/|$)|/composite/sobjects", path))


def _run_subrequests(ctx: Ctx, subs: list[Any], all_or_none: bool) -> list[dict[str, Any]]:
    """Execute composite subrequests in order; with all_or_none, one failure undoes all."""
    results: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    failed_at: int | None = None

    def run_one(sub: dict[str, Any]) -> dict[str, Any]:
        ref = sub["referenceId"]
        try:
            url = _substitute(sub["url"], results)
            body = _substitute(sub["body"], results) if "body" in sub else NO_BODY
        except _BadReference as bad:
            return {
                "body": [bad.error()],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": ref,
            }
        m = _VERSION_URL.match(url)
        if not m:
            err = SfError(404, "NOT_FOUND", "The requested resource does not exist")
            return {
                "body": [err.rest()],
                "httpHeaders": {},
                "httpStatusCode": 404,
                "referenceId": ref,
            }
        version, path, query = m.groups()
        caller = type(ctx.caller)(ctx.caller.user_id, ctx.caller.perms, version)
        sub_ctx = Ctx(ctx.sb, caller, version, ctx.headers)
        if sub.get("httpHeaders"):
            extra = {k.lower(): v for k, v in sub["httpHeaders"].items()}
            sub_ctx.headers = {**ctx.headers, **extra}
        params = dict(parse_qsl(query or "", keep_blank_values=True))
        reply = dispatch(sub_ctx, sub["method"], path or "/", params, body)
        headers = {k: v for k, v in reply.headers.items() if k != "Content-Length"}
        if reply.status == 201 and isinstance(reply.body, dict) and reply.body.get("id"):
            headers.setdefault("Location", headers.get("Location", ""))
        out = {
            "body": reply.json_body(),
            "httpHeaders": headers,
            "httpStatusCode": reply.status,
            "referenceId": ref,
        }
        if reply.status < 400:
            results[ref] = out["body"]
        return out

    if not all_or_none:
        return [run_one(s) for s in subs]
    try:
        with ctx.sb.store.transaction():
            for i, sub in enumerate(subs):
                resp = run_one(sub)
                responses.append(resp)
                if _failed(resp):
                    failed_at = i
                    raise _Rollback
    except _Rollback:
        assert failed_at is not None
        return [
            responses[i] if i == failed_at else _halted(s["referenceId"])
            for i, s in enumerate(subs)
        ]
    return responses


def _failed(resp: dict[str, Any]) -> bool:
    """A failed subrequest; with an outer allOrNone, any failed record of a collection
    subrequest fails it too (the outer allOrNone overrides the inner one, wire-shapes §6c)."""
    if resp["httpStatusCode"] >= 400:
        return True
    body = resp["body"]
    return isinstance(body, list) and any(
        isinstance(item, dict) and item.get("success") is False for item in body
    )


def _check_subrequests(subs: Any, limit: int, *, heavy_limit: int | None) -> None:
    if not isinstance(subs, list) or not subs:
        raise SfError(400, "INVALID_API_INPUT", "compositeRequest must be a non-empty list")
    if len(subs) > limit:
        raise SfError(
            400,
            "INVALID_API_INPUT",
            f"Composite request can contain at most {limit} subrequests",
        )
    seen = set()
    for sub in subs:
        if not isinstance(sub, dict) or not all(k in sub for k in ("method", "url", "referenceId")):
            raise SfError(
                400, "INVALID_API_INPUT", "Each subrequest needs method, url and referenceId"
            )
        ref = str(sub["referenceId"])
        if not _REF_ID_RE.match(ref):
            raise SfError(
                400,
                "INVALID_API_INPUT",
                f"Provided referenceId ('{ref}') must start with a letter or a number, and it "
                "can contain only letters, numbers and underscores ('_').",
            )
        if ref in seen:
            raise SfError(400, "INVALID_API_INPUT", f"Duplicate referenceId provided: {ref}")
        seen.add(ref)
        if sub["method"] not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            raise SfError(400, "INVALID_API_INPUT", f"Invalid method: {sub['method']}")
        for h in sub.get("httpHeaders") or {}:
            if h.lower() in ("accept", "authorization", "content-type"):
                raise SfError(
                    400, "INVALID_API_INPUT", f"The {h} header isn't allowed in subrequests"
                )
    if heavy_limit is not None and sum(_is_heavy(s["url"]) for s in subs) > heavy_limit:
        raise SfError(
            400,
            "INVALID_API_INPUT",
            "A composite request can contain at most 5 sObject Collections or query subrequests",
        )


def composite(ctx: Ctx, body: Any) -> Reply:
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    subs = body.get("compositeRequest")
    _check_subrequests(subs, MAX_SUBREQUESTS, heavy_limit=MAX_HEAVY_SUBREQUESTS)
    out = _run_subrequests(ctx, subs, bool(body.get("allOrNone", False)))
    return Reply(200, {"compositeResponse": out})


# -- /composite/graph -------------------------------------------------------------------------


def graph(ctx: Ctx, body: Any) -> Reply:
    graphs = body.get("graphs") if isinstance(body, dict) else None
    if not isinstance(graphs, list) or not graphs:
        raise SfError(400, "INVALID_API_INPUT", "graphs must be a non-empty list")
    if len(graphs) > MAX_GRAPHS:
        raise SfError(400, "INVALID_API_INPUT", f"At most {MAX_GRAPHS} graphs per request")
    nodes = sum(len(g.get("compositeRequest") or []) for g in graphs if isinstance(g, dict))
    if nodes > MAX_GRAPH_NODES:
        raise SfError(
            400,
            "INVALID_API_INPUT",
            f"A graph request can contain at most {MAX_GRAPH_NODES} nodes",
        )
    ids = [g.get("graphId") for g in graphs if isinstance(g, dict)]
    if len(set(ids)) != len(ids) or not all(
        isinstance(i, str) and _REF_ID_RE.match(i) and len(i) < 40 for i in ids
    ):
        raise SfError(400, "INVALID_API_INPUT", "Each graphId must be unique and alphanumeric")
    out = []
    for g in graphs:
        subs = g.get("compositeRequest")
        _check_subrequests(subs, MAX_GRAPH_NODES, heavy_limit=None)
        responses = _run_subrequests(ctx, subs, True)
        ok = all(r["httpStatusCode"] < 400 for r in responses)
        out.append(
            {
                "graphId": g["graphId"],
                "graphResponse": {"compositeResponse": responses},
                "isSuccessful": ok,
            }
        )
    return Reply(200, {"graphs": out})


# -- /composite/batch -------------------------------------------------------------------------


def batch_size_of(body: Any) -> int:
    """How many API calls a batch request counts for (each subrequest is one)."""
    if isinstance(body, dict) and isinstance(body.get("batchRequests"), list):
        return max(1, len(body["batchRequests"]))
    return 1


def batch(ctx: Ctx, body: Any) -> Reply:
    subs = body.get("batchRequests") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        raise SfError(400, "INVALID_API_INPUT", "batchRequests must be a non-empty list")
    if len(subs) > MAX_BATCH:
        raise SfError(400, "INVALID_API_INPUT", f"At most {MAX_BATCH} batch subrequests")
    halt = bool(body.get("haltOnError", False))
    results = []
    halted = False
    for sub in subs:
        if halted:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {
                            "errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request",
                        }
                    ],
                }
            )
            continue
        url = str(sub.get("url", ""))
        m = re.match(r"^/?(?:services/data/)?v(\d+\.\d)(/[^?]*)?(?:\?(.*))?$", url)
        if not m:
            reply = Reply.error(SfError(404, "NOT_FOUND", "The requested resource does not exist"))
        else:
            version, path, query = m.groups()
            caller = type(ctx.caller)(ctx.caller.user_id, ctx.caller.perms, version)
            sub_ctx = Ctx(ctx.sb, caller, version, ctx.headers)
            params = dict(parse_qsl(query or "", keep_blank_values=True))
            body_ = sub.get("richInput", NO_BODY)
            reply = dispatch(sub_ctx, str(sub.get("method", "GET")), path or "/", params, body_)
        results.append({"statusCode": reply.status, "result": reply.json_body()})
        if reply.status >= 400 and halt:
            halted = True
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return Reply(200, {"hasErrors": has_errors, "results": results})
