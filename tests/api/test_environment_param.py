"""CreateEaiJupyter EnvironmentVar: both SDKs' encodings parse alike; hostile values get InvalidParameter, nothing else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.api.environment_param import MAX_VARIABLES, environment
from controller.errors import InvalidParameter


def test_v3_compact_and_v2_spaced_json_parse_alike():
    pairs = [{"Key": "A", "Value": "1"}, {"Key": "B_2", "Value": "x y"}]
    compact = json.dumps(pairs, separators=(",", ":"))
    assert environment({"EnvironmentVar": compact}) == environment({"EnvironmentVar": json.dumps(pairs)})
    assert environment({"EnvironmentVar": compact}) == (("A", "1"), ("B_2", "x y"))


def test_absent_or_empty_means_no_variables():
    assert environment({}) == () and environment({"EnvironmentVar": ""}) == () and environment({"EnvironmentVar": "[]"}) == ()


@pytest.mark.parametrize("raw", [
    '[{"Key":"EAIS_TF_ENDPOINT","Value":"evil:1"}]', '[{"Key":"HOME","Value":"/"}]', '[{"Key":"JUPYTER_TOKEN","Value":""}]',
    '[{"Key":"1A","Value":""}]', '[{"Key":"A-B","Value":""}]', '[{"Key":"","Value":""}]', '[{"Key":"A","Value":1}]',
    '[{"Key":"A","Value":"x"},{"Key":"A","Value":"y"}]', '[{"Key":"A","Value":"a\\u0000b"}]', '{"Key":"A"}',
    '[{"Key":"A","Value":"1","Extra":2}]', "[" * 100_000, "not json",
    json.dumps([{"Key": f"K{n}", "Value": ""} for n in range(MAX_VARIABLES + 1)]),
    json.dumps([{"Key": "A", "Value": "x" * 5000}]),
])
def test_bad_environment_is_refused_with_invalid_parameter(raw):
    with pytest.raises(InvalidParameter) as refused:
        environment({"EnvironmentVar": raw})
    assert refused.value.detail == "EnvironmentVar"


@given(st.one_of(st.text(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["Key", "Value", "x"]), inner, max_size=3),
    max_leaves=12).map(json.dumps)))
def test_any_value_is_parsed_or_refused_with_invalid_parameter(raw):
    try:
        pairs = environment({"EnvironmentVar": raw})
    except InvalidParameter:
        return
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in pairs)
