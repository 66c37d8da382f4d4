"""Marshmallow errors -> the gateway's `[{field, code, message}]`, with public field names.

Nested paths are rendered `topics[0].rating`; list items `skills[2]`. The code of each message
comes from the field that produced it (see :mod:`ats_gateway.metadata.factory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields

from ats_gateway.metadata.factory import codes_of

BODY = "(body)"


class InvalidInput(Exception):
    """Input failed validation; `errors` is `[{field, code, message}]` (public names).

    The HTTP edge renders it as 422 problem+json (`ValidationFailed`)."""

    def __init__(self, errors: list[dict[str, str]], detail: str = "") -> None:
        super().__init__(detail or f"{len(errors)} field(s) failed validation")
        self.errors = errors
        self.detail = detail


def error_list(
    schema: Schema | type[Schema], messages: Mapping[str, Any], *, resource: str = ""
) -> list[dict[str, str]]:
    """Flatten a marshmallow `ValidationError.messages` of `schema` into gateway errors."""
    instance = schema() if isinstance(schema, type) else schema
    out: list[dict[str, str]] = []
    _walk_schema(instance, messages, "", resource or type(instance).__name__, out)
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _walk_schema(
    schema: Schema, messages: Any, prefix: str, resource: str, out: list[dict[str, str]]
) -> None:
    if not isinstance(messages, Mapping):
        _leaf(None, messages, prefix or BODY, out)
        return
    for key, value in messages.items():
        if key == "_schema":
            for text in _texts(value):
                code = "invalid_type" if text == "Invalid input type." else "invalid"
                message = (
                    f"{prefix or 'the body'} must be a JSON object"
                    if code == "invalid_type"
                    else text
                )
                out.append({"field": prefix or BODY, "code": code, "message": message})
            continue
        field = schema.fields.get(key)
        path = _join(prefix, str(key))
        if field is None:
            allowed = ", ".join(n for n, f in schema.fields.items() if not f.dump_only)
            out.append(
                {
                    "field": path,
                    "code": "unknown_field",
                    "message": f"{path} is not a field of {resource}; allowed: {allowed}",
                }
            )
            continue
        _walk_field(field, value, path, resource, out)


def _walk_field(
    field: fields.Field, value: Any, path: str, resource: str, out: list[dict[str, str]]
) -> None:
    if isinstance(value, Mapping):
        if isinstance(field, fields.Nested):
            nested = field.schema
            _walk_schema(nested, value, path, resource, out)
            return
        if isinstance(field, fields.List):
            for index, item in value.items():
                if isinstance(index, int):
                    _walk_field(field.inner, item, f"{path}[{index}]", resource, out)
                else:
                    _leaf(field, item, path, out)
            return
    _leaf(field, value, path, out)


def _leaf(field: fields.Field | None, value: Any, path: str, out: list[dict[str, str]]) -> None:
    codes = codes_of(field) if field is not None else {}
    for text in _texts(value):
        code = codes.get(text, "invalid")
        message = text if text in codes else f"{path}: {text}"
        out.append({"field": path, "code": code, "message": message})


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        result: list[str] = []
        for item in value:
            result.extend(_texts(item))
        return result
    if isinstance(value, Mapping):
        result = []
        for item in value.values():
            result.extend(_texts(item))
        return result
    return [str(value)]
