"""NTU RGB+D raw ``.skeleton`` reader: whole-file integrity check, bodies tracked by bodyID.

File layout (one item per line, CRLF or LF)::

    frameCount
    per frame:  bodyCount                                   (0..6)
      per body: bodyID clipedEdges ... trackingState        (10 tokens)
                jointCount                                  (25)
                25 x  x y z depthX depthY colorX colorY orientW orientX orientY orientZ
                      trackingState

The file is read once and checked as a whole by the fast path of :mod:`.ntu_fast` (whole-array
numpy steps, Python loops only over the frames). Whatever that does not prove -- a malformed
file, but also rare valid forms such as ``.5``, a 19-digit bodyID or a jointCount written
``025`` -- goes to :func:`_read_slowly`, a plain line-by-line reader that defines what is
accepted: it returns the same array, or raises an error naming the first bad line (1-based).
Every count is checked against the lines actually in the file before it drives a loop or an
allocation.
"""

from __future__ import annotations

import math
import re
from os import PathLike

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.readers.ntu_fast import read_fast
from restcn_infer.readers.ntu_format import (
    INFO_TOKENS,
    JOINT_TOKENS,
    MAX_BODIES_PER_FRAME,
    NUM_JOINTS,
    Blocks,
)

# The number syntax the slow path accepts (Python's float accepts the same decimal forms).
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def read_ntu_skeleton(path: str | PathLike[str], max_bodies: int = 2) -> np.ndarray:
    """Read one NTU RGB+D ``.skeleton`` file.

    Args:
        path: the file.
        max_bodies: keep at most this many bodies. When a file holds more distinct bodyIDs, the
            most active ones are kept (sum over joints and xyz of the variance over the frames
            where the body is present, as the dataset FAQ advises).

    Returns:
        float32 ``(M, T, 25, 3)`` xyz in metres, M = min(distinct bodyIDs, max_bodies) but at
        least 1, bodies ordered by first appearance. A body absent from a frame, and a frame
        without bodies, are zeros. Values are parsed as float64 and then cast to float32,
        as the dataset authors' reader does.

    Raises:
        SkeletonFormatError: the file is missing, unreadable or malformed: a wrong count,
            truncation, trailing content, a non-numeric or non-finite value, a repeated bodyID
            within a frame. The message names the first bad line (1-based).
    """
    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot read file: {e.strerror or e}") from None
    blocks = read_fast(data)
    if blocks is None:  # malformed, or a form the fast path does not prove: go line by line
        blocks = _read_slowly(path, data)
    return _assemble(blocks.xyz, blocks.body, blocks.frame, blocks.num_frames, max_bodies)


# ---------------------------------------------------------------- slow path: line by line


def _read_slowly(path: str | PathLike[str], data: bytes) -> Blocks:
    """The line-by-line reader: the same result as :func:`.ntu_fast.read_fast` where that one
    succeeds,
    and the first bad line otherwise (raises SkeletonFormatError)."""
    lines = data.split(b"\n")  # a CRLF file keeps a trailing CR per line: whitespace to us
    layout = _walk(path, lines)
    info = _parse_numbers(lines, layout.info_lines, INFO_TOKENS, "body info")
    joints = _parse_numbers(lines, layout.joint_lines, JOINT_TOKENS, "joint")
    errors = [e for e in (layout.error, info.error, joints.error) if e is not None]
    if errors:
        line, message = min(errors)
        raise SkeletonFormatError(path, message, line=line)
    xyz = joints.values[:, :3].reshape(-1, NUM_JOINTS, 3)  # (blocks*25, 12) -> (blocks, 25, 3)
    return Blocks(xyz, np.array(layout.block_body, dtype=np.int64),
                   np.array(layout.block_frame, dtype=np.int64), layout.num_frames)


