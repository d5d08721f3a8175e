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
allocation, and against :mod:`restcn_infer.limits`: a file is at most
:data:`~restcn_infer.limits.MAX_SKELETON_FILE_BYTES` long, its frameCount at most
:data:`~restcn_infer.limits.MAX_FRAMES` (checked on the first line, before anything else), so
the worst accepted file costs a bounded multiple of its size (the fast path 11-18x, the slow
path less than 1x).
"""

from __future__ import annotations

import math
import re
from array import array
from os import PathLike

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.limits import (
    MAX_FRAMES,
    MAX_SKELETON_FILE_BYTES,
    check_shape,
    read_file_limited,
)
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
# Anything but the bytes that bytes.split() splits on.
_CONTENT = re.compile(rb"[^ \t\n\r\x0b\x0c]")


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
    data = read_file_limited(path, MAX_SKELETON_FILE_BYTES, "one .skeleton file")
    first = data[:64].split(b"\n", 1)[0].strip()
    if first.isdigit() and int(first) > MAX_FRAMES:  # before any whole-file work
        raise SkeletonFormatError(path, f"expected frameCount at most {MAX_FRAMES:,}, got "
                                        f"{_show(first)}", line=1)
    blocks = read_fast(data)
    if blocks is None:  # malformed, or a form the fast path does not prove: go line by line
        blocks = _read_slowly(path, data)
    kept = min(max(int(blocks.body.max(initial=-1)) + 1, 1), max_bodies)
    check_shape((kept, blocks.num_frames, NUM_JOINTS, 3), path, "the sequence")
    return _assemble(blocks.xyz, blocks.body, blocks.frame, blocks.num_frames, max_bodies)


# ---------------------------------------------------------------- slow path: line by line


def _read_slowly(path: str | PathLike[str], data: bytes) -> Blocks:
    """The line-by-line reader: the same result as :func:`.ntu_fast.read_fast` where that one
    succeeds, and the first bad line otherwise (raises SkeletonFormatError).

    It reads the file forward, one line at a time, checking each line's count or numbers as it
    comes, so the first error in file order is the one reported, and it keeps only x, y, z of
    the joint lines: memory stays below the file's size, however many short lines it has.
    """
    try:
        return _walk(_Lines(data))
    except _StructureError as e:
        raise SkeletonFormatError(path, e.message, line=e.index + 1) from None


class _Lines:
    """The lines of a file as ``data.split(b"\n")`` numbers them, read forward one at a time
    (a CRLF file keeps a trailing CR per line: whitespace to us). No list of all lines is made.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = data.count(b"\n") + 1
        self.index = 0  # 0-based index of the next line
        self._pos = 0  # its first byte

    def next(self, what: str) -> bytes:
        """The next line; a structure error naming ``what`` at end of file."""
        if self.index >= self.count:
            raise _StructureError(self.index, f"expected {what}, got end of file")
        end = self.data.find(b"\n", self._pos)
        end = len(self.data) if end < 0 else end
        line = self.data[self._pos:end]
        self._pos = end + 1
        self.index += 1
        return line

    def first_content(self) -> tuple[int, bytes] | None:
        """``(index, line)`` of the first non-blank line from here on, or None (no copy of
        the rest of the file is made)."""
        found = _CONTENT.search(self.data, self._pos)
        if found is None:
            return None
        offset = found.start()
        index = self.index + self.data.count(b"\n", self._pos, offset)
        line_start = self.data.rfind(b"\n", self._pos, offset) + 1
        line_end = self.data.find(b"\n", offset)
        return index, self.data[line_start:len(self.data) if line_end < 0 else line_end]


def _walk(lines: _Lines) -> Blocks:
    """Check the counts and numbers of the whole file in file order; collect x, y, z per body
    block. The first bad line raises :class:`_StructureError`."""
    frames = _count(lines, "frameCount", 1, min(lines.count - 1, MAX_FRAMES))
    xyz = array("d")  # 75 values per body block, in file order
    block_body: list[int] = []
    block_frame: list[int] = []
    body_ids: dict[int, int] = {}
    for frame in range(frames):
        bodies = _count(lines, f"bodyCount of frame {frame + 1}", 0, MAX_BODIES_PER_FRAME)
        seen: set[int] = set()
        for _ in range(bodies):
            index = lines.index
            info = lines.next("a body info line")
            body_id = _body_id(info, index)
            if body_id in seen:
                raise _StructureError(index, f"expected distinct bodyIDs in frame {frame + 1}, "
                                             f"got bodyID {body_id} twice")
            seen.add(body_id)
            _numbers(info, index, INFO_TOKENS, "body info")
            _count(lines, "jointCount", NUM_JOINTS, NUM_JOINTS)
            for joint in range(NUM_JOINTS):
                if lines.index >= lines.count:
                    raise _StructureError(lines.index, f"expected {NUM_JOINTS} joint lines, got "
                                                       f"end of file after {joint}")
                index = lines.index
                xyz.extend(_numbers(lines.next("a joint line"), index, JOINT_TOKENS, "joint")[:3])
            block_body.append(body_ids.setdefault(body_id, len(body_ids)))
            block_frame.append(frame)
    extra = lines.first_content()
    if extra is not None:
        raise _StructureError(extra[0], f"expected end of file after {frames} frames, "
                                        f"got {_show(extra[1])}")
    return Blocks(np.frombuffer(xyz, dtype=np.float64).reshape(-1, NUM_JOINTS, 3),
                  np.array(block_body, dtype=np.int64), np.array(block_frame, dtype=np.int64),
                  frames)


class _StructureError(Exception):
    """Internal: an error at 0-based line ``index`` (becomes SkeletonFormatError)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def _count(lines: _Lines, what: str, low: int, high: int) -> int:
    """The integer alone on the next line, checked to lie in ``[low, high]``."""
    index = lines.index
    raw = lines.next(what)
    text = raw.strip()
    if not text.isdigit():  # bytes.isdigit: ASCII digits only, no sign, no underscore
        raise _StructureError(index, f"expected {what} (one integer), got {_show(raw)}")
    if len(text) > 12 or not low <= int(text) <= high:
        bound = f"{low}" if low == high else f"in {low}..{high}"
        if what == "frameCount":
            bound += f" (at most the number of lines that follow, and {MAX_FRAMES:,})"
        raise _StructureError(index, f"expected {what} {bound}, got {_show(text)}")
    return int(text)


def _body_id(line: bytes, index: int) -> int:
    """bodyID of a body-info line (a ~7.2e16 integer: exact as int, never float)."""
    tokens = line.split()
    if len(tokens) != INFO_TOKENS:
        raise _StructureError(index, f"expected a body info line of {INFO_TOKENS} values, "
                                     f"got {len(tokens)}: {_show(line)}")
    if not tokens[0].isdigit() or len(tokens[0]) > 40:
        raise _StructureError(index, f"expected an integer bodyID, got {_show(tokens[0])}")
    return int(tokens[0])


def _numbers(line: bytes, index: int, ncols: int, what: str) -> list[float]:
    """The ``ncols`` finite numbers of a line (Python's ``float``, no ``_``)."""
    tokens = line.split()
    if len(tokens) != ncols:
        raise _StructureError(index, f"expected a {what} line of {ncols} numbers, got "
                                     f"{len(tokens)}: {_show(line)}")
    try:
        row = [float(token) for token in tokens]
    except ValueError:
        row = []
    if len(row) != ncols or b"_" in line or not all(map(math.isfinite, row)):
        raise _StructureError(index, _bad_token(tokens))
    return row


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
