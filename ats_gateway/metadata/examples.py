"""Examples generated from a published JSON Schema (not from the marshmallow schema): one
valid payload, and invalid variants each breaking one rule. Used by the tests that check the
published documents agree with what the endpoints accept, and handy for docs and demos."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

ID_EXAMPLE = "a0M5g00000AbCdEAAZ"


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        return document.get("$defs", {})[ref.rsplit("/", 1)[-1]]
    return node


def _types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type", [])
    return kind if isinstance(kind, list) else [kind]


def example_value(document: dict[str, Any], prop: dict[str, Any]) -> Any:
    """A value the property's schema allows."""
    prop = _resolve(document, prop)
    if "enum" in prop:
        return next(v for v in prop["enum"] if v is not None)
    kinds = [t for t in _types(prop) if t != "null"]
    kind = kinds[0] if kinds else "string"
    if kind == "object":
        return valid_example(document, prop)
    if kind == "array":
        return [example_value(document, prop["items"])]
    if kind == "boolean":
        return True
    if kind in ("number", "integer"):
        return 7
    fmt = prop.get("format")
    if fmt == "email":
        return "ann@example.com"
    if fmt == "uri":
        return "https://example.com/ann"
    if fmt == "date":
        return "2026-11-22"
    if fmt == "date-time":
        return "2026-11-22T10:00:00Z"
    limit = prop.get("maxLength", 100)
    pattern = prop.get("pattern")
    for candidate in VALID_STRINGS:
        if len(candidate) <= limit and (not pattern or re.search(pattern, candidate)):
            return candidate
    return "A"[:limit]


#: strings tried, in order, for a property with a `pattern` (JSON Schema: unanchored search)
VALID_STRINGS = ("Ann", "+1 415 555 0100", ID_EXAMPLE, "10:30:00", "A")
INVALID_STRINGS = ("!!", "   ", "", "x\ny")


def _breaking(pattern: str) -> str | None:
    return next((c for c in INVALID_STRINGS if not re.search(pattern, c)), None)


def valid_example(document: dict[str, Any], schema: dict[str, Any] | None = None) -> dict:
    """Every property of `schema` (default: the document itself) with an allowed value."""
    schema = document if schema is None else schema
    return {name: example_value(document, p) for name, p in schema.get("properties", {}).items()}


def invalid_variants(
    document: dict[str, Any],
    schema: dict[str, Any] | None = None,
    valid: dict[str, Any] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what is wrong, payload) pairs, each breaking exactly one rule of the JSON Schema."""
    schema = document if schema is None else schema
    valid = valid_example(document, schema) if valid is None else valid
    if schema.get("additionalProperties") is False:
        yield "extra property", {**valid, "not_a_field": "x"}
    for name in schema.get("required", []):
        yield f"{name} missing", {k: v for k, v in valid.items() if k != name}
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(document, raw)
        kinds = _types(prop)
        if "maxLength" in prop:
            yield f"{name} too long", {**valid, name: "x" * (prop["maxLength"] + 1)}
        if "enum" in prop:
            yield f"{name} not allowed", {**valid, name: "Not A Listed Value"}
        bad = _breaking(prop["pattern"]) if "pattern" in prop else None
        if bad is not None:
            yield f"{name} bad pattern", {**valid, name: bad}
        if prop.get("format") in ("email", "uri", "date", "date-time"):
            yield f"{name} bad format", {**valid, name: "no good"}
        if "boolean" in kinds:
            yield f"{name} wrong type", {**valid, name: "yes"}
        if "string" in kinds:
            yield f"{name} wrong type", {**valid, name: 12}
        if kinds and "null" not in kinds:
            yield f"{name} null", {**valid, name: None}
        if "array" in kinds:
            item = _resolve(document, prop.get("items", {}))
            if "object" in _types(item):
                good = valid_example(document, item)
                for what, bad in invalid_variants(document, item, good):
                    yield f"{name}[0] {what}", {**valid, name: [bad]}
