"""Describe field + contract entry -> marshmallow field; contract + describe -> schema.

Every message a generated field can produce is written here, in plain words with the public
field name and what is allowed ("first_name must be at most 40 characters"), and registered on
the field with its code (`required`, `too_long`, `not_allowed`, ...), so
:func:`ats_gateway.metadata.errors.error_list` can turn marshmallow's errors into the gateway's
`[{field, code, message}]` without guessing.

Type mapping (describe `type` -> field, validators):

    string textarea combobox encryptedstring   String, Length(max=length)
    email                                       Email, Length(max=length)
    phone                                       String, Regexp(phone), Length(max=length)
    url                                         URL (http/https), Length(max=length)
    picklist (restricted)                       String, OneOf(active values)
    picklist (not restricted)                   String, Length(max=length) (values as examples)
    multipicklist                               List of String, each OneOf when restricted
    boolean                                     Boolean (only true/false in JSON bodies)
    date / datetime / time                      Date / DateTime (ISO 8601) / String(HH:MM:SS)
    double currency percent                     Float, digits check (precision, scale)
    int long                                    Integer (strict), digits check
    reference id                                String, Regexp(15- or 18-character id)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ats_gateway.metadata.contracts import Contract, ContractField, Param
from ats_gateway.metadata.describe import ContractError, FieldDescribe, ObjectDescribe
from ats_gateway.metadata.text import OrgEmail, PlainText, plain_text_pattern

#: 15- or 18-character Salesforce record id.
ID_PATTERN = r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$"
#: A phone number as people type it: digits, spaces, ( ) . - and an optional leading +.
PHONE_PATTERN = r"^\+?[0-9(][0-9 ().\-]{4,}[0-9]$"
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+[^\s]*$"
NOT_BLANK_PATTERN = r"^\s*\S"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,3})?)?Z?$"

STRING_TYPES = {"string", "textarea", "combobox", "encryptedstring", "base64", "anyType"}
NUMBER_TYPES = {"double", "currency", "percent"}
INT_TYPES = {"int", "long"}

_CODES_ATTR = "_ats_codes"


def _esc(text: str) -> str:
    """Marshmallow `.format()`s messages; keep braces in values (picklists) literal."""
    return text.replace("{", "{{").replace("}", "}}")


def codes_of(field: fields.Field) -> dict[str, str]:
    """message -> code for every message this field can produce."""
    return getattr(field, _CODES_ATTR, {})


class _Messages:
    """Collects a field's error messages and their codes while the field is being built."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.codes: dict[str, str] = {}
        self.field_messages: dict[str, str] = {}

    def say(self, code: str, text: str) -> str:
        message = f"{self.name} {text}"
        self.codes[message] = code
        return message

    def on(self, key: str, code: str, text: str) -> None:
        """A message of the field itself (`required`, `null`, `invalid`...)."""
        self.field_messages[key] = _esc(self.say(code, text))

    def validator(self, code: str, text: str) -> str:
        return _esc(self.say(code, text))

    def attach(self, field: fields.Field) -> fields.Field:
        setattr(field, _CODES_ATTR, self.codes)
        return field


class Digits(validate.Validator):
    """Salesforce number precision/scale: at most `precision - scale` digits before the point
    and `scale` after it."""

    def __init__(self, precision: int, scale: int, too_many: str, too_precise: str) -> None:
        self.precision, self.scale = precision, scale
        self.too_many, self.too_precise = too_many, too_precise

    def __call__(self, value: Any) -> Any:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return value
        _, digits, exponent = number.normalize().as_tuple()
        if not isinstance(exponent, int):
            return value
        decimals = max(0, -exponent)
        integer_digits = max(0, len(digits) + exponent) if number else 0
        if self.precision and integer_digits > self.precision - self.scale:
            raise ValidationError(self.too_many.replace("{{", "{").replace("}}", "}"))
        if decimals > self.scale:
            raise ValidationError(self.too_precise.replace("{{", "{").replace("}}", "}"))
        return value


