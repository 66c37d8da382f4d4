"""`GET /v1/schemas/{resource}`, `GET /v1/openapi.json`, `GET /docs`, the "describe" readiness
check, and how the metadata layer's errors are rendered (422 / 503 problem+json)."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate as validate_openapi

from ats_gateway import create_app
from ats_gateway.extensions import services
from ats_gateway.metadata import PermissionMissing
from ats_gateway.metadata.preflight import MISSING, Finding


def test_json_schema_of_each_input_resource(client):
    for resource in ("application", "interview_feedback", "topic_feedback", "job_filters"):
        response = client.get(f"/v1/schemas/{resource}")
        assert response.status_code == 200, resource
        assert response.mimetype == "application/schema+json"
        assert response.json["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    document = client.get("/v1/schemas/application").json
    assert document["properties"]["first_name"]["maxLength"] == 40
    assert document["additionalProperties"] is False


def test_json_schema_is_cacheable(client):
    first = client.get("/v1/schemas/application")
    assert first.headers["ETag"]
    again = client.get("/v1/schemas/application", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_unknown_or_output_resource_is_404_problem(client):
    for resource in ("nope", "job"):
        response = client.get(f"/v1/schemas/{resource}")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert "application" in response.json["detail"]


def test_openapi_validates_and_covers_every_public_route(app, client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate_openapi(document)
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith(("/problems/", "/__sandbox__")):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, (method, path)
    schemas = document["components"]["schemas"]
    assert "ApplicationInput" in schemas and "Problem" in schemas


def test_docs_page_is_self_contained(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "/v1/schemas/{resource}" in page and "ApplicationInput" in page
    assert "first_name" in page and "at most 40 characters" in page
    # nothing fetched from elsewhere: no scripts, no external stylesheets or images
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_readiness_shows_describe_source_and_age(client):
    response = client.get("/readyz")
    describe = response.json["checks"]["describe"]
    assert describe["status"] == "ok"
    assert describe["source"] == "snapshot"  # no org configured in the test settings
    entry = describe["objects"]["job_portal/bpats__Job_Board_Application__c"]
    assert entry["source"] == "snapshot" and entry["age_seconds"] >= 0


@pytest.fixture
def probe_app(base_settings):
    """A gateway with two extra routes that raise the metadata layer's exceptions."""
    application = create_app(base_settings)
    metadata = services(application).metadata

    @application.post("/probe/validate")
    def validate():
        from flask import request

        return metadata.validate("application", request.get_json())

    @application.get("/probe/permission")
    def permission():
        finding = Finding(
            "job_portal",
            "Contact",
            "create",
            MISSING,
            ("ATS Gateway Candidate Intake",),
            ("POST /v1/applications",),
        )
        raise PermissionMissing(finding.sentence, [finding])

    return application


def test_invalid_input_is_422_problem_with_public_names(probe_app):
    response = probe_app.test_client().post("/probe/validate", json={"first_name": "x" * 41})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = {e["field"]: e for e in response.json["errors"]}
    assert errors["first_name"]["code"] == "too_long"
    assert errors["first_name"]["message"] == "first_name must be at most 40 characters"
    assert errors["last_name"]["code"] == "required"


def test_permission_missing_is_503_problem_with_the_reason(probe_app):
    response = probe_app.test_client().get("/probe/permission")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "missing create on Contact" in response.json["detail"]
    assert "ATS Gateway Candidate Intake" in response.json["detail"]
    assert response.json["missing"][0]["object"] == "Contact"
