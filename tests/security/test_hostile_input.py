"""Findings of the adversarial review that produced a 500 or a silent misreading, through the
real HTTP stack (gunicorn). Each test failed before its fix."""

from __future__ import annotations

import json
import socket

import pytest
import requests

PROBLEM = "application/problem+json"


def _is_problem(response) -> bool:
    return response.headers.get("Content-Type", "").startswith(PROBLEM)


@pytest.mark.parametrize("path", ["/v1/applications", "/v1/applications/batch", "/v1/form-token"])
def test_deep_unbalanced_json_is_a_400_not_a_500(security_stack, path):
    body = b"[" * 5000  # never closed: the depth pre-check used to let it through
    r = security_stack.post(
        path,
        data=body,
        headers=security_stack.auth(security_stack.sk, **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 400, r.text[:300]
    assert _is_problem(r)


def test_deep_unbalanced_object_is_a_400(security_stack):
    body = b'{"a":' * 5000
    r = security_stack.post(
        "/v1/applications",
        data=body,
        headers=security_stack.auth(security_stack.sk, **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 400
    assert _is_problem(r)


@pytest.mark.parametrize("origin", ["http://a:x", "http://[::1", "https://a:99999", "ht!tp://a"])
def test_hostile_origin_is_refused_not_500(security_stack, origin):
    r = security_stack.get(
        "/v1/jobs", headers=security_stack.auth(security_stack.pk, Origin=origin)
    )
    assert r.status_code == 403, r.text[:300]
    assert _is_problem(r)
    p = requests.options(
        security_stack.url + "/v1/jobs",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert p.status_code < 500
    assert "Access-Control-Allow-Origin" not in p.headers


def _raw(stack, request: bytes) -> bytes:
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def test_invalid_chunk_size_is_a_4xx(security_stack):
    request = (
        b"POST /v1/applications HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {security_stack.sk}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    )
    answer = _raw(security_stack, request)
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]


@pytest.mark.parametrize("query", ["limit=1&limit=100", "sort=title&sort=-title", "q=a&q=b"])
def test_repeated_scalar_parameter_is_422(security_stack, query):
    r = security_stack.get("/v1/jobs?" + query, headers=security_stack.auth(security_stack.pk))
    assert r.status_code == 422, r.text[:300]
    assert _is_problem(r)
    name = query.split("=", 1)[0]
    assert name in json.dumps(r.json())


def test_non_ascii_digits_are_not_numbers(security_stack):
    r = security_stack.get(
        "/v1/jobs?limit=\u0665", headers=security_stack.auth(security_stack.pk)
    )  # ARABIC-INDIC DIGIT FIVE: int() accepts it, a query string must not
    assert r.status_code == 422, r.text[:300]


def test_double_slash_with_foreign_host_never_redirects_off_site(security_stack):
    r = requests.get(
        security_stack.url + "//v1//jobs",
        headers={"Host": "evil.example.com", **security_stack.auth(security_stack.pk)},
        allow_redirects=False,
        timeout=10,
    )
    location = r.headers.get("Location", "")
    assert "evil.example.com" not in location


def test_the_servers_own_refusals_are_problem_json(security_stack):
    request = b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nOr\x01gin: a\r\nConnection: close\r\n\r\n"
    answer = _raw(security_stack, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", answer[:300]
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 400
