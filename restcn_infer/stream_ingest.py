"""A stream's frames in: the frame check (:func:`check_frame`), the same checks of a batch of
frames at once (:func:`check_frames`, for :meth:`StreamClassifier.push_many
<restcn_infer.streaming.StreamClassifier.push_many>`) and the ring buffers of all streams in one
array (:class:`RingPool`).

Frames of many streams arrive together (one stdin batch, one WebSocket message, one tick of a
camera server). Checked one by one, a frame costs ~10 numpy calls on a few dozen numbers, which
is most of its time; here a batch of frames of one shape is one array, checked, converted and
written into the rings with a few calls for all of them, and the due windows of many streams are
read out with one gather. :func:`check_frames` only lets through what the one-frame check
(:func:`check_frame`)
would pass with the same numbers; anything else is left to it, so a bad frame gets the same
error record whichever way it came.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.limits import COORDS, MAX_ABS_COORDINATE, MAX_MODEL_BODIES, check_magnitude
from restcn_infer.spec import InputSpec

#: Bodies a single frame may carry: as many as any model reads; more is a malformed frame.
MAX_BODIES_PER_FRAME = MAX_MODEL_BODIES


def check_frame(frame: Any, spec: InputSpec, convert: Callable[[np.ndarray], np.ndarray],
                source: str = "<frame>") -> np.ndarray:
    """Validate one frame and return it as float32 ``(bodies_in, V, C)``, in the model's
    units (``convert``: the caller's :meth:`~restcn_infer.input_options.InputOptions.convert`),
    in the frame's own joint order.

    Raises:
        SkeletonFormatError: not numeric, wrong shape, too many bodies, not the model's
            coordinates per joint, NaN/inf, or coordinates beyond any unit's range.
    """
    c = spec.coords
    try:
        a = np.asarray(frame, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SkeletonFormatError(source, f"expected a numeric (bodies, V, {c}) frame: {exc}"
                                  ) from None
    if a.ndim == 2:
        a = a[None]  # (V, C) -> (1, V, C)
    if a.ndim != 3 or a.shape[2] not in COORDS or not 1 <= a.shape[0] <= MAX_BODIES_PER_FRAME:
        raise SkeletonFormatError(
            source,
            f"expected a frame of shape (V, {c}) or (bodies <= {MAX_BODIES_PER_FRAME}, V, "
            f"{c}), got {a.shape}",
        )
    spec.check_coords(a.shape[2], source)
    if not np.isfinite(a).all():
        raise SkeletonFormatError(source, "frame contains NaN or infinite coordinates")
    a = convert(a)
    check_magnitude(a, source)
    return a


class RingPool:
    """The ring buffers of many streams: ``frames (capacity, window, M, V, C)`` float32.

    The stream in slot ``s`` keeps its ``k``-th frame (1-based) at ``frames[s, (k - 1) %
    window]``. Slots of forgotten streams are reused; the array grows by doubling up to the
    number of live streams the caller allows (``limit`` of :meth:`take`), and beyond it only by
    the slots a ``push_many`` holds back for streams it fed and then evicted in the same call
    (:meth:`~restcn_infer.stream_table.StreamTable.holding`).
    """

    def __init__(self, window: int, frame_shape: tuple[int, int, int]) -> None:
        self.window = window
        self.frames = np.zeros((0, window, *frame_shape), dtype=np.float32)
        self._free: list[int] = []
        self._used = 0  # slots ever handed out: [0, used) are live or free

    def take(self, limit: int) -> int:
        """A free slot, growing the array (to at most ``limit`` slots, or one more than used)."""
        if self._free:
            return self._free.pop()
        if self._used == len(self.frames):
            size = max(self._used + 1, min(max(16, 2 * self._used), limit))
            grown = np.zeros((size, *self.frames.shape[1:]), dtype=np.float32)
            grown[:self._used] = self.frames
            self.frames = grown
        self._used += 1
        return self._used - 1

    def release(self, slot: int) -> None:
        """Give a slot back (its frames are never read again: a new stream reads only what it
        wrote)."""
        self._free.append(slot)

    def write(self, slots: np.ndarray, numbers: np.ndarray, frames: np.ndarray) -> None:
        """Store ``frames (n, M, V, C)`` as the frames numbered ``numbers`` (0-based: a
        stream's count before the frame) of the streams in ``slots``; no pair twice."""
        self.frames[slots, numbers % self.window] = frames

    def positions(self, count: int) -> np.ndarray:
        """Ring positions of a stream's last ``min(count, window)`` frames, oldest first."""
        if count <= self.window:
            return np.arange(count)
        return (count + np.arange(self.window)) % self.window  # count % window: the oldest

    def recent(self, slot: int, count: int) -> np.ndarray:
        """A copy of one stream's last ``min(count, window)`` frames, ``(M, t, V, C)``."""
        return self.frames[slot, self.positions(count)].transpose(1, 0, 2, 3)  # (t, M, V, C)


def check_frames(frames: Sequence[Any] | np.ndarray, coords: int,
                 convert: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The frame checks of a batch at once: ``(groups, group, row)``.

    ``groups`` are float32 arrays ``(n, bodies, V, C)`` of frames alike in shape that passed
    every check of the one-frame check (numeric, ``(V, C)`` or ``(bodies, V, C)`` with at most
    :data:`MAX_BODIES_PER_FRAME` bodies, the model's ``coords``, finite, within
    :data:`~restcn_infer.limits.MAX_ABS_COORDINATE` after ``convert``, the
    :meth:`~restcn_infer.input_options.InputOptions.convert` of the caller's units), converted;
    frame ``i`` is ``groups[group[i]][row[i]]``, or ``group[i] == -1``: it
    must be checked alone (it may be bad; the one-frame check says why, or passes it).
    """
    n = len(frames)
    group = np.full(n, -1, dtype=np.int64)
    row = np.zeros(n, dtype=np.int64)
    groups: list[np.ndarray] = []
    if isinstance(frames, np.ndarray) and frames.dtype.kind in "iuf":
        stacks = {frames.shape[1:]: (np.arange(n), frames)} if n else {}
    else:
        stacks = _stacks(frames)
    for shape, (where, stack) in stacks.items():
        if len(shape) == 2:
            stack = stack[:, None]  # (n, V, C) -> (n, 1, V, C)
        elif len(shape) != 3:
            continue
        if stack.shape[3] != coords or not (
                1 <= stack.shape[1] <= MAX_BODIES_PER_FRAME):
            continue
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
            values = convert(np.asarray(stack, dtype=np.float32))
            size = np.abs(values).max(axis=(1, 2, 3), initial=0.0)  # (n,) NaN where NaN
        fine = size <= MAX_ABS_COORDINATE  # false for NaN and infinity too
        if not fine.any():
            continue
        if not fine.all():
            values, where = values[fine], where[fine]
        group[where] = len(groups)
        row[where] = np.arange(len(where))
        groups.append(values)
    return groups, group, row


def _stacks(frames: Sequence[Any]) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """Numeric ndarray frames by shape: ``shape -> (positions, stacked (n, *shape))``; other
    frames (lists, strings, objects) are left out for the one-frame check."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, frame in enumerate(frames):
        if isinstance(frame, np.ndarray) and frame.dtype.kind in "iuf":
            by_shape.setdefault(frame.shape, []).append(i)
    return {shape: (np.asarray(where), np.stack([frames[i] for i in where]))
            for shape, where in by_shape.items()}
