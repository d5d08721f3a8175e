"""Fuzzing the NTU reader with mutated real files: a finite (M, T, 25, 3) array or
SkeletonFormatError,
and the whole-array fast path never accepting what the line-by-line reader would not return."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restcn_infer import SkeletonFormatError
from restcn_infer.readers.ntu_fast import read_fast
from restcn_infer.readers.ntu_skeleton import _read_slowly, read_ntu_skeleton

NAMES = ["S001C001P001R001A001", "S001C003P008R002A058"]
GARBAGE = [b"nan", b"-inf", b"inf", b"1e999", b"abc", b"1.2.3", b"--1", b"\xff\xfe", b"\x00",
           b"", b"7", b"0", b"999999999999", b"25", b"\r", b"1_0", b"0x1p3", b"+.5e-3"]
# valid numbers in unusual spellings, and near misses, for the fast-path differential test
NUMBERS = [b".5", b"+.5e-3", b"1.", b"1.e5", b"1E+05", b"-0", b"-0.0", b"007", b"1e-99", b"1e99",
           b"1e999", b"1e100", b"9" * 16, b"0." + b"1" * 20, b"1.5e", b"1e5.3", b"1e5e3", b"-e5",
           b"1..2", b"1.2.3", b"+-1", b"1-2", b"12345678901234.5", b"0.000000000000000000001",
           b"1" + b"0" * 300, b"25", b"025", b"72057594037931101", b"720575940379311012345"]
BLANKS = [b" ", b"  ", b"\t", b"\x0b", b"\x0c", b"\r", b"\r\n", b"\n", b" " * 70]


@st.composite
def mutations(draw: st.DrawFn, content: bytes) -> bytes:
    """Apply 1-3 random edits: truncate, delete/duplicate/replace a line, flip a byte, insert a
    token."""
    for _ in range(draw(st.integers(1, 3))):
        lines = content.split(b"\n")
        kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "replace", "flip",
                                     "token"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "truncate":
            content = content[: draw(st.integers(0, len(content)))]
            continue
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "replace":
            lines[i] = draw(st.sampled_from(GARBAGE))
        elif kind == "token":
            tokens = lines[i].split() or [b""]
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(st.sampled_from(GARBAGE))
            lines[i] = b" ".join(tokens)
        if kind == "flip":
            at = draw(st.integers(0, max(len(content) - 1, 0)))
            content = content[:at] + bytes([draw(st.integers(0, 255))]) + content[at + 1:]
        else:
            content = b"\n".join(lines)
    return content


@pytest.fixture(scope="module")
def originals(shared_data: Path) -> dict[str, bytes]:
    return {name: (shared_data / "ntu" / f"{name}.skeleton").read_bytes() for name in NAMES}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_give_an_array_or_a_format_error(originals: dict[str, bytes],
                                                      data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES))
    content = data.draw(mutations(originals[name]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.skeleton"
        path.write_bytes(content)
        try:
            x = read_ntu_skeleton(path)
        except SkeletonFormatError as e:
            assert str(e).startswith(f"{path}:") and e.line is not None and e.line >= 1
            return
    assert x.dtype == np.float32 and x.ndim == 4 and x.shape[2:] == (25, 3)
    assert 1 <= x.shape[0] <= 2 and x.shape[1] >= 1
    assert np.isfinite(x).all()


@st.composite
def respellings(draw: st.DrawFn, content: bytes) -> bytes:
    """1-3 edits that often keep the file valid: a token respelled, a blank changed or added."""
    lines = content.split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        tokens = lines[i].split() or [b""]
        j = draw(st.integers(0, len(tokens) - 1))
        if draw(st.booleans()):
            tokens[j] = draw(st.sampled_from(NUMBERS))
        else:
            tokens[j] = tokens[j] + draw(st.sampled_from(BLANKS))
        lines[i] = draw(st.sampled_from(BLANKS[:2] + [b""])) + b" ".join(tokens) + b"\r"
    return b"\n".join(lines)


def test_the_fast_path_reads_the_real_files(originals: dict[str, bytes]) -> None:
    for content in originals.values():
        assert read_fast(content) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_path_agrees_with_the_line_by_line_reader(originals: dict[str, bytes],
                                                          data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES))
    edit = data.draw(st.sampled_from([respellings, mutations]))
    content = data.draw(edit(originals[name]))
    fast = read_fast(content)
    if fast is None:  # not proven: the slow path decides
        return
    slow = _read_slowly(f"{name}.skeleton", content)  # must not raise where the fast path passed
    np.testing.assert_array_equal(fast.xyz.view(np.int64), slow.xyz.view(np.int64))  # bit for bit
    np.testing.assert_array_equal(fast.body, slow.body)
    np.testing.assert_array_equal(fast.frame, slow.frame)
    assert fast.num_frames == slow.num_frames