class DelimitedList(fields.List):
    """A list given as `a,b,c` (query strings) or as a JSON list."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return super()._deserialize(value, attr, data, **kwargs)


class ResourceSchema(Schema):
    """Base of every generated schema: unknown fields are errors."""

    class Meta:
        unknown = RAISE
        ordered = True

    #: set on each generated class: the contract it was built from
    contract: Contract | None = None


def _number_bounds(fd: FieldDescribe) -> tuple[int, int]:
    if fd.type in INT_TYPES:
        return (fd.digits or fd.precision or 18), 0
    return fd.precision, fd.scale


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def build_field(
    fd: FieldDescribe,
    cf: ContractField,
    *,
    mode: str = "input",
    required: bool | None = None,
) -> fields.Field:
    """One marshmallow field for a describe field as exposed under `cf.name`.

    `mode`: "input" (JSON bodies: strict types, required per describe + contract), "query"
    (query strings: lenient parsing of booleans and numbers, never required) or "output"
    (documentation of what is returned: no validators, nullable).
    """
    msg = _Messages(cf.name)
    if required is None:
        required = mode == "input" and (cf.required or fd.required_on_create)
    allow_none = mode == "output" or (not required and fd.nillable)
    validators: list[Callable[[Any], Any]] = []
    metadata: dict[str, Any] = {"title": fd.label}
    if cf.description:
        metadata["description"] = cf.description
    msg.on("required", "required", "is required")
    msg.on("null", "null", "may not be null")
    kind = fd.type
    inner_values: list[str] | None = None

    def max_length() -> None:
        if fd.length and mode != "output":
            validators.append(
                validate.Length(
                    max=fd.length,
                    error=msg.validator("too_long", f"must be at most {fd.length} characters"),
                )
            )

    if kind in ("picklist", "multipicklist"):
        values = fd.active_values
        restricted = fd.restricted_picklist
        listed = ", ".join(values)
        if kind == "multipicklist":
            inner_values = values if restricted else None
        elif restricted and mode != "output":
            validators.append(
                validate.OneOf(
                    values, error=msg.validator("not_allowed", f"must be one of: {listed}")
                )
            )
        elif restricted:
            metadata["enum"] = [*values, None]
        else:
            metadata["examples"] = values
            max_length()
    if kind == "multipicklist":
        item_validators = []
        if inner_values is not None and mode != "output":
            item_validators.append(
                validate.OneOf(
                    inner_values,
                    error=msg.validator(
                        "not_allowed", f"values must each be one of: {', '.join(inner_values)}"
                    ),
                )
            )
        inner = fields.String(validate=item_validators)
        msg.on("invalid", "invalid_type", "must be a list of strings")
        inner_msgs = {"invalid": _esc(msg.say("invalid_type", "values must be strings"))}
        inner.error_messages = {**inner.error_messages, **inner_msgs}
        if inner_values is not None and mode == "output":
            inner.metadata["enum"] = inner_values
        cls: type[fields.Field] = DelimitedList if mode == "query" else fields.List
        field = cls(
            inner,
            required=required,
            allow_none=allow_none,
            metadata=metadata,
            error_messages=msg.field_messages,
        )
        setattr(inner, _CODES_ATTR, msg.codes)
        return msg.attach(field)
    # An open picklist takes free text (the `source` a career site sends, [21]): same rule.
    if mode == "input" and (
        kind in (*STRING_TYPES, "email", "phone", "url")
        or (kind == "picklist" and not fd.restricted_picklist)
    ):
        validators.append(
            PlainText(
                msg.validator(
                    "invalid_characters",
                    "must not contain control or invisible formatting characters",
                ),
                multiline=kind == "textarea",
            )
        )
    if kind == "picklist" or kind in STRING_TYPES:
        msg.on("invalid", "invalid_type", "must be a string")
        if kind != "picklist":
            max_length()
        if required and not (kind == "picklist" and fd.restricted_picklist):
            # Salesforce stores "" as null: a blank required field is a missing one.
            validators.insert(
                0,
                validate.Regexp(
                    NOT_BLANK_PATTERN, error=msg.validator("required", "is required (not blank)")
                ),
            )
        if mode == "input" and (
            kind in STRING_TYPES or (kind == "picklist" and not fd.restricted_picklist)
        ):
            # Published for clients: the characters refused (see metadata/text.py), combined
            # with "not blank" when that applies (a JSON Schema property has one pattern).
            metadata["pattern"] = plain_text_pattern(
                multiline=kind == "textarea", not_blank=bool(required and kind != "picklist")
            )
        field = fields.String(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind == "email":
        msg.on("invalid", "invalid_email", "must be an email address such as name@example.com")
        max_length()
        metadata["format"] = "email"
        if mode == "input":
            validators.append(
                OrgEmail(
                    msg.validator(
                        "invalid_email", "must be an email address such as name@example.com"
                    )
                )
            )
        field = fields.Email(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind == "phone":
        msg.on("invalid", "invalid_type", "must be a string")
        validators.append(
            validate.Regexp(
                PHONE_PATTERN,
                error=msg.validator(
                    "invalid_phone",
                    "must be a phone number: digits, spaces, ( ) . - and an optional leading +",
                ),
            )
        )
        max_length()
        field = fields.String(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind == "url":
        msg.on("invalid", "invalid_url", "must be an absolute http:// or https:// URL")
        max_length()
        metadata["format"] = "uri"
        metadata["pattern"] = URL_PATTERN  # JSON Schema's "uri" allows any scheme; we do not
        field = fields.URL(
            validate=validators,
            metadata=metadata,
            error_messages=msg.field_messages,
            schemes={"http", "https"},
        )
    elif kind == "boolean":
        msg.on("invalid", "invalid_type", "must be true or false")
        cls_ = _StrictBoolean if mode == "input" else fields.Boolean
        field = cls_(validate=validators, metadata=metadata, error_messages=msg.field_messages)
    elif kind == "date":
        for key in ("invalid", "format"):
            msg.on(key, "invalid_date", "must be a date in the form YYYY-MM-DD")
        field = fields.Date(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind == "datetime":
        for key in ("invalid", "invalid_awareness", "format"):
            msg.on(key, "invalid_datetime", "must be a date and time in ISO 8601 with a time zone")
        field = fields.AwareDateTime(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind == "time":
        msg.on("invalid", "invalid_type", "must be a string")
        validators.append(
            validate.Regexp(
                TIME_PATTERN, error=msg.validator("invalid_time", "must be a time as HH:MM:SS")
            )
        )
        field = fields.String(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    elif kind in NUMBER_TYPES or kind in INT_TYPES:
        precision, scale = _number_bounds(fd)
        integral = kind in INT_TYPES or (precision and scale == 0)
        if integral:
            msg.on("invalid", "invalid_number", "must be a whole number")
        else:
            msg.on("invalid", "invalid_number", "must be a number")
        if precision and mode != "output":
            before = precision - scale
            validators.append(
                Digits(
                    precision,
                    scale,
                    msg.validator(
                        "too_many_digits",
                        f"must have at most {_plural(before, 'digit')} before the decimal point",
                    ),
                    msg.validator(
                        "too_many_decimals",
                        "must not have decimals"
                        if scale == 0
                        else f"must have at most {_plural(scale, 'decimal place')}",
                    ),
                )
            )
            bound = 10**before
            metadata["exclusiveMaximum"] = bound
            metadata["exclusiveMinimum"] = -bound
        if kind == "percent":
            metadata.setdefault("description", "A percentage (50 means 50%).")
        strict = mode == "input"
        if kind in INT_TYPES:
            field = _StrictInteger(
                validate=validators,
                metadata=metadata,
                error_messages=msg.field_messages,
                strict=strict,
            )
        else:
            field = _StrictFloat(
                validate=validators,
                metadata=metadata,
                error_messages=msg.field_messages,
                strict=strict,
            )
        if precision:
            metadata["x-precision"], metadata["x-scale"] = precision, scale
        msg.on("too_large", "invalid_number", "is too large")
        msg.on("special", "invalid_number", "must be a finite number")
    elif kind in ("reference", "id"):
        msg.on("invalid", "invalid_type", "must be a string")
        if mode != "output":
            validators.append(
                validate.Regexp(
                    ID_PATTERN,
                    error=msg.validator(
                        "invalid_id", "must be a Salesforce record id (15 or 18 letters and digits)"
                    ),
                )
            )
        field = fields.String(
            validate=validators, metadata=metadata, error_messages=msg.field_messages
        )
    else:  # address, location, and anything newer: passed through, documented as-is
        field = fields.Raw(metadata=metadata)
    field.required = required
    field.allow_none = allow_none
    field.error_messages = {**field.error_messages, **msg.field_messages}
    return msg.attach(field)


class _StrictBoolean(fields.Boolean):
    """Only JSON true and false (marshmallow would take 1, "yes", "on"), like JSON Schema."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class _StrictInteger(fields.Integer):
    """Refuses booleans too (JSON Schema's integer does not include true/false)."""

    def _validated(self, value: Any) -> Any:
        if self.strict and isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _StrictFloat(fields.Float):
    """A float that, when strict, refuses strings ("12.5") in JSON bodies, like JSON Schema."""

    def __init__(self, *args: Any, strict: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strict = strict

    def _validated(self, value: Any) -> Any:
        if self.strict and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self.make_error("invalid", input=value)
        result = super()._validated(value)
        if result is not None and not math.isfinite(result):
            raise self.make_error("invalid", input=value)
        return result


def schema_name(resource: str, suffix: str) -> str:
    """`interview_feedback` + `Input` -> `InterviewFeedbackInput` (stable component names)."""
    return "".join(part.capitalize() for part in resource.split("_")) + suffix


def build_schema(
    contract: Contract,
    describe: ObjectDescribe,
    *,
    mode: str | None = None,
    nested: Mapping[str, type[Schema]] | None = None,
) -> type[ResourceSchema]:
    """The schema class of a contract (input or output) from its object's describe."""
    mode = mode or ("output" if contract.kind == "output" else "input")
    built: dict[str, fields.Field] = {}
    for cf in contract.exposed():
        fd = describe.field(cf.api_name)
        if fd is None:
            raise ContractError(
                f"contract {contract.name!r} field {cf.name!r} names {cf.api_name}, which the "
                f"describe of {describe.name} does not have"
            )
        field = build_field(fd, cf, mode=mode)
        built[cf.name] = field
    for spec in contract.nested.values():
        schema_cls = (nested or {}).get(spec.resource)
        if schema_cls is None:
            raise ContractError(f"nested {spec.name!r} of {contract.name!r} has no schema")
        msg = _Messages(spec.name)
        msg.on("required", "required", "is required")
        msg.on("null", "null", "may not be null")
        msg.on(
            "invalid",
            "invalid_type",
            "must be a list of objects" if spec.many else "must be an object",
        )
        metadata = {"description": spec.description} if spec.description else {}
        if spec.many:
            inner = fields.Nested(schema_cls)
            inner.error_messages = {
                **inner.error_messages,
                "type": _esc(msg.say("invalid_type", "items must be objects")),
            }
            setattr(inner, _CODES_ATTR, msg.codes)
            field = fields.List(
                inner, required=spec.required, metadata=metadata, error_messages=msg.field_messages
            )
        else:
            field = fields.Nested(
                schema_cls,
                required=spec.required,
                metadata=metadata,
                error_messages={**msg.field_messages, "type": msg.field_messages["invalid"]},
            )
        built[spec.name] = msg.attach(field)
    suffix = "Output" if mode == "output" else "Input"
    cls = ResourceSchema.from_dict(built, name=schema_name(contract.name, suffix))
    cls.contract = contract
    return cls  # type: ignore[return-value]


# --------------------------------------------------------------------------- query schemas


def _sort_validator(allowed: Iterable[str], name: str) -> tuple[Callable[[Any], Any], dict]:
    allowed = list(allowed)
    msg = _Messages(name)
    choices = ", ".join(allowed)
    text = msg.say(
        "not_allowed", f"must be a comma-separated list of: {choices} (prefix - for descending)"
    )

    def check(value: list[str]) -> None:
        for token in value:
            if token.lstrip("-") not in allowed or token.startswith("--"):
                raise ValidationError(text)
        names = [t.lstrip("-") for t in value]
        if len(set(names)) != len(names):
            raise ValidationError(text)

    return check, msg.codes


def build_query_schema(
    contract: Contract, base: Contract, describe: ObjectDescribe
) -> type[ResourceSchema]:
    """The query-parameter schema of a listing (`job_filters` over `job`)."""
    built: dict[str, fields.Field] = {}
    for flt in contract.filters.values():
        cf = base.fields[flt.field]
        fd = describe.field(cf.api_name)
        if fd is None:
            raise ContractError(
                f"filter {flt.name!r} of {contract.name!r} names {cf.api_name}, which the "
                f"describe of {describe.name} does not have"
            )
        public = ContractField(name=flt.name, api_name=cf.api_name, description=cf.description)
        if flt.op == "in" and fd.type != "multipicklist":
            inner = build_field(fd, public, mode="query", required=False)
            inner.allow_none = False
            msg = _Messages(flt.name)
            msg.on("invalid", "invalid_type", "must be a comma-separated list")
            desc = "One value, or several separated by commas (any of them matches)."
            field = DelimitedList(
                inner, metadata={"description": desc}, error_messages=msg.field_messages
            )
            field.required = False
            codes = {**codes_of(inner), **msg.codes}
            setattr(field, _CODES_ATTR, codes)
        else:
            field = build_field(fd, public, mode="query", required=False)
            field.allow_none = False
            bound = "at least" if flt.op == "gte" else "at most"
            field.metadata["description"] = f"Only jobs whose {cf.name} is {bound} this."
        built[flt.name] = field
    for param in contract.params.values():
        built[param.name] = _param_field(param, base)
    cls = ResourceSchema.from_dict(built, name=schema_name(contract.name, ""))
    cls.contract = contract
    return cls  # type: ignore[return-value]


def _param_field(param: Param, base: Contract) -> fields.Field:
    msg = _Messages(param.name)
    msg.on("invalid", "invalid_type", "must be a string")
    msg.on("null", "null", "may not be empty")
    meta = {"description": param.description} if param.description else {}
    validators: list[Callable[[Any], Any]] = []
    if param.type == "string":
        if param.max_length:
            validators.append(
                validate.Length(
                    max=param.max_length,
                    error=msg.validator(
                        "too_long", f"must be at most {param.max_length} characters"
                    ),
                )
            )
        field: fields.Field = fields.String(validate=validators, metadata=meta)
    elif param.type == "integer":
        msg.on("invalid", "invalid_number", "must be a whole number")
        lo, hi = param.min, param.max
        validators.append(
            validate.Range(
                min=lo,
                max=hi,
                error=msg.validator("out_of_range", f"must be between {lo} and {hi}"),
            )
        )
        field = fields.Integer(validate=validators, metadata=meta, load_default=param.default)
    elif param.type == "sort":
        allowed = base.public_names("sortable")
        check, codes = _sort_validator(allowed, param.name)
        msg.codes.update(codes)
        inner = fields.String()
        meta.setdefault("description", "Sort fields; prefix - for descending.")
        meta["x-allowed"] = allowed
        default = [t.strip() for t in str(param.default or "").split(",") if t.strip()] or None
        field = DelimitedList(inner, validate=[check], metadata=meta, load_default=default)
    else:  # fields
        allowed = base.public_names()
        inner = fields.String(
            validate=validate.OneOf(
                allowed,
                error=msg.validator(
                    "not_allowed", f"values must each be one of: {', '.join(allowed)}"
                ),
            )
        )
        setattr(inner, _CODES_ATTR, msg.codes)
        field = DelimitedList(inner, metadata=meta)
    field.error_messages = {**field.error_messages, **msg.field_messages}
    return msg.attach(field)
