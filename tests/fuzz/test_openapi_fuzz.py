"""Schemathesis against `GET /v1/openapi.json`, every operation: no 5xx, every error is
`application/problem+json` with the RFC 9457 members, and every response (status, content type,
headers, body) conforms to the published schema.

Examples per operation are kept small for CI (``ATS_GATEWAY_FUZZ_EXAMPLES``, default 12;
``make soak`` raises it).
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("ATS_GATEWAY_FUZZ_EXAMPLES", "12"))
PROBLEM_MEMBERS = {"type", "title", "status"}


def problem_json(ctx, response, case):
    """Every 4xx/5xx answer of the JSON API (/v1/...) is RFC 9457 problem+json whose `status`
    is the HTTP status. (Pages for people, /feedback/{token} and /docs, answer HTML.)"""
    if response.status_code < 400 or not case.path.startswith("/v1/"):
        return None
    media = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    media = media[0] if isinstance(media, list) else media
    assert media.split(";")[0].strip() == "application/problem+json", (
        f"{response.status_code} answered as {media!r}"
    )
    body = json.loads(response.content)
    missing = PROBLEM_MEMBERS - body.keys()
    assert not missing, f"problem+json without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_json,
]


# Gaps found by this suite and reported to their owners; each is exempt from the one check it
# fails, and test_known_gaps_are_still_open fails once a gap is closed (then drop it here).
KNOWN_UNDOCUMENTED_STATUS = {
    # an unknown, expired or spent link answers a 401 HTML page; the spec lists only 200
    "GET /feedback/{token}": 401,
    "POST /feedback/{token}": 401,
    # without a publishable key the form token is refused; the spec lists only 200
    "GET /v1/form-token": 401,
}


def _checks(operation) -> list:
    if operation.label in KNOWN_UNDOCUMENTED_STATUS:
        return [c for c in CHECKS if c is not status_code_conformance]
    return CHECKS


def _fuzz(operation, mode: GenerationMode, examples: int, headers: dict | None) -> None:
    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=_checks(operation))

    try:
        run()
    except Unsatisfiable:
        # Nothing to break: no parameter or body whose schema can be violated (negative mode).
        if mode is GenerationMode.POSITIVE:
            raise


def _summary(exc: BaseException) -> str:
    """The distinct check failures of a Schemathesis failure group, one line each."""
    found = getattr(exc, "exceptions", None) or [exc]
    lines = []
    for failure in found:
        title = getattr(failure, "title", type(failure).__name__)
        message = " ".join(str(getattr(failure, "message", failure)).split())[:300]
        lines.append(f"    - {title}: {message}")
    return "\n" + "\n".join(lines)


def _operations(api_schema) -> list:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, [o.label for o in operations]
    return operations


def _run_all(api_schema, headers: dict | None, examples: int) -> list[str]:
    failures = []
    for operation in _operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, examples, headers)
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then fail once
                failures.append(f"{operation.label} ({mode.value}): {_summary(exc)}")
    return failures


def test_every_operation_conforms(api_schema, fuzz_headers):
    """Valid and invalid input, with a key holding every scope."""
    failures = _run_all(api_schema, fuzz_headers, EXAMPLES)
    assert not failures, "\n\n".join(failures)


def test_every_operation_conforms_without_a_key(api_schema):
    """The same without credentials: public operations answer, the others 401 problem+json."""
    failures = _run_all(api_schema, None, max(2, EXAMPLES // 4))
    assert not failures, "\n\n".join(failures)


def test_known_gaps_are_still_open(api_schema):
    """Each known gap still exists; when an owner documents the status, this fails on purpose
    so the exemption above is removed and the full check applies again."""
    documented = {
        operation.label: set(operation.definition.raw.get("responses", {}))
        for operation in _operations(api_schema)
    }
    for label, status in KNOWN_UNDOCUMENTED_STATUS.items():
        assert label in documented, f"{label} is gone from the spec"
        assert str(status) not in documented[label], f"{label} now documents {status}: drop it"
