""":meth:`StreamClassifier.push_many <restcn_infer.streaming.StreamClassifier.push_many>`: many
frames of many streams in one call, with the effect of pushing them one by one.

Frames of streams already checked for plausibility (every stream after its first window with a
body) are not written one by one: :class:`PushBatch` keeps them in the call's own arrays and at
the end prepares every due window and writes every ring in whole-array steps. What remains per
frame is bookkeeping (timestamps, layout and body count, limits); a stream not yet checked goes
frame by frame, as :meth:`~restcn_infer.streaming.StreamClassifier.push` does, since its check
may refuse it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from restcn_infer.errors import RestcnError, SkeletonFormatError
from restcn_infer.layouts import JointLayout, LayoutMapping
from restcn_infer.preprocess import fit_bodies
from restcn_infer.stream_ingest import check_frame, check_frames
from restcn_infer.stream_types import (
    NOTHING,
    PendingWindow,
    Pushed,
    StreamLimitError,
    StreamRefusedError,
    StreamState,
    stream_source,
)

if TYPE_CHECKING:
    from restcn_infer.streaming import StreamClassifier


class Due(NamedTuple):
    """A window of a checked stream that fell due in :func:`push_many`."""

    position: int  # of the frame that made it due
    stream: Hashable
    slot: int
    count: int  # the stream's frames then
    t: float | None
    now: float
    owner: Hashable


class PushBatch:
    """The deferred work of one :func:`push_many` for streams checked for
    plausibility already (every stream after its first window with a body): their frames and
    due windows, done in whole-array steps at :meth:`finish`.

    The frames wait in the call's own arrays and reach the rings only at the end, so the rings
    still hold what came before the call: a due window is gathered from both, the ring's
    frames and the call's, as pushing frame by frame would have had them; then each stream's
    last ``window`` frames of the call are written (no ring position twice). A stream not yet
    checked is pushed frame by frame by the caller (its check may refuse it).
    """

    def __init__(self, engine: StreamClassifier, groups: list[np.ndarray]) -> None:
        self.engine = engine
        self.groups = groups  # checked frames (n, bodies_in, V_frame, C), model units
        self.slots: list[int] = []  # per waiting frame: its stream's ring slot
        self.numbers: list[int] = []  # and its number in the stream (0-based)
        # (group, mapping) -> the waiting frames' indices, their rows in the group; mapping
        self.buckets: dict[tuple[int, int], tuple[list[int], list[int],
                                                  LayoutMapping | None]] = {}
        self.base: dict[int, int] = {}  # slot -> number of its first waiting frame
        self.dues: list[Due] = []

    def add(self, frame: np.ndarray) -> tuple[int, int]:
        """A frame checked alone, as a group of its own: ``(group, row)``."""
        self.groups.append(frame[None])
        return len(self.groups) - 1, 0

    def write(self, state: StreamState, group: int, row: int) -> None:
        """``groups[group][row]`` is the stream's next frame (written at :meth:`finish`)."""
        key = (group, id(state.mapping))
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = ([], [], state.mapping)
        bucket[0].append(len(self.slots))
        bucket[1].append(row)
        self.slots.append(state.slot)
        self.numbers.append(state.count)
        self.base.setdefault(state.slot, state.count)

    def due(self, position: int, stream: Hashable, state: StreamState, t: float | None,
            now: float) -> None:
        """The stream's window is due with the frame at ``position``."""
        state.decided = state.count
        self.dues.append(Due(position, stream, state.slot, state.count, t, now, state.owner))

    def finish(self) -> list[tuple[int, PendingWindow]]:
        """Prepare the due windows and write the waiting frames; ``(position, window)`` of
        each due window with a body."""
        if not self.slots:
            return []
        engine = self.engine
        new = np.empty((len(self.slots), *engine._rings.frames.shape[2:]), np.float32)
        for (group, _), (index, rows, mapping) in self.buckets.items():
            new[index] = model_frames(self.groups[group][rows], mapping, engine.bodies)
        slots, numbers = np.array(self.slots), np.array(self.numbers)
        windows = self._windows(new, slots, numbers) if self.dues else []
        last = np.full(len(engine._rings.frames), -1)  # per slot: its last frame's number
        np.maximum.at(last, slots, numbers)
        keep = numbers > last[slots] - engine.window  # each stream's last `window` frames
        engine._rings.write(slots[keep], numbers[keep], new[keep])
        return windows

    def _windows(self, new: np.ndarray, slots: np.ndarray,
                 numbers: np.ndarray) -> list[tuple[int, PendingWindow]]:
        """``StreamClassifier._due_window`` of the dues, grouped by length: one gather
        from the rings, one from the call's frames, one window preparation per length."""
        engine = self.engine
        window = engine.window
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        by_length: dict[int, list[Due]] = {}
        for d in self.dues:
            by_length.setdefault(min(d.count, window), []).append(d)
        out = []
        for t, dues in by_length.items():
            slot = np.array([d.slot for d in dues])
            base = np.array([self.base[d.slot] for d in dues])
            frame = np.array([d.count for d in dues])[:, None] - t + np.arange(t)  # (B, t)
            seqs = engine._rings.frames[slot[:, None], frame % window]  # (B, t, M, V, C)
            old = frame < base[:, None]  # in the ring before this call
            if not old.all():
                start = np.searchsorted(sorted_slots, slot)  # (B,) each stream's first frame
                index = order[np.clip(start[:, None] + frame - base[:, None], 0, None)]
                seqs = np.where(old[:, :, None, None, None], seqs, new[index])
            x, ok = engine.spec.to_windows(seqs.transpose(0, 2, 1, 3, 4))  # (B, window, D)
            engine.skipped_empty += len(dues) - int(ok.sum())  # no body in the window
            out += [(d.position, PendingWindow(d.stream, d.count, d.t, d.now, x[b], d.owner))
                    for b, d in enumerate(dues) if ok[b]]
        return out


