"""The depth bound on JSON from strangers: exact on valid JSON, cheap on hostile input, never a RecursionError."""

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devlink.domain.json_limits import MAX_DEPTH, JsonLimitError, json_depth, loads_bounded


def reference_depth(value: Any) -> int:
    """The nesting depth by walking the parsed value: a scalar is 0, a container one more than its deepest child."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


# Strings full of what a naive bracket counter would trip on: brackets, quotes, backslashes, escapes.
tricky_text = st.text(alphabet=st.sampled_from(list("[]{}\"\\,:/ aé\n\t\u2028")), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_depth_agrees_with_walking_the_parsed_value(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    expected = reference_depth(value)
    assert json_depth(body, limit=1000) == expected
    assert json_depth(body, limit=expected) == expected
    if expected:
        assert json_depth(body, limit=expected - 1) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}"\\,:1 u')), max_size=40))
def test_on_arbitrary_structure_characters_it_never_raises_and_is_exact_when_it_parses(text: str) -> None:
    body = text.encode()
    depth = json_depth(body, limit=1000)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    assert depth == reference_depth(value), text


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(["", " ", "\n  ", "\t"]))
def test_loads_bounded_is_json_loads_within_the_limit(value: Any, indent: str) -> None:
    body = json.dumps(value, indent=indent or None).encode()
    assert loads_bounded(body) == json.loads(body)


@pytest.mark.parametrize("depth", [1, 2, MAX_DEPTH - 1, MAX_DEPTH])
def test_at_the_limit_is_parsed(depth: int) -> None:
    body = ('{"a": ' * depth + "1" + "}" * depth).encode()
    assert json_depth(body) == depth
    assert reference_depth(loads_bounded(body)) == depth


@pytest.mark.parametrize("body", [
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b"[" * 2000 + b"]" * 2000,
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    b"[[]," * 100 + b"[]" + b"]" * 100,  # never a run of opening brackets, still 101 deep
    b"[" * 100_000,  # unbalanced as well as deep
], ids=["limit+1", "2000 arrays", "2000 objects", "no runs", "unbalanced"])
def test_too_deep_is_refused_without_recursion(body: bytes) -> None:
    assert json_depth(body) is None
    with pytest.raises(JsonLimitError) as caught:
        loads_bounded(body)
    assert caught.value.reason == "too_deep"
    assert f"deeper than {MAX_DEPTH}" in str(caught.value)


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"message": "[" * 10_000 + '"\\{' * 50, "list": [[["deep"]]]}).encode()
    assert json_depth(body) == 4
    assert loads_bounded(body)["list"] == [[["deep"]]]


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "bad_json"),
    (b"[1, 2", "bad_json"),
    (b"]]", "bad_json"),
    (b'{"a": "unterminated [[[}', "bad_json"),
    (b"\xff\xfe{}", "bad_json"),
    ('{"a": 1}'.encode("utf-16"), "bad_json"),  # valid JSON to json.loads(bytes), but not UTF-8
])
def test_not_json_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(JsonLimitError) as caught:
        loads_bounded(body)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("body", "expected"), [
    (b"[" + b"{}," * 8_000_000 + b"{}]", 2),
    (b"[" * 12_000_000 + b"]" * 12_000_000, None),
    (b"[" + b"[]," * 8_000_000 + b"[]]", 2),
    (b'["' + b"\\\\" * 12_000_000 + b'"]', 1),
    (b'["' + b'\\"' * 12_000_000 + b'"]', 1),
    (b"[" + b'"ab",' * 5_000_000 + b'""]', 1),
    (b"[" + b'"[",' * 6_000_000 + b'""]', 1),
], ids=["empty objects", "one chain", "empty arrays", "escaped backslashes", "escaped quotes", "strings",
        "strings of brackets"])
def test_a_25_mb_body_is_measured_in_a_few_c_speed_passes(body: bytes, expected: int | None) -> None:
    """The shapes that cost the most (measured here at well under a second each)."""
    assert 20_000_000 <= len(body) <= 25 * 1024 * 1024
    started = time.perf_counter()
    assert json_depth(body) == expected
    assert time.perf_counter() - started < 5