class _Layout:
    """Where things are in a file, as found by :func:`_walk` (line indices are 0-based)."""

    def __init__(self) -> None:
        self.num_frames = 0
        self.info_lines: list[int] = []  # one per body block
        self.joint_lines: list[int] = []  # 25 per body block, in file order
        self.block_body: list[int] = []  # body index (order of first appearance) per block
        self.block_frame: list[int] = []  # frame index per block
        self.error: tuple[int, str] | None = None  # (1-based line, message) of a structure error


def _walk(path: str | PathLike[str], lines: list[bytes]) -> _Layout:
    """Check the counts of the whole file and record where each body block's lines are.

    Stops at the first structural error and records it in ``layout.error`` instead of raising,
    so that a bad number on an earlier line can still be reported first.
    """
    layout = _Layout()
    n = len(lines)
    try:
        frames = _count(lines, 0, "frameCount", 1, n - 1)
        body_ids: dict[int, int] = {}
        p = 1
        for frame in range(frames):
            bodies = _count(lines, p, f"bodyCount of frame {frame + 1}", 0, MAX_BODIES_PER_FRAME)
            p += 1
            seen: set[int] = set()
            for _ in range(bodies):
                body_id = _body_id(lines, p)
                if body_id in seen:
                    raise _StructureError(p, f"expected distinct bodyIDs in frame {frame + 1}, "
                                             f"got bodyID {body_id} twice")
                seen.add(body_id)
                layout.info_lines.append(p)
                _count(lines, p + 1, "jointCount", NUM_JOINTS, NUM_JOINTS)
                first_joint = p + 2
                p = min(first_joint + NUM_JOINTS, n)
                layout.joint_lines.extend(range(first_joint, p))
                if p - first_joint < NUM_JOINTS:
                    raise _StructureError(p, f"expected {NUM_JOINTS} joint lines, got end of file "
                                             f"after {p - first_joint}")
                layout.block_body.append(body_ids.setdefault(body_id, len(body_ids)))
                layout.block_frame.append(frame)
        for i in range(p, n):
            if lines[i].strip():
                raise _StructureError(i, f"expected end of file after {frames} frames, "
                                         f"got {_show(lines[i])}")
        layout.num_frames = frames
    except _StructureError as e:
        layout.error = (e.index + 1, e.message)
    return layout


