"""The published documents agree with what the endpoints accept: examples generated from the
JSON Schema (and found in the OpenAPI document) are posted to the real endpoint; the valid
one is accepted, each invalid one is refused with 422 naming the broken field."""

from __future__ import annotations

import pytest
from stack import build_gateway, gateway_settings, secret_headers

from ats_gateway.metadata.examples import invalid_variants, valid_example


@pytest.fixture(scope="module")
def gateway(base_settings, redis_db, stack_redis):
    """The gateway with no org, on a Redis database of its own (`redis_db`): accepted
    applications must not reach other tests."""
    app = build_gateway(
        gateway_settings(
            base_settings,
            redis_url=redis_db,
            rate_limit_ip_submit="100000/minute",
            rate_limit_key_submit="100000/minute",
        )
    )
    # "Is the job open" is the applications flow's concern (tested there); without an org the
    # jobs snapshot cannot load, so this app answers "unknown" at once instead of waiting.
    app.extensions.pop("jobs", None)
    return app.test_client(), secret_headers(
        stack_redis, ["applications:write"], name="schema agreement"
    )


def test_generated_examples_agree_with_post_applications(gateway):
    http, headers = gateway
    document = http.get("/v1/schemas/application").json
    openapi = http.get("/v1/openapi.json").json
    assert document["properties"].keys() == (
        openapi["components"]["schemas"]["ApplicationInput"]["properties"].keys()
    )

    valid = valid_example(document)
    response = http.post("/v1/applications", json=valid, headers=headers)
    assert response.status_code == 202, response.json

    refused = 0
    for what, payload in invalid_variants(document):
        response = http.post("/v1/applications", json=payload, headers=headers)
        assert response.status_code == 422, (what, response.status_code, response.json)
        assert response.mimetype == "application/problem+json"
        fields = {e["field"] for e in response.json["errors"]}
        broken = what.split()[0]
        assert broken in fields or (broken == "extra" and "not_a_field" in fields), (what, fields)
        refused += 1
    assert refused >= 10
