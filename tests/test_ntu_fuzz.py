"""Fuzzing the NTU reader with mutated real files: a finite (M, T, 25, 3) array or SkeletonFormatError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restcn_infer import SkeletonFormatError
from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton

NAMES = ["S001C001P001R001A001", "S001C003P008R002A058"]
GARBAGE = [b"nan", b"-inf", b"inf", b"1e999", b"abc", b"1.2.3", b"--1", b"\xff\xfe", b"\x00",
           b"", b"7", b"0", b"999999999999", b"25", b"\r", b"1_0", b"0x1p3", b"+.5e-3"]


@st.composite
def mutations(draw: st.DrawFn, content: bytes) -> bytes:
    """Apply 1-3 random edits: truncate, delete/duplicate/replace a line, flip a byte, insert a token."""
    for _ in range(draw(st.integers(1, 3))):
        lines = content.split(b"\n")
        kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "replace", "flip", "token"]))
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