class _StructureError(Exception):
    """Internal: a structure error at 0-based line ``index`` (becomes SkeletonFormatError)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _count(lines: list[bytes], i: int, what: str, low: int, high: int) -> int:
    """The integer alone on line ``i``, checked to lie in ``[low, high]``."""
    if i >= len(lines):
        raise _StructureError(i, f"expected {what}, got end of file")
    text = lines[i].strip()
    if not text.isdigit():  # bytes.isdigit: ASCII digits only, no sign, no underscore
        raise _StructureError(i, f"expected {what} (one integer), got {_show(lines[i])}")
    if len(text) > 12 or not low <= int(text) <= high:
        bound = f"{low}" if low == high else f"in {low}..{high}"
        if what == "frameCount":
            bound += " (at most the number of lines that follow)"
        raise _StructureError(i, f"expected {what} {bound}, got {_show(text)}")
    return int(text)


def _body_id(lines: list[bytes], i: int) -> int:
    """bodyID of the body-info line ``i`` (a ~7.2e16 integer: exact as int, never float)."""
    if i >= len(lines):
        raise _StructureError(i, "expected a body info line, got end of file")
    tokens = lines[i].split()
    if len(tokens) != INFO_TOKENS:
        raise _StructureError(i, f"expected a body info line of {INFO_TOKENS} values, "
                                 f"got {len(tokens)}: {_show(lines[i])}")
    if not tokens[0].isdigit() or len(tokens[0]) > 40:
        raise _StructureError(i, f"expected an integer bodyID, got {_show(tokens[0])}")
    return int(tokens[0])


class _Numbers:
    """Values of some lines (``(L, ncols)`` float64) or the first bad line as ``error``."""

    def __init__(self, values: np.ndarray, error: tuple[int, str] | None = None) -> None:
        self.values = values
        self.error = error


def _parse_numbers(lines: list[bytes], indices: list[int], ncols: int, what: str) -> _Numbers:
    """Parse ``lines[i]`` for ``i`` in ``indices``: each must hold ``ncols`` finite numbers
    (Python's ``float``, no ``_``), else the first bad line is the error."""
    rows = []
    for i in indices:
        tokens = lines[i].split()
        if len(tokens) != ncols:
            message = f"expected a {what} line of {ncols} numbers, got {len(tokens)}"
            return _Numbers(np.zeros((0, ncols)), (i + 1, f"{message}: {_show(lines[i])}"))
        try:
            row = [float(token) for token in tokens]
        except ValueError:
            row = []
        if len(row) != ncols or b"_" in lines[i] or not all(map(math.isfinite, row)):
            return _Numbers(np.zeros((0, ncols)), (i + 1, _bad_token(tokens)))
        rows.append(row)
    return _Numbers(np.array(rows, dtype=np.float64).reshape(-1, ncols))


def _bad_token(tokens: list[bytes]) -> str:
    """Message for the first token of a line that is not a finite decimal number."""
    for col, token in enumerate(tokens, start=1):
        if token.lower().lstrip(b"+-") in (b"nan", b"inf", b"infinity"):
            return f"expected a finite number in column {col}, got {_show(token)}"
        if not _NUMBER.fullmatch(token):
            return f"expected a number in column {col}, got {_show(token)}"
        if not math.isfinite(float(token)):
            return f"expected a finite number in column {col}, got {_show(token)}"
    return f"expected decimal numbers, got {_show(b' '.join(tokens))}"



def _assemble(xyz: np.ndarray, block_body: list[int], block_frame: list[int], num_frames: int,
              max_bodies: int) -> np.ndarray:
    """Scatter body blocks into ``(M, T, 25, 3)`` float32, keeping the most active bodies.

    Args:
        xyz: ``(B, 25, 3)`` float64, one entry per body block (a body in a frame).
        block_body: ``(B,)`` body index, numbered by first appearance.
        block_frame: ``(B,)`` frame index.
    """
    body = np.asarray(block_body, dtype=np.int64)
    frame = np.asarray(block_frame, dtype=np.int64)
    num_bodies = int(body.max()) + 1 if len(body) else 0
    kept = np.arange(num_bodies)
    if num_bodies > max_bodies:
        motion = _motion(xyz.reshape(len(xyz), -1), body, num_bodies)
        # stable sort: among equally active bodies the earlier one wins
        kept = np.sort(np.argsort(-motion, kind="stable")[:max_bodies])
    slot = np.full(max(num_bodies, 1), -1, dtype=np.int64)
    slot[kept] = np.arange(len(kept))
    out = np.zeros((max(len(kept), 1), num_frames, NUM_JOINTS, 3), dtype=np.float32)
    use = slot[body] >= 0 if len(body) else np.zeros(0, dtype=bool)
    out[slot[body[use]], frame[use]] = xyz[use]  # float64 -> float32, as the reference does
    return out


def _motion(values: np.ndarray, body: np.ndarray, num_bodies: int) -> np.ndarray:
    """Per body: sum over columns of the variance over that body's blocks. ``(B, D) -> (N,)``."""
    count = np.bincount(body, minlength=num_bodies).astype(np.float64)[:, None]
    mean = np.zeros((num_bodies, values.shape[1]))
    np.add.at(mean, body, values)
    mean /= count
    squares = np.zeros_like(mean)
    np.add.at(squares, body, (values - mean[body]) ** 2)
    return (squares / count).sum(axis=1)


def _show(text: bytes, limit: int = 40) -> str:
    """A short printable rendering of file content for error messages."""
    shown = text.rstrip(b"\r").decode("ascii", errors="replace")
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")
