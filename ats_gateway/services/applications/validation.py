"""Validation of an application: the metadata layer's describe-built schema, adapted.

:class:`ApplicationSchema` is the small interface intake and delivery need: public input in,
Salesforce field values (API names) or ``[{field, code, message}]`` out, and the org's
per-record errors turned into public field errors. :class:`LiveSchema` implements it over the
:class:`~ats_gateway.metadata.service.Metadata` service (the live describe cache: a picklist
value an admin adds is accepted after the next describe refresh, without a deploy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from marshmallow import ValidationError, fields

from ats_gateway.metadata.errors import error_list
from ats_gateway.metadata.service import Metadata, org_errors

FieldErrors = list[dict[str, str]]
RESOURCE = "application"


class ApplicationSchema(Protocol):
    def validate(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], FieldErrors]:
        """(values by Salesforce API name, errors by public field name)."""
        ...

    def boolean_fields(self) -> set[str]:
        """Public names of boolean fields (form posts send them as text)."""
        ...

    def org_errors(self, errors: Iterable[Any]) -> FieldErrors:
        """Errors the org reported for an application record, with public field names."""
        ...


class LiveSchema:
    """The ``application`` schema of the current describe, from the Metadata service."""

    def __init__(self, metadata: Metadata, resource: str = RESOURCE) -> None:
        self.metadata = metadata
        self.resource = resource

    def validate(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], FieldErrors]:
        schema_cls = self.metadata.schema_class(self.resource)
        try:
            loaded = schema_cls().load(data)
        except ValidationError as exc:
            errors = error_list(schema_cls, exc.messages, resource=self.resource)
            if any(e.get("code") == "not_allowed" for e in errors):
                # a picklist value an admin may have added since our describe: ask beat for a
                # describe revalidation (tasks/metadata.py), as Metadata.validate does
                self.metadata.cache.request_revalidation()
            return {}, errors
        cleaned = {
            k: v.strip() if isinstance(v, str) else v
            for k, v in loaded.items()
            if v is not None and v != ""
        }
        return self.metadata.to_salesforce(self.resource, cleaned), []

    def boolean_fields(self) -> set[str]:
        declared = self.metadata.schema_class(self.resource)._declared_fields
        return {name for name, f in declared.items() if isinstance(f, fields.Boolean)}

    def org_errors(self, errors: Iterable[Any]) -> FieldErrors:
        return org_errors(self.metadata, self.resource, errors)