def model_frames(frames: np.ndarray, mapping: LayoutMapping | None, bodies: int) -> np.ndarray:
    """Checked frames ``(n, bodies_in, V_frame, C)`` in the model's joints and ``bodies``:
    ``(n, M, V, C)`` (joints mapped by name, bodies fitted), as ``push`` writes them."""
    if mapping is not None:
        frames = mapping.apply(frames)  # (n, bodies_in, V_frame, C) -> (n, bodies_in, V, C)
    return fit_bodies(frames.swapaxes(0, 1), bodies).swapaxes(0, 1)


def push_many(engine: StreamClassifier, streams: Sequence[Hashable],
              frames: Sequence[Any] | np.ndarray, ts: Sequence[float | None] | None = None, *,
              layouts: Sequence[JointLayout | None] | None = None,
              owner: Hashable = None) -> list[Pushed | RestcnError]:
    """``engine.push_many(...)``: see :meth:`StreamClassifier.push_many
    <restcn_infer.streaming.StreamClassifier.push_many>`. Reads and writes the engine's stream
    table, rings and queue as its own ``push`` does."""
    n = len(streams)
    if len(frames) != n or any(x is not None and len(x) != n for x in (ts, layouts)):
        raise ValueError(f"push_many: {n} stream ids need as many frames (got "
                         f"{len(frames)}), timestamps and layouts")
    groups, group, row = check_frames(frames, engine.spec.coords, engine.options.convert)
    results: list[Pushed | RestcnError] = [NOTHING] * n
    batch = PushBatch(engine, groups)
    windows: list[tuple[int, PendingWindow]] = []  # (position, window) of unchecked streams
    with engine._table.holding(batch.base):  # a slot with frames waiting is kept till the end
        try:
            for i, (stream, g, r) in enumerate(zip(streams, group.tolist(), row.tolist())):
                results[i] = _push_one(engine, batch, windows, i, stream, frames[i], g, r,
                                       None if ts is None else ts[i],
                                       None if layouts is None else layouts[i], owner)
        finally:
            windows += batch.finish()
            for _, pending in sorted(windows, key=itemgetter(0)):  # in the frames' order
                engine._enqueue(pending)
    return results


def _push_one(engine: StreamClassifier, batch: PushBatch,
              windows: list[tuple[int, PendingWindow]], i: int, stream: Hashable, frame: Any,
              g: int, r: int, t: float | None, layout: JointLayout | None,
              owner: Hashable) -> Pushed | RestcnError:
    """Frame ``i`` of a :func:`push_many` (``batch.groups[g][r]`` once checked; ``g < 0``: to
    be checked alone): what ``push`` returns or raises for it. A checked stream's frame and
    due window are left to ``batch``; an unchecked stream's due window goes to ``windows``."""
    now = engine.clock()
    state = engine._streams.get(stream)
    if state is not None and state.refused is not None:
        return StreamRefusedError(stream_source(stream), state.refused)
    try:
        if g < 0:  # checked alone: its error, or a group of its own
            g, r = batch.add(check_frame(frame, engine.spec, engine.options.convert,
                                         stream_source(stream)))
        state, new, notice, t = engine._admit(stream, state, batch.groups[g].shape[1:], t,
                                              layout, owner, now)
    except (SkeletonFormatError, StreamLimitError) as exc:
        return exc
    if state.checked:  # the usual case: deferred, whole-array
        batch.write(state, g, r)
        state.advance(t, now)
        if state.count % engine.hop == 0:
            batch.due(i, stream, state, t, now)
    else:  # as push does: its check may refuse the stream
        engine._write(state, batch.groups[g][r], t, now)
        if state.count % engine.hop == 0:
            try:
                pending, accepted = engine._due_window(stream, state, t, now)
            except SkeletonFormatError as exc:
                return exc
            notice = accepted or notice
            if pending is not None:
                windows.append((i, pending))
    return Pushed(new, notice) if new or notice else NOTHING
