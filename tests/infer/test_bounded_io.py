"""The bounded JSON loader, the vectorised JSON array writer and the output path checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from restcn_infer.bounded_json import JsonInputError, loads_bounded, nesting_depth
from restcn_infer.json_arrays import json_array
from restcn_infer.output_paths import OutputPathError, check_output_dir, check_output_file

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=40)


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_bounded_loads_equals_json_loads_within_the_limits(value):
    text = json.dumps(value)
    assert nesting_depth(text.encode()) == depth_of(value)
    assert loads_bounded(text) == json.loads(text)
    assert loads_bounded(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text, match", [
    ("[" * 40 + "]" * 40, "nested 40 levels deep"),
    ('{"a": ' * 33 + "1" + "}" * 33, "nested 33 levels deep"),
    ("[" + "9" * 5000 + "]", "an integer of 5,000 digits"),
    ("[-" + "9" * 65 + "]", "an integer of 65 digits"),
    ("[1e999]", "out of range"),
    ("[NaN]", "NaN is not a JSON number"),
    ("[-Infinity]", "-Infinity is not a JSON number"),
    ("{not json", "line 1 column 2"),
    (b"[\xff]", "not UTF-8"),
])
def test_bounded_loads_refuses_with_the_limit_it_hit(text, match):
    with pytest.raises(JsonInputError, match=match):
        loads_bounded(text)


def test_bounded_loads_refuses_long_documents_before_parsing():
    with pytest.raises(JsonInputError, match="longer than 100 bytes"):
        loads_bounded("[" + "1," * 60 + "1]", max_bytes=100)


def test_brackets_inside_strings_do_not_count():
    assert nesting_depth(b'["[[[[[[", "\\"[[[["]') == 1
    assert loads_bounded('["' + "[" * 100 + '"]') == ["[" * 100]


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, array_shapes(min_dims=1, max_dims=5, max_side=4),
              elements=st.floats(-1e6, 1e6, width=32)),
       st.integers(0, 6))
def test_json_array_is_json_of_the_rounded_values(a, decimals):
    text = json_array(a, decimals)
    back = np.array(json.loads(text), dtype=np.float64)
    assert back.shape == a.shape
    expected = np.round(a.astype(np.float64), decimals)
    np.testing.assert_allclose(back, expected, rtol=0, atol=10.0 ** -decimals)
    assert "NaN" not in text and " " not in text


def test_json_array_refuses_what_json_cannot_hold():
    for bad in (np.array([1.0, math.nan]), np.array([np.inf]), np.zeros(0), np.float32(1)):
        with pytest.raises(ValueError):
            json_array(bad)
    assert json_array(np.array([-0.000001, 2.5]), 3) == "[0.000,2.500]"


def test_output_files_are_checked_before_work(tmp_path):
    assert check_output_file(tmp_path / "new" / "out.npz", suffixes=(".npz",)).parent.is_dir()
    (tmp_path / "existing.npz").write_bytes(b"old")
    check_output_file(tmp_path / "existing.npz")  # replaced later: fine
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_file(tmp_path, what="--out")
    with pytest.raises(OutputPathError, match="must end in .npz"):
        check_output_file(tmp_path / "out.txt", what="--out", suffixes=(".npz",))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="afile"):
        check_output_file(tmp_path / "afile" / "out.npz")


def test_output_folders_are_checked_before_work(tmp_path):
    assert check_output_dir(tmp_path / "run").is_dir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="exists and is a file"):
        check_output_dir(tmp_path / "afile", what="--out")
    with pytest.raises(OutputPathError, match="cannot create the folder"):
        check_output_dir(tmp_path / "afile" / "run")
