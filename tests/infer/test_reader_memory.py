"""Every reader's memory is bounded by what the file holds, never by what it claims
(tracemalloc): a 139-byte pickle never becomes a 1.2 GB array, a 10 MB NTU file of empty
frames never costs 1.6 GB, a header's shape allocates nothing before it is checked."""

from __future__ import annotations

import io
import json
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bodies import body_sequence
from restcn_infer.errors import SkeletonFormatError
from restcn_infer.limits import (
    MAX_JSON_FILE_BYTES,
    MAX_SEQUENCE_FILE_BYTES,
    MAX_SKELETON_FILE_BYTES,
)
from restcn_infer.readers import load_sequence

MiB = 1 << 20


def peak_of(read, path: Path) -> tuple[object, int]:
    """``(result or the SkeletonFormatError raised, peak traced bytes)`` of ``read(path)``."""
    tracemalloc.start()
    try:
        try:
            result = read(path)
        except SkeletonFormatError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def npy_with_header(path: Path, shape: tuple, data: bytes = b"") -> Path:
    """A ``.npy`` whose header claims ``shape`` float32, followed by ``data``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": shape})
    path.write_bytes(buffer.getvalue() + data)  # the header starts with numpy's magic
    return path


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that takes no disk (and no memory to make)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


class Bomb:
    """Unpickles to numpy's ``_reconstruct(ndarray, (10, 1000, 1000, 3), b"b")``: an
    uninitialised 120-million-element array from a file of ~140 bytes."""

    def __reduce__(self):
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy 1
            from numpy.core.multiarray import _reconstruct
        return _reconstruct, (np.ndarray, (10, 1000, 1000, 3), b"b")


def ntu_body_lines(frames: int) -> bytes:
    joint = b"0.1 0.2 3.0 200 200 900 500 0 0 0 0 2\n"
    body = b"72057594037931101 0 1 1 1 1 0 0.02 0.05 2\n25\n" + joint * 25
    return str(frames).encode() + b"\n" + (b"1\n" + body) * frames


CASES = {  # name -> (make(tmp) -> path, refused?, peak limit in bytes from the file size)
    "npy claims 1e9 frames": (
        lambda tmp: npy_with_header(tmp / "a.npy", (1, 10**9, 20, 3), b"\0" * 240),
        True, lambda size: MiB),
    "npy claims a huge shape, data short": (
        lambda tmp: npy_with_header(tmp / "a.npy", (1, 50_000, 20, 3), b"\0" * 240),
        True, lambda size: MiB),
    "npy valid": (
        lambda tmp: (np.save(tmp / "a.npy", body_sequence(20_000)), tmp / "a.npy")[1],
        False, lambda size: 3 * size + MiB),
    "npy object array": (
        lambda tmp: (np.save(tmp / "a.npy", np.array([[[None] * 3]] * 2), allow_pickle=True),
                     tmp / "a.npy")[1],
        True, lambda size: MiB),
    "json nested 100k deep": (
        lambda tmp: (tmp / "a.json").write_text("[" * 100_000 + "]" * 100_000) and tmp / "a.json",
        True, lambda size: 2 * size + MiB),
    "json valid": (
        lambda tmp: (tmp / "a.json").write_text(json.dumps(
            {"frames": body_sequence(3000)[0].round(4).tolist()})) and tmp / "a.json",
        False, lambda size: 24 * size + MiB),
    "json larger than its limit": (
        lambda tmp: sparse(tmp / "a.json", MAX_JSON_FILE_BYTES + 1, b'{"frames": ['),
        True, lambda size: MiB),
    "pickle bomb (139 bytes)": (
        lambda tmp: (tmp / "a.pkl").write_bytes(pickle.dumps(
            {"frame_dir": "x", "label": 0, "keypoint": Bomb()}, protocol=2)) and tmp / "a.pkl",
        True, lambda size: MiB),
    "pickle valid": (
        lambda tmp: (tmp / "a.pkl").write_bytes(pickle.dumps(
            {"frame_dir": "x", "label": 0, "keypoint": body_sequence(20_000)})) and tmp / "a.pkl",
        False, lambda size: 4 * size + MiB),
    "pickle larger than its limit": (
        lambda tmp: sparse(tmp / "a.pkl", MAX_SEQUENCE_FILE_BYTES + 1, b"\x80\x04"),
        True, lambda size: MiB),
    "ntu 10 MB of empty frames": (
        lambda tmp: (tmp / "a.skeleton").write_bytes(b"5000000\n" + b"0\n" * 5_000_000)
        and tmp / "a.skeleton",
        True, lambda size: size + MiB),
    "ntu valid (fast path)": (
        lambda tmp: (tmp / "a.skeleton").write_bytes(ntu_body_lines(400)) and tmp / "a.skeleton",
        False, lambda size: 20 * size + MiB),
    "ntu malformed at the end (slow path)": (
        lambda tmp: (tmp / "a.skeleton").write_bytes(ntu_body_lines(400) + b"00\n" * 300_000)
        and tmp / "a.skeleton",
        True, lambda size: 20 * size + MiB),
    "ntu larger than its limit": (
        lambda tmp: sparse(tmp / "a.skeleton", MAX_SKELETON_FILE_BYTES + 1, b"1\n"),
        True, lambda size: MiB),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_memory_is_bounded_by_the_file(tmp_path, case):
    make, refused, limit = CASES[case]
    path = make(tmp_path)
    size = path.stat().st_size
    result, peak = peak_of(load_sequence, path)
    assert isinstance(result, SkeletonFormatError) == refused, result
    assert peak < limit(size), (peak, size)


def test_the_slow_ntu_path_holds_less_than_the_file(tmp_path):
    """The line-by-line reader keeps x, y, z only: well under the file's size."""
    from restcn_infer.readers.ntu_skeleton import _read_slowly

    data = ntu_body_lines(400)
    tracemalloc.start()
    try:
        blocks = _read_slowly("a.skeleton", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blocks.num_frames == 400 and peak < len(data), (peak, len(data))
