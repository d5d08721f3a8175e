"""NTU ``.skeleton`` reader: parity with the dataset authors' reader, body tracking, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restcn_infer import SkeletonFormatError
from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton

REAL_FILES = {  # name -> (frames, bodies)
    "S001C001P001R001A001": (103, 1),
    "S001C001P001R001A011": (82, 1),
    "S003C001P015R001A034": (71, 1),
    "S001C003P008R002A058": (70, 2),
}
BODY_ID = 72057594037931101  # a real-looking bodyID (~7.2e16: float64 confuses ID and ID+1)


def skeleton_bytes(frames: list[list[tuple[int, np.ndarray]]], newline: str = "\r\n") -> bytes:
    """A synthetic ``.skeleton`` file: ``frames[t]`` lists ``(bodyID, xyz (25, 3))`` pairs.

    With one body per frame, frame t (0-based) starts at line 2 + 28 t: bodyCount, info line,
    jointCount, then the 25 joint lines.
    """
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, xyz in bodies:
            out.append(f"{body_id} 0 1 1 1 1 0 0.02764709 0.05745083 2")
            out.append("25")
            out += [f"{x:.7g} {y:.7g} {z:.7g} 277.419 191.8218 1036.233 519.1677 -0.2059419 "
                    f"0.05349901 0.9692109 -0.1239193 2" for x, y, z in xyz]
    return (newline.join(out) + newline).encode()


def pose(seed: float, wiggle: float = 0.0) -> np.ndarray:
    """A deterministic (25, 3) pose; ``wiggle`` moves it."""
    return (np.arange(75).reshape(25, 3) * 0.01 + seed + wiggle).astype(np.float64)


def write(tmp_path: Path, content: bytes, name: str = "S001C001P001R001A001.skeleton") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------- real files


def test_matches_the_dataset_authors_reader(shared_data: Path) -> None:
    ntu = shared_data / "ntu"
    reference = np.load(ntu / "S001C001P001R001A001.txt2npy.npy", allow_pickle=True).item()
    ours = read_ntu_skeleton(ntu / "S001C001P001R001A001.skeleton")
    assert ours.dtype == np.float32 and ours.shape == (1, 103, 25, 3)
    assert np.abs(ours[0] - reference["skel_body0"]).max() < 1e-6
    np.testing.assert_array_equal(ours[0], reference["skel_body0"].astype(np.float32))


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_files_shapes(shared_data: Path, name: str) -> None:
    frames, bodies = REAL_FILES[name]
    x = read_ntu_skeleton(shared_data / "ntu" / f"{name}.skeleton")
    assert x.shape == (bodies, frames, 25, 3) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert (np.abs(x).sum(axis=(2, 3)) > 0).all()  # every body present in every frame


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_lf_and_crlf_read_the_same(shared_data: Path, tmp_path: Path, name: str) -> None:
    original = (shared_data / "ntu" / f"{name}.skeleton").read_bytes()
    assert b"\r\n" in original
    lf = write(tmp_path, original.replace(b"\r\n", b"\n"), f"{name}.skeleton")
    np.testing.assert_array_equal(read_ntu_skeleton(lf),
                                  read_ntu_skeleton(shared_data / "ntu" / f"{name}.skeleton"))


def test_max_bodies_one_keeps_the_more_active_of_the_handshake(shared_data: Path) -> None:
    both = read_ntu_skeleton(shared_data / "ntu" / "S001C003P008R002A058.skeleton")
    one = read_ntu_skeleton(shared_data / "ntu" / "S001C003P008R002A058.skeleton", max_bodies=1)
    motion = both.var(axis=1).sum(axis=(1, 2))
    np.testing.assert_array_equal(one[0], both[int(np.argmax(motion))])


# ---------------------------------------------------------------- synthetic files


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bodies_are_tracked_by_id_not_by_position(tmp_path: Path, newline: str) -> None:
    a, b = BODY_ID, BODY_ID + 1  # equal as float64: IDs must be compared exactly
    frames = [[(a, pose(0.0))], [(b, pose(5.0)), (a, pose(0.1))], [(a, pose(0.2))]]
    x = read_ntu_skeleton(write(tmp_path, skeleton_bytes(frames, newline)))
    assert x.shape == (2, 3, 25, 3)
    np.testing.assert_allclose(x[0], [pose(0.0), pose(0.1), pose(0.2)], atol=1e-6)
    np.testing.assert_allclose(x[1, 1], pose(5.0), atol=1e-6)
    assert not x[1, [0, 2]].any()  # body b is absent from frames 0 and 2


def test_most_active_bodies_are_kept_in_order_of_appearance(tmp_path: Path) -> None:
    still, mover, shaker = 1, 2, 3
    frames = [[(still, pose(0.0)), (mover, pose(1.0, 0.1 * t)), (shaker, pose(2.0, (-1) ** t))]
              for t in range(4)]
    path = write(tmp_path, skeleton_bytes(frames))
    x = read_ntu_skeleton(path, max_bodies=2)
    assert x.shape == (2, 4, 25, 3)
    np.testing.assert_allclose(x[0, 3], pose(1.0, 0.3), atol=1e-6)  # mover first: seen first
    np.testing.assert_allclose(x[1, 3], pose(2.0, -1.0), atol=1e-6)
    assert read_ntu_skeleton(path, max_bodies=6).shape == (3, 4, 25, 3)
    np.testing.assert_array_equal(read_ntu_skeleton(path, max_bodies=1)[0], x[1])


def test_frames_without_bodies_are_zero_frames(tmp_path: Path) -> None:
    frames = [[(BODY_ID, pose(0.0))], [], [(BODY_ID, pose(0.2))]]
    x = read_ntu_skeleton(write(tmp_path, skeleton_bytes(frames)))
    assert x.shape == (1, 3, 25, 3)
    assert not x[0, 1].any() and x[0, 0].any() and x[0, 2].any()


def test_a_file_without_any_body_gives_one_zero_body(tmp_path: Path) -> None:
    x = read_ntu_skeleton(write(tmp_path, skeleton_bytes([[], [], [], []])))
    assert x.shape == (1, 4, 25, 3) and x.dtype == np.float32 and not x.any()


def test_trailing_whitespace_is_fine(tmp_path: Path) -> None:
    content = skeleton_bytes([[(BODY_ID, pose(0.0))]]) + b"\r\n  \n\t\r\n"
    assert read_ntu_skeleton(write(tmp_path, content)).shape == (1, 1, 25, 3)


@pytest.mark.parametrize("token", [
    "3.785547", "-0.2059419", "5.745083E-02", "-1.401298E-45", ".5", "+.5e-3", "1.", "1.e5",
    "1E+05", "-0", "007", "123456789012345678", "0.1000000000000000055511151231257827",
    "2.2250738585072014E-308"])
def test_numbers_read_as_python_float_then_float32(tmp_path: Path, token: str) -> None:
    lines = _lines(1)
    for k in range(5, 30):  # every joint line (lines 5..29): x = token, y = -token
        tokens = lines[k - 1].split()
        tokens[0], tokens[1] = token, "-" + token.lstrip("+-")
        lines[k - 1] = " ".join(tokens)
    x = read_ntu_skeleton(write(tmp_path, ("\r\n".join(lines) + "\r\n").encode()))
    value = np.float32(float(token))  # the reference: Python's float, then float32
    assert (x[0, 0, :, 0].view(np.int32) == value.view(np.int32)).all()
    assert (x[0, 0, :, 1].view(np.int32) == (-abs(value)).view(np.int32)).all()


def test_long_body_ids_and_padded_joint_counts_are_read_exactly(tmp_path: Path) -> None:
    lines = _lines(2)
    lines[2] = "720575940379311012345" + lines[2][len(str(BODY_ID)):]  # 21 digits, > int64
    lines[3] = "025"
    lines[30] = "720575940379311012346" + lines[30][len(str(BODY_ID)):]
    x = read_ntu_skeleton(write(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert x.shape == (2, 2, 25, 3)  # two bodies, each in one frame
    assert x[0, 0].any() and not x[0, 1].any() and x[1, 1].any() and not x[1, 0].any()


# ---------------------------------------------------------------- bad input


def _lines(n_frames: int = 3) -> list[str]:
    """A valid 1-body file as a list of lines (line k of the file is ``lines[k - 1]``)."""
    frames = [[(BODY_ID, pose(0.1 * t))] for t in range(n_frames)]
    return skeleton_bytes(frames, "\n").decode().split("\n")[:-1]


def _replace(line: int, text: str) -> bytes:
    lines = _lines()
    lines[line - 1] = text
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")


def _joint_line_token(line: int, token: str) -> bytes:
    tokens = _lines()[line - 1].split()
    tokens[4] = token
    return _replace(line, " ".join(tokens))


BAD_FILES = {  # case -> (content, 1-based line of the error, words the message must contain)
    "empty": (b"", 1, "frameCount"),
    "whitespace only": (b" \r\n\r\n", 1, "frameCount"),
    "frameCount not a number": (_replace(1, "abc"), 1, "frameCount"),
    "frameCount zero": (_replace(1, "0"), 1, "frameCount"),
    "frameCount larger than the file": (_replace(1, "4"), 86, "bodyCount"),
    "frameCount absurd": (_replace(1, "1000000000"), 1, "frameCount"),
    "frameCount huge digits": (_replace(1, "9" * 5000), 1, "frameCount"),
    "frameCount negative": (_replace(1, "-3"), 1, "frameCount"),
    "bodyCount above 6": (_replace(30, "7"), 30, "bodyCount"),
    "bodyCount float": (_replace(30, "1.0"), 30, "bodyCount"),
    "info line short": (_replace(31, "72057594037931101 0 1 1 1 1 0 0.02 2"), 31, "10 values"),
    "info line bodyID": (_replace(31, "7e16 0 1 1 1 1 0 0.02764709 0.05745083 2"), 31, "bodyID"),
    "info line nan": (_replace(31, "72057594037931101 0 1 1 1 1 0 nan 0.05 2"), 31, "finite"),
    "jointCount 24": (_replace(32, "24"), 32, "jointCount"),
    "jointCount absurd": (_replace(32, "1000000"), 32, "jointCount"),
    "joint line short": (_replace(40, "0.1 0.2 0.3"), 40, "12 numbers, got 3"),
    "joint line long": (_replace(40, " ".join(["1"] * 13)), 40, "12 numbers, got 13"),
    "joint line empty": (_replace(40, ""), 40, "12 numbers, got 0"),
    "non-numeric token": (_joint_line_token(41, "abc"), 41, "number in column 5"),
    "two dots": (_joint_line_token(42, "1.2.3"), 42, "number in column 5"),
    "underscore": (_joint_line_token(42, "1_000"), 42, "number in column 5"),
    "nan": (_joint_line_token(43, "nan"), 43, "finite number"),
    "inf": (_joint_line_token(44, "-inf"), 44, "finite number"),
    "overflow": (_joint_line_token(45, "1e999"), 45, "finite number"),
    "binary bytes": (_joint_line_token(46, "\udcff\udcfe"), 46, "number in column 5"),
    "duplicate bodyID in a frame": (
        skeleton_bytes([[(BODY_ID, pose(0.0)), (BODY_ID, pose(1.0))]]), 30, "distinct bodyIDs"),
    "trailing garbage": (("\r\n".join(_lines()) + "\r\noops\r\n").encode(), 86, "end of file"),
    "truncated in a joint block": ("\r\n".join(_lines()[:70]).encode(), 71, "25 joint lines"),
    "truncated mid-line": ("\r\n".join(_lines()[:70]).encode()[:-20], 70, "12 numbers"),
    "truncated before a body": ("\r\n".join(_lines()[:58]).encode(), 59, "body info line"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_names_the_line(tmp_path: Path, case: str) -> None:
    content, line, words = BAD_FILES[case]
    path = write(tmp_path, content)
    with pytest.raises(SkeletonFormatError) as info:
        read_ntu_skeleton(path)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: expected")
    assert words in str(info.value)


def test_the_earliest_error_wins(tmp_path: Path) -> None:
    lines = _lines()
    lines[9] = "0.1 0.2 zz 1 1 1 1 1 1 1 1 1"  # line 10
    content = "\r\n".join(lines[:70]).encode()  # and truncated in frame 3
    with pytest.raises(SkeletonFormatError) as info:
        read_ntu_skeleton(write(tmp_path, content))
    assert info.value.line == 10


@pytest.mark.parametrize("line, count", [(1, "1000000000"), (32, "1000000"), (30, "999999")])
def test_absurd_counts_allocate_nothing_from_the_claim(tmp_path: Path, line: int,
                                                       count: str) -> None:
    """A count is checked against the lines in the file before it sizes anything: peak memory
    stays a small multiple of the file, whatever the count claims."""
    import tracemalloc

    path = write(tmp_path, _replace(line, count))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(SkeletonFormatError):
            read_ntu_skeleton(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * size + (1 << 20), (peak, size)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SkeletonFormatError, match="cannot read"):
        read_ntu_skeleton(tmp_path / "nope.skeleton")
    with pytest.raises(SkeletonFormatError, match="cannot read"):
        read_ntu_skeleton(tmp_path)


def test_max_bodies_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bodies"):
        read_ntu_skeleton(write(tmp_path, skeleton_bytes([[]])), max_bodies=0)
