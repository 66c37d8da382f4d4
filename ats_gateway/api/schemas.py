"""Published schemas: `GET /v1/schemas/{resource}` (JSON Schema 2020-12), `GET /v1/openapi.json`
(OpenAPI 3.1) and `GET /docs` (the same document as plain HTML, nothing loaded from elsewhere).

All three come from the live describe-built schemas of `services().metadata`, so a
picklist value added in the org shows up here after the next describe refresh. (The metadata
layer's exceptions are rendered by the one table of `ats_gateway.api.PROBLEMS`.)
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from ats_gateway.errors import NotFound
from ats_gateway.extensions import services
from ats_gateway.metadata import Metadata, Operation
from ats_gateway.metadata.openapi import Response as Resp

bp = Blueprint("schemas", __name__)

JSON_SCHEMA_MEDIA = "application/schema+json"

HEALTH = {"type": "object", "properties": {"status": {"type": "string"}}}
READY = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "checks": {"type": "object"}},
}

#: The endpoints that exist today (meta + schemas); other blueprints add theirs the same way.
OPERATIONS = [
    Operation(
        "GET",
        "/healthz",
        "Liveness",
        tag="operations",
        responses={200: Resp("The process is serving.", schema=HEALTH)},
    ),
    Operation(
        "GET",
        "/readyz",
        "Readiness of each dependency",
        tag="operations",
        description="Each check by name (redis, describe: source org|snapshot and age, ...).",
        responses={
            200: Resp("Ready.", schema=READY),
            503: Resp("A dependency is failing.", schema=READY),
        },
    ),
    Operation(
        "GET",
        "/metrics",
        "Prometheus metrics",
        tag="operations",
        responses={
            200: Resp(
                "Metrics in the Prometheus text format.",
                schema={"type": "string"},
                media_type="text/plain",
            )
        },
    ),
    Operation(
        "GET",
        "/v1/schemas/{resource}",
        "JSON Schema of an input resource",
        tag="schemas",
        description="JSON Schema 2020-12 built from the org's describe: required fields, "
        "lengths, restricted picklist values. Career sites render and pre-validate forms "
        "with it.",
        path_params={"resource": "application, interview_feedback, topic_feedback, ..."},
        responses={
            200: Resp(
                "A JSON Schema document.", schema={"type": "object"}, media_type=JSON_SCHEMA_MEDIA
            )
        },
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/openapi.json",
        "This OpenAPI document",
        tag="schemas",
        responses={200: Resp("OpenAPI 3.1.", schema={"type": "object"})},
    ),
    Operation(
        "GET",
        "/docs",
        "API documentation (HTML)",
        tag="schemas",
        responses={
            200: Resp(
                "The OpenAPI document as a readable page.",
                schema={"type": "string"},
                media_type="text/html",
            )
        },
    ),
]


def get_metadata(app: Flask | None = None) -> Metadata:
    return services(app).metadata


@bp.after_request
def _readable_from_any_origin(response: Response) -> Response:
    """The schemas and the OpenAPI document are public metadata (no candidate data, no key
    needed): any career site may fetch them cross-origin to render and pre-validate forms."""
    if request.path.startswith(("/v1/schemas/", "/v1/openapi.json")):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/v1/schemas/<resource>")
def json_schema(resource: str):
    metadata = get_metadata()
    if resource not in metadata.contracts or metadata.contracts[resource].kind == "output":
        published = ", ".join(n for n, c in metadata.contracts.items() if c.kind != "output")
        raise NotFound(f"No schema {resource!r}; published: {published}.")
    body = json.dumps(metadata.json_schema(resource))
    response = Response(body, mimetype=JSON_SCHEMA_MEDIA)
    response.headers["Cache-Control"] = "public, max-age=60"
    response.set_etag(metadata.json_schema(resource)["x-describe-version"])
    return response.make_conditional(request)


_HIDDEN_PREFIXES = ("/problems/", "/__sandbox__", "/static")
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def document_routes(app: Flask) -> list[Operation]:
    """Every public route without a documented operation gets a minimal one (so the document
    covers every endpoint); blueprints replace it by registering their own `Operation`."""
    metadata = get_metadata(app)
    added = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(_HIDDEN_PREFIXES):
            continue
        path = _RULE_ARG.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (method, path) in metadata.operations:
                continue
            added.append(
                Operation(
                    method,
                    path,
                    f"{rule.endpoint} (not documented yet)",
                    tag=rule.endpoint.split(".")[0],
                    path_params={arg: arg for arg in rule.arguments},
                    responses={200: Resp("See the endpoint's module.")},
                )
            )
    if added:
        metadata.add_operations(added)
    return added


@bp.get("/v1/openapi.json")
def openapi():
    document_routes(current_app)
    document = get_metadata().openapi()
    response = Response(json.dumps(document), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/docs")
def docs():
    document_routes(current_app)
    page = render_docs(get_metadata().openapi())
    return Response(page, mimetype="text/html")


# --------------------------------------------------------------------------- /docs rendering

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem;margin:1.5rem 0 .3rem}code,pre{font:13px ui-monospace,monospace}
.m{display:inline-block;min-width:3.5rem;font-weight:bold}
table{border-collapse:collapse;margin:.3rem 0 1rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;
text-align:left;vertical-align:top}th{background:#f5f5f5}.req{color:#a00}nav a{margin-right:1rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    if "anyOf" in prop:
        return " | ".join(_type_of(p) for p in prop["anyOf"])
    if "allOf" in prop:
        return " &amp; ".join(_type_of(p) for p in prop["allOf"])
    kind = prop.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " | ".join(_e(k) for k in kinds)
    if isinstance(prop.get("properties"), dict) and prop["properties"]:
        text += " {" + ", ".join(f"<code>{_e(n)}</code>" for n in prop["properties"]) + "}"
    if "array" in kinds and isinstance(prop.get("items"), dict):
        text += f" of {_type_of(prop['items'])}"
    if prop.get("format"):
        text += f" ({_e(prop['format'])})"
    return text


def _rules(prop: dict[str, Any]) -> str:
    parts = []
    if "enum" in prop:
        parts.append("one of: " + ", ".join(_e(v) for v in prop["enum"] if v is not None))
    items = prop.get("items")
    if isinstance(items, dict) and "enum" in items:
        parts.append("each one of: " + ", ".join(_e(v) for v in items["enum"]))
    for key, label in (
        ("maxLength", "at most {} characters"),
        ("minimum", "at least {}"),
        ("maximum", "at most {}"),
        ("exclusiveMaximum", "below {}"),
        ("pattern", "matches <code>{}</code>"),
        ("default", "default {}"),
    ):
        if key in prop:
            value = _e(json.dumps(prop[key]) if key == "default" else prop[key])
            parts.append(label.format(value))
    if prop.get("description"):
        parts.append(_e(prop["description"]))
    return "; ".join(parts)


def _schema_table(schema: dict[str, Any]) -> str:
    props = schema.get("properties") or {}
    if not props:
        return f"<p>{_type_of(schema)}</p>"
    required = set(schema.get("required") or ())
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code>"
        f"{' <span class=req>required</span>' if name in required else ''}</td>"
        f"<td>{_type_of(prop)}</td><td>{_rules(prop)}</td></tr>"
        for name, prop in props.items()
    )
    extra = (
        "" if schema.get("additionalProperties", True) else ("<p>Other fields are rejected.</p>")
    )
    return f"<table><tr><th>field</th><th>type</th><th>rules</th></tr>{rows}</table>{extra}"


def render_docs(spec: dict[str, Any]) -> str:
    """The OpenAPI document as one self-contained HTML page (no scripts, no CDN)."""
    info = spec.get("info", {})
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>{_e(info.get('title', 'API'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(info.get('title', 'API'))} <small>{_e(info.get('version', ''))}</small></h1>",
        f"<p>{_e(info.get('description', ''))}</p>",
        "<nav><a href='#endpoints'>Endpoints</a><a href='#schemas'>Schemas</a>"
        "<a href='/v1/openapi.json'>openapi.json</a></nav>",
        "<h2 id=endpoints>Endpoints</h2>",
    ]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            out.append(
                f"<h3 id='{_e(op.get('operationId', ''))}'><span class=m>{_e(method.upper())}"
                f"</span> <code>{_e(path)}</code> {_e(op.get('summary', ''))}</h3>"
            )
            if op.get("description"):
                out.append(f"<p>{_e(op['description'])}</p>")
            params = op.get("parameters") or []
            if params:
                rows = "".join(
                    f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
                    f"<td>{_type_of(p.get('schema', {}))}</td>"
                    f"<td>{_rules({**p.get('schema', {}), **({'description': p['description']} if p.get('description') else {})})}</td></tr>"  # noqa: E501
                    for p in params
                )
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type</th><th>rules</th></tr>"
                    f"{rows}</table>"
                )
            body = (op.get("requestBody") or {}).get("content") or {}
            for media, content in body.items():
                out.append(f"<p>Body <code>{_e(media)}</code>: {_type_of(content['schema'])}</p>")
            rows = "".join(
                f"<tr><td>{_e(status)}</td><td>{_e(resp.get('description', ''))}</td><td>"
                + ", ".join(
                    f"<code>{_e(m)}</code> {_type_of(c.get('schema', {}))}"
                    for m, c in (resp.get("content") or {}).items()
                )
                + "</td></tr>"
                for status, resp in op.get("responses", {}).items()
            )
            out.append(
                f"<table><tr><th>status</th><th>meaning</th><th>body</th></tr>{rows}</table>"
            )
    out.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in (spec.get("components") or {}).get("schemas", {}).items():
        out.append(f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3>")
        if schema.get("description"):
            out.append(f"<p>{_e(schema['description'])}</p>")
        out.append(_schema_table(schema))
    out.append("</body></html>")
    return "\n".join(out)


# --------------------------------------------------------------------------- wiring


def init_app(app: Flask) -> None:
    """Register the blueprint and document its endpoints."""
    metadata = get_metadata(app)
    metadata.add_operations(OPERATIONS)
    app.register_blueprint(bp)
