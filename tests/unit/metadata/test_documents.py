"""JSON Schema and OpenAPI agree with the marshmallow schemas they are generated from.

Examples are generated from the published JSON Schema (not from our code): a valid one per
resource, and one invalid variant per property and rule; the JSON Schema validator and the
marshmallow schema must agree on each.
"""

from __future__ import annotations

import copy

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from ats_gateway.metadata import Operation, Response
from ats_gateway.metadata.examples import invalid_variants, valid_example

INPUTS = ["application", "interview_feedback", "topic_feedback"]


@pytest.mark.parametrize("resource", INPUTS)
def test_json_schema_and_marshmallow_agree(metadata, resource):
    document = metadata.json_schema(resource)
    jsonschema.Draft202012Validator.check_schema(document)
    validator = jsonschema.Draft202012Validator(
        document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    valid = valid_example(document, document)
    validator.validate(valid)
    assert metadata.errors(resource, copy.deepcopy(valid)) == []
    checked = 0
    for what, payload in invalid_variants(document, document, valid):
        assert list(validator.iter_errors(payload)), f"JSON Schema accepts {what}"
        assert metadata.errors(resource, payload), f"marshmallow accepts {what}"
        checked += 1
    assert checked >= 8


def test_json_schema_shape(metadata):
    document = metadata.json_schema("application")
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == "http://gateway.test/v1/schemas/application"
    assert document["additionalProperties"] is False
    assert set(document["required"]) == {"job_id", "first_name", "last_name", "email"}
    props = document["properties"]
    assert props["first_name"]["maxLength"] == 40
    assert props["email"]["format"] == "email"
    assert props["linkedin_url"]["format"] == "uri"
    assert props["consent"]["type"] == "boolean"
    assert document["x-resume"]["max_bytes"] == 5 * 1024 * 1024
    feedback = metadata.json_schema("interview_feedback")
    assert feedback["properties"]["topics"]["items"] == {"$ref": "#/$defs/TopicFeedbackInput"}
    assert "TopicFeedbackInput" in feedback["$defs"]


def test_openapi_validates_and_uses_the_live_schemas(metadata):
    metadata.add_operations(
        [
            Operation(
                "POST",
                "/v1/applications",
                "Apply",
                request="application",
                multipart=True,
                responses={202: Response("Accepted", schema={"type": "object"})},
                errors=(400, 422, 503),
            ),
            Operation(
                "GET",
                "/v1/jobs",
                "List jobs",
                query="job_filters",
                responses={
                    200: Response(
                        "Jobs",
                        schema={
                            "type": "object",
                            "properties": {
                                "data": {"type": "array", "items": {"$resource": "job"}}
                            },
                        },
                    )
                },
                errors=(422,),
            ),
            Operation(
                "GET",
                "/v1/jobs/{job_id}",
                "One job",
                path_params={"job_id": "15/18-char id"},
                responses={200: Response("The job", resource="job")},
                errors=(404,),
            ),
        ]
    )
    document = metadata.openapi()
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    post = document["paths"]["/v1/applications"]["post"]
    body = post["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/ApplicationInput"}
    assert "resume" in str(body["multipart/form-data"]["schema"])
    assert post["responses"]["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    params = {p["name"]: p for p in document["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 100
    assert "Engineering" in params["department"]["schema"]["items"]["enum"]
    jobs = document["paths"]["/v1/jobs"]["get"]["responses"]["200"]["content"]
    assert jobs["application/json"]["schema"]["properties"]["data"]["items"] == {
        "$ref": "#/components/schemas/JobOutput"
    }
    components = document["components"]["schemas"]
    assert {
        "ApplicationInput",
        "InterviewFeedbackInput",
        "TopicFeedbackInput",
        "JobOutput",
        "Problem",
    } <= set(components)
