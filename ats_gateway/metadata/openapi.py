"""JSON Schema (2020-12) and OpenAPI 3.1 from the live, describe-built marshmallow schemas.

Both go through apispec's marshmallow converter, so the published documents say exactly what the
schemas accept (types, `maxLength`, `enum`, `format`, `pattern`, `required`,
`additionalProperties: false`).

Documenting an endpoint: describe it with an :class:`Operation` and hand it to
`Metadata.add_operations(...)` when your blueprint is registered, for example::

    OPERATIONS = [
        Operation(
            "POST", "/v1/applications", "Apply to a job", tag="applications",
            request="application", multipart=True,
            responses={202: Response("Accepted; poll `status_url`", schema=ACCEPTED)},
            errors=(400, 409, 413, 415, 422, 429, 503),
        ),
    ]
    bp.record_once(lambda s: services(s.app).metadata.add_operations(OPERATIONS))

`request` / `query` / `Response.resource` name resources of `schemas/resources/`; their schemas
are taken from the current describe each time the document is built (memoized per version).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

OPENAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PROBLEM_JSON = "application/problem+json"

ERROR_TITLES = {
    400: "Malformed request",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks a scope, or the origin is not allowed",
    404: "Not found",
    409: "Conflict (duplicate)",
    410: "Gone (expired link, or a cursor from a discarded snapshot)",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed; `errors` names each public field and what is allowed",
    429: "Too many requests; see `Retry-After`",
    503: "Unavailable (org unreachable, permission missing, API budget reserve)",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation errors (422), one per field and problem.",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string", "examples": ["first_name", "topics[0].rating"]},
                    "code": {
                        "type": "string",
                        "examples": ["required", "too_long", "not_allowed", "invalid_email"],
                    },
                    "message": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Response:
    """One documented response. `resource`: an output/input resource's schema (`many` wraps it
    in an array); `schema`: a literal JSON Schema (may contain `{"$resource": "job"}` refs)."""

    description: str
    resource: str | None = None
    many: bool = False
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str = "gateway"
    description: str = ""
    request: str | None = None  # input resource of the JSON body
    multipart: bool = False  # the body may also be multipart/form-data (with the resume)
    query: str | None = None  # query resource (listing parameters)
    path_params: Mapping[str, str] = field(default_factory=dict)
    responses: Mapping[int, Response] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    security: bool = False  # requires `Authorization: Bearer <key>`
    extra: Mapping[str, Any] = field(default_factory=dict)  # merged into the operation


def _resolver(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def _new_spec(title: str, version: str, public_url: str = "") -> APISpec:
    spec = APISpec(
        title=title,
        version=version,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=_resolver)],
        info={"description": "ATS gateway API. Validation rules come from the org's describe."},
        **({"servers": [{"url": public_url}]} if public_url else {}),
    )
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer", "description": "An API key."}
    )
    return spec


def _register(spec: APISpec, schemas: Iterable[type[Schema]]) -> None:
    registered = spec.components.schemas
    for cls in schemas:
        name = _resolver(cls)
        if name not in registered:
            spec.components.schema(name, schema=cls)


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace(old, new, 1)
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v, old, new)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, old, new) for v in node]
    return node


def json_schema(
    schema: type[Schema],
    nested: Iterable[type[Schema]] = (),
    *,
    schema_id: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A standalone JSON Schema 2020-12 document for one input schema (nested ones in `$defs`)."""
    spec = _new_spec("json-schema", "1")
    _register(spec, [*nested, schema])
    components = spec.to_dict()["components"]["schemas"]
    name = _resolver(schema)
    document: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
    if schema_id:
        document["$id"] = schema_id
    document["title"] = name
    document.update(copy.deepcopy(components[name]))
    defs = {k: v for k, v in components.items() if k not in (name, "Problem")}
    if defs:
        document["$defs"] = defs
    document = _rewrite_refs(document, "#/components/schemas/", "#/$defs/")
    if extra:
        document.update(extra)
    return document


def _resolve_literal(node: Any, ref_for: Callable[[str], dict[str, Any]]) -> Any:
    if isinstance(node, Mapping):
        if set(node) == {"$resource"}:
            return ref_for(node["$resource"])
        return {k: _resolve_literal(v, ref_for) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_literal(v, ref_for) for v in node]
    return node


def build_openapi(
    operations: Iterable[Operation],
    schema_for: Callable[[str], type[Schema]],
    nested_for: Callable[[str], list[type[Schema]]],
    *,
    title: str = "ATS gateway",
    version: str = "1",
    public_url: str = "",
    body_extras: Callable[[str], dict[str, Any]] | None = None,
    components: Iterable[str] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`, with schemas from `schema_for(resource)`;
    `components` are resources published as schemas even when no operation uses them yet."""
    spec = _new_spec(title, version, public_url)

    def ref_for(resource: str) -> dict[str, Any]:
        cls = schema_for(resource)
        _register(spec, [*nested_for(resource), cls])
        return {"$ref": f"#/components/schemas/{_resolver(cls)}"}

    for resource in components:
        ref_for(resource)

    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(operations, key=lambda o: (o.path, o.method)):
        operation: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _operation_id(op),
        }
        if op.description:
            operation["description"] = op.description
        parameters: list[dict[str, Any]] = [
            {
                "in": "path",
                "name": name,
                "required": True,
                "description": desc,
                "schema": {"type": "string"},
            }
            for name, desc in op.path_params.items()
        ]
        if op.query:
            parameters.append({"in": "query", "schema": schema_for(op.query)})
        if parameters:
            operation["parameters"] = parameters
        if op.request:
            content: dict[str, Any] = {"application/json": {"schema": ref_for(op.request)}}
            if op.multipart:
                extras = body_extras(op.request) if body_extras else {}
                content["multipart/form-data"] = {
                    "schema": {"allOf": [ref_for(op.request), extras]}
                    if extras
                    else ref_for(op.request)
                }
            operation["requestBody"] = {"required": True, "content": content}
        responses: dict[str, Any] = {}
        for status, resp in sorted(op.responses.items()):
            rendered: dict[str, Any] = {"description": resp.description}
            body: Any = None
            if resp.resource:
                body = ref_for(resp.resource)
                if resp.many:
                    body = {"type": "array", "items": body}
            elif resp.schema is not None:
                body = _resolve_literal(copy.deepcopy(dict(resp.schema)), ref_for)
            if body is not None:
                rendered["content"] = {resp.media_type: {"schema": body}}
            if resp.headers:
                rendered["headers"] = {
                    name: {"description": desc, "schema": {"type": "string"}}
                    for name, desc in resp.headers.items()
                }
            responses[str(status)] = rendered
        for status in op.errors:
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_TITLES.get(status, "Error"),
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                },
            )
        operation["responses"] = responses or {"200": {"description": "OK"}}
        if op.security:
            operation["security"] = [{"apiKey": []}]
        operation.update(op.extra)
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    document = spec.to_dict()
    document["jsonSchemaDialect"] = JSON_SCHEMA_DIALECT
    return document


def _operation_id(op: Operation) -> str:
    words = [p for p in op.path.replace("{", "").replace("}", "").split("/") if p]
    return op.method.lower() + "_" + "_".join(w.replace("-", "_").replace(".", "_") for w in words)
