"""The JSON depth scan that runs before any parser sees a body."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ats_gateway.security.request_limits import UnbalancedJson, json_too_deep


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    "depth,limit,expected",
    [(1, 1, False), (2, 1, True), (32, 32, False), (33, 32, True), (100_000, 32, True)],
)
def test_depth_limit(depth, limit, expected):
    assert json_too_deep(nested(depth), limit) is expected


def test_brackets_inside_strings_do_not_count():
    body = json.dumps({"a": "[[[[[[[[{{{{{{", "b": ['\\"]]]]', {"c": "\\\\"}]}).encode()
    assert json_too_deep(body, 3) is False
    assert json_too_deep(body, 2) is True


@pytest.mark.parametrize("body", [b'{"a": [1, 2', b"[" * 5000, b'{"a":' * 5000, b"[}"])
def test_unbalanced_input_is_refused_before_the_parser_recurses(body):
    # [15]: `[[[[...` 5,000 deep used to reach json.loads and die in RecursionError (a 500)
    with pytest.raises(UnbalancedJson):
        json_too_deep(body, 64)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"ab', max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


@given(json_values, st.integers(min_value=1, max_value=6))
def test_agrees_with_the_parsed_depth(value, limit):
    body = json.dumps(value).encode()
    assert json_too_deep(body, limit) is (depth_of(value) > limit)
