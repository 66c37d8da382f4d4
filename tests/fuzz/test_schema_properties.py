"""Hypothesis properties of the schema factory: what the gateway validates against the schema it
publishes (`GET /v1/schemas/application`, the JSON Schema a career site pre-validates with).

* the gateway rejects every field the published JSON Schema rejects (never laxer), and rejects
  more only for `format` checks a JSON Schema validator may skip (email, uri);
* validation is total: any JSON value is answered with errors, never an exception;
* errors name public fields only, never a Salesforce API name.

Built offline from the repository's describe snapshots and contracts (no org, no Redis). The
SOQL builder's properties are in tests/unit/salesforce/test_sf_soql.py.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ats_gateway.config import PROJECT_ROOT
from ats_gateway.metadata.cache import DescribeCache
from ats_gateway.metadata.contracts import load_connections, load_contracts, load_permission_sets
from ats_gateway.metadata.service import Metadata

SCHEMAS = PROJECT_ROOT / "ats_gateway" / "schemas"
RESOURCE = "application"
PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def metadata() -> Metadata:
    cache = DescribeCache(None, SCHEMAS, {})
    md = Metadata(
        load_contracts(SCHEMAS),
        cache,
        connections=load_connections(SCHEMAS),
        permission_sets=load_permission_sets(SCHEMAS),
        public_url="http://gateway.test",
    )
    md.check()
    return md


@pytest.fixture(scope="module")
def published(metadata) -> dict:
    return metadata.json_schema(RESOURCE)


def _value_strategy(spec: dict) -> st.SearchStrategy:
    """Values for one property: mostly near what the schema allows, sometimes far from it."""
    types = spec.get("type", "string")
    types = types if isinstance(types, list) else [types]
    options = []
    if "string" in types:
        limit = spec.get("maxLength", 300)
        if "pattern" in spec:
            options.append(
                st.from_regex(spec["pattern"], fullmatch=True).filter(lambda s: len(s) <= limit)
            )
        if spec.get("format") == "email":
            options.append(st.emails().filter(lambda s: len(s) <= limit))
        for example in spec.get("examples", []) + spec.get("enum", []):
            options.append(st.just(example))
        options.append(st.text(string.printable, min_size=1, max_size=limit))
        options.append(st.text(min_size=limit, max_size=limit + 20))  # around the limit
    if "boolean" in types:
        options.append(st.booleans())
    options.append(json_values)  # anything at all
    return st.one_of(options)


@st.composite
def payloads(draw, published: dict) -> dict:
    props = published["properties"]
    chosen = draw(st.sets(st.sampled_from(sorted(props))))
    payload = {name: draw(_value_strategy(props[name])) for name in sorted(chosen)}
    if draw(st.integers(0, 9)) == 0:
        payload[draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12))] = 1
    return payload


def _rejected_by_json_schema(published: dict, payload: dict) -> set[str]:
    """Top-level fields the published JSON Schema rejects (format not asserted, as is usual)."""
    fields: set[str] = set()
    for error in Draft202012Validator(published).iter_errors(payload):
        if error.path:
            fields.add(str(error.path[0]))
        elif error.validator == "required":
            fields.add(error.message.split("'")[1])
        elif error.validator == "additionalProperties":
            fields.update(k for k in payload if k not in published["properties"])
    return fields


@PROPERTIES
@given(data=st.data())
def test_gateway_rejects_whatever_the_published_schema_rejects(metadata, published, data):
    payload = data.draw(payloads(published))
    schema_rejects = _rejected_by_json_schema(published, payload)
    gateway = {e["field"].split(".")[0].split("[")[0] for e in metadata.errors(RESOURCE, payload)}
    assert schema_rejects <= gateway, (payload, schema_rejects, gateway)
    # Stricter only where the schema names a `format` (email, uri), which validators may skip.
    with_format = {name for name, spec in published["properties"].items() if "format" in spec}
    assert gateway - schema_rejects <= with_format, (payload, schema_rejects, gateway)


@PROPERTIES
@given(payload=json_values)
def test_validation_is_total_and_speaks_public_names(metadata, payload):
    errors = metadata.errors(RESOURCE, payload)
    assert isinstance(errors, list)
    if not isinstance(payload, dict):
        assert errors, "a non-object body must be refused"
    for error in errors:
        assert set(error) >= {"field", "code", "message"}
        assert error["code"] and error["message"]
        text = f"{error['field']} {error['message']}"
        assert "__c" not in text and "bpats__" not in text, error
