"""Classify many live skeleton streams at once: a ring buffer per stream, one batched session call.

Frames arrive one at a time per stream id. Every ``hop`` frames a stream is *due*: its last
``window`` frames (fewer at the start) go through the same preprocessing as a file (the model's
window policy brings any length to the model's window), and the resulting input waits in a
queue. :meth:`StreamClassifier.poll` runs every queued input of every stream in one
``Classifier.run`` call and returns one :class:`StreamDecision` each::

    sc = StreamClassifier(Classifier("model.onnx"), hop=8)
    for stream_id, frame in frames:        # frame: (bodies, V, C) or (V, C), C: the model's
        sc.push(stream_id, frame)          # SkeletonFormatError: that frame is rejected, no more
    for decision in sc.poll():             # one batched session call for all due streams
        ...

Decisions do not depend on how pushes and polls interleave: the window is taken when the stream
becomes due, so a recorded sequence fed frame by frame gets exactly the decisions that ``classify``
gives on the same windows. For asyncio servers, :meth:`StreamClassifier.take_ready` (cheap, on the
event loop) and :meth:`StreamClassifier.decide` (the session call, safe in a worker thread while
pushes go on) split :meth:`poll` in two.

What a stream is bound to by its first frame:

- its **layout**: declared (``push(..., layout=)``, else ``options.layout``) or guessed from the
  joint count; frames of another layout than the model's are mapped by joint name (an NTU
  25-joint frame for a ``kinect20`` model), and :meth:`push` returns a notice saying so once;
- its **body count**: a frame with another number of bodies is rejected (send an absent body
  as zeros). Bodies beyond the model's are dropped, missing ones are zeros.

Every frame has the model's coordinates per joint (3: x, y, z; 2: x, y for a 2-D model); a
frame of the other kind is rejected with what the model reads, so a stream keeps its
coordinate count.

A stream is checked for plausibility (:mod:`restcn_infer.plausibility`) on its first due
window with a body: an implausible stream raises :class:`~restcn_infer.plausibility.
ImplausibleInputError` once and is *refused*: its later frames raise
:class:`StreamRefusedError`, which a protocol counts without another error record.

Bounded under any input: ``max_streams`` live streams (``max_streams_per_owner`` of one owner,
e.g. one server client), ``max_pending`` queued windows (``max_pending_per_owner`` per owner; the
oldest is dropped and counted in :attr:`StreamClassifier.dropped`), and :meth:`take_ready` serves
owners round-robin, so one flooding owner cannot starve the others.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from restcn_infer.classifier import finite_rows
from restcn_infer.errors import LayoutError, ModelError, RestcnError, SkeletonFormatError
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import JointLayout, LayoutMapping, layout_mapping
from restcn_infer.limits import COORDS, MAX_ABS_COORDINATE
from restcn_infer.plausibility import ImplausibleInputError, InputChecker
from restcn_infer.preprocess import fit_bodies, unflatten
from restcn_infer.spec import MAX_WINDOW
from restcn_infer.stream_ingest import MAX_BODIES_PER_FRAME, RingPool, check_frames

log = logging.getLogger("restcn_infer")


class StreamLimitError(RestcnError, ValueError):
    """A new stream was refused because ``max_streams`` (or the owner's share) are live."""


class StreamRefusedError(SkeletonFormatError):
    """A frame for a stream refused earlier as implausible: dropped, already reported once."""


@dataclass(frozen=True)
class StreamDecision:
    """One classification of one stream's current window, or why there is none.

    Attributes:
        stream: the stream id given to :meth:`StreamClassifier.push`.
        frame: frames the stream had received when the decision fell due (1-based count).
        t: the timestamp pushed with that frame, if any.
        top: the ``top_k`` predictions, most probable first (empty with an ``error``).
        latency_ms: from the push of that frame to the decision being ready.
        decoded: with ``decode=True``, the decoded skeletons of the window, float32
            ``(L, bodies, window, V, C)`` for the model's ``metadata.decoder_layers``; else None.
        error: why this window got no answer (non-finite scores, a refused stream at flush).
    """

    stream: Hashable
    frame: int
    t: float | None
    top: list[Any]
    latency_ms: float
    decoded: np.ndarray | None = None
    error: str | None = None


@dataclass(frozen=True)
class PendingWindow:
    """A due window waiting for the batched session call: ``x`` is the model input (T, D)."""

    stream: Hashable
    frame: int
    t: float | None
    arrived: float
    x: np.ndarray
    owner: Hashable = None


class Pushed(NamedTuple):
    """What :meth:`StreamClassifier.push` has to say: whether it opened the stream, and a
    notice to pass on once (layout mapped, implausible input accepted), or None."""

    new_stream: bool
    notice: str | None = None


class _Stream:
    """One stream: its ring buffer is slot ``slot`` of the classifier's :class:`RingPool`."""

    __slots__ = ("slot", "count", "last_seen", "last_t", "decided", "layout", "guessed",
                 "mapping", "bodies_in", "checked", "refused", "owner")

    def __init__(self, slot: int, layout: JointLayout, guessed: bool,
                 mapping: LayoutMapping | None, bodies_in: int, owner: Hashable) -> None:
        self.slot = slot
        self.count = 0
        self.last_seen = 0.0
        self.last_t: float | None = None
        self.decided = 0  # frame count at the last queued decision
        self.layout = layout  # the frames' own layout
        self.guessed = guessed
        self.mapping = mapping  # frame joints -> model joints, None: the model's layout
        self.bodies_in = bodies_in  # bodies of every frame of this stream
        self.checked = False  # passed the plausibility check
        self.refused: str | None = None
        self.owner = owner


#: What :meth:`StreamClassifier.push` says of most frames: an open stream, nothing to tell.
_NOTHING = Pushed(False)


def _source(stream: Hashable) -> str:
    """How an error names a stream."""
    return f"stream {stream!r}"


class _Due(NamedTuple):
    """A window of a checked stream that fell due in :meth:`StreamClassifier.push_many`."""

    position: int  # of the frame that made it due
    stream: Hashable
    slot: int
    count: int  # the stream's frames then
    t: float | None
    now: float
    owner: Hashable


class _Batch:
    """The deferred work of one :meth:`StreamClassifier.push_many` for streams checked for
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
        self.dues: list[_Due] = []

    def add(self, frame: np.ndarray) -> tuple[int, int]:
        """A frame checked alone, as a group of its own: ``(group, row)``."""
        self.groups.append(frame[None])
        return len(self.groups) - 1, 0

    def write(self, state: _Stream, group: int, row: int) -> None:
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

    def due(self, position: int, stream: Hashable, state: _Stream, t: float | None,
            now: float) -> None:
        """The stream's window is due with the frame at ``position``."""
        state.decided = state.count
        self.dues.append(_Due(position, stream, state.slot, state.count, t, now, state.owner))

    def finish(self) -> list[tuple[int, PendingWindow]]:
        """Prepare the due windows and write the waiting frames; ``(position, window)`` of
        each due window with a body."""
        if not self.slots:
            return []
        engine = self.engine
        new = np.empty((len(self.slots), *engine._rings.frames.shape[2:]), np.float32)
        for (group, _), (index, rows, mapping) in self.buckets.items():
            new[index] = engine._model_frames(self.groups[group][rows], mapping)  # (n, M, V, C)
        slots, numbers = np.array(self.slots), np.array(self.numbers)
        windows = self._windows(new, slots, numbers) if self.dues else []
        last = np.full(len(engine._rings.frames), -1)  # per slot: its last frame's number
        np.maximum.at(last, slots, numbers)
        keep = numbers > last[slots] - engine.window  # each stream's last `window` frames
        engine._rings.write(slots[keep], numbers[keep], new[keep])
        return windows

    def _windows(self, new: np.ndarray, slots: np.ndarray,
                 numbers: np.ndarray) -> list[tuple[int, PendingWindow]]:
        """:meth:`StreamClassifier._due_window` of the dues, grouped by length: one gather
        from the rings, one from the call's frames, one window preparation per length."""
        engine = self.engine
        window = engine.window
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        by_length: dict[int, list[_Due]] = {}
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


class StreamClassifier:
    """Per-stream ring buffers in front of one classifier; decisions batched across streams.

    Args:
        classifier: a :class:`restcn_infer.classifier.Classifier` (anything with its
            ``metadata``, ``spec``, ``run`` and ``predict``).
        hop: a stream is due every ``hop`` frames, from its ``hop``-th frame on.
        window: frames of history per decision (default: the model's window); the model's
            window policy maps them to the model's input length, as for a file.
        top_k: predictions per decision.
        decode: also return the decoded skeletons of each window (the model needs a decoder head).
        idle_timeout_s: a stream that received no frame for this long is forgotten.
        max_streams: live streams at most; a frame for a new stream beyond it raises
            :class:`StreamLimitError` (bounded memory under any input).
        max_batch: inputs per session call at most; a larger backlog is split (bounded memory).
        options: how to read frames (layout, units, flip-y, accept implausible); default: the
            classifier's ``options``, else :class:`InputOptions`'s defaults.
        max_streams_per_owner: live streams of one owner at most (None: no share).
        max_pending: queued windows at most, all owners together.
        max_pending_per_owner: queued windows of one owner at most.
        clock: seconds, monotonic (tests and benchmarks may pass their own).
    """

    def __init__(
        self,
        classifier: Any,
        *,
        hop: int = 8,
        window: int | None = None,
        top_k: int = 5,
        decode: bool = False,
        idle_timeout_s: float = 60.0,
        max_streams: int = 10_000,
        max_batch: int = 256,
        options: InputOptions | None = None,
        max_streams_per_owner: int | None = None,
        max_pending: int = 65_536,
        max_pending_per_owner: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        meta = classifier.metadata
        self.classifier = classifier
        self.spec = classifier.spec.input
        self.window = self.spec.window if window is None else int(window)
        for name, value in (("hop", hop), ("window", self.window), ("top_k", top_k),
                            ("max_streams", max_streams), ("max_batch", max_batch),
                            ("max_pending", max_pending),
                            ("max_streams_per_owner", max_streams_per_owner or 1),
                            ("max_pending_per_owner", max_pending_per_owner or 1)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.window > MAX_WINDOW:  # the ring buffer of every stream is this long
            raise ValueError(f"window must be <= {MAX_WINDOW}, got {self.window}")
        if idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s}")
        if decode and not meta.decoder_layers:
            raise ModelError("decode=True but the model was exported without a decoder head")
        self.hop = int(hop)
        self.top_k = int(top_k)
        self.decode = bool(decode)
        self.idle_timeout_s = float(idle_timeout_s)
        self.max_streams = int(max_streams)
        self.max_batch = int(max_batch)
        self.max_streams_per_owner = max_streams_per_owner
        self.max_pending = int(max_pending)
        self.max_pending_per_owner = max_pending_per_owner
        self.clock = clock
        self.options = options or getattr(classifier, "options", None) or InputOptions()
        self.options.check_model(self.spec)
        self.checker = InputChecker(classifier.spec,
                                    accept_implausible=self.options.accept_implausible)
        self.bodies = self.spec.bodies
        self.layout = self.spec.layout
        self._rings = RingPool(self.window, (self.bodies, self.layout.num_joints,
                                             self.spec.coords))
        self._held: list[int] | None = None  # slots forgotten during a push_many
        self._streams: OrderedDict[Hashable, _Stream] = OrderedDict()  # least recent first
        self._owned: dict[Hashable, set[Hashable]] = {}
        self._ready: OrderedDict[Hashable, deque[PendingWindow]] = OrderedDict()  # per owner
        self._num_ready = 0
        self.skipped_empty = 0  # due windows without any body: no decision
        self.dropped = 0  # queued windows dropped to keep the pending bounds

    # -- state --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live streams."""
        return len(self._streams)

    def __contains__(self, stream: Hashable) -> bool:
        return stream in self._streams

    @property
    def num_ready(self) -> int:
        """Due windows waiting for :meth:`poll`."""
        return self._num_ready

    def pending_of(self, owner: Hashable) -> int:
        """Due windows of ``owner`` waiting for a session call."""
        queue = self._ready.get(owner)
        return len(queue) if queue else 0

    def streams_of(self, owner: Hashable) -> int:
        """Live streams of ``owner``."""
        return len(self._owned.get(owner, ()))

    def forget(self, stream: Hashable) -> None:
        """Drop a stream's buffer (e.g. its client disconnected); queued windows still run."""
        state = self._streams.pop(stream, None)
        if state is not None:
            if self._held is not None:  # inside push_many: its frames may still be waiting
                self._held.append(state.slot)
            else:
                self._rings.release(state.slot)
            owned = self._owned.get(state.owner)
            if owned is not None:
                owned.discard(stream)
                if not owned:
                    del self._owned[state.owner]

    def forget_owner(self, owner: Hashable) -> None:
        """Drop every stream of ``owner`` and its queued windows (a closed connection)."""
        for stream in list(self._owned.get(owner, ())):
            self.forget(stream)
        queue = self._ready.pop(owner, None)
        if queue:
            self._num_ready -= len(queue)

    def evict_idle(self, now: float | None = None) -> list[Hashable]:
        """Forget streams idle for longer than ``idle_timeout_s``; returns their ids."""
        now = self.clock() if now is None else now
        gone = []
        while self._streams:
            stream, state = next(iter(self._streams.items()))
            if now - state.last_seen <= self.idle_timeout_s:
                break
            self.forget(stream)
            gone.append(stream)
        return gone

    # -- input --------------------------------------------------------------------------------

    def check_frame(self, frame: Any, source: str = "<frame>") -> np.ndarray:
        """Validate one frame and return it as float32 ``(bodies_in, V, C)``, in the model's
        units (``options`` applied), in the frame's own joint order.

        Raises:
            SkeletonFormatError: not numeric, wrong shape, too many bodies, not the model's
                coordinates per joint, NaN/inf, or coordinates beyond any unit's range.
        """
        c = self.spec.coords
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
        self.spec.check_coords(a.shape[2], source)
        if not np.isfinite(a).all():
            raise SkeletonFormatError(source, "frame contains NaN or infinite coordinates")
        a = self.options.convert(a)
        if float(np.abs(a).max(initial=0.0)) > MAX_ABS_COORDINATE:
            raise SkeletonFormatError(source, f"coordinates beyond {MAX_ABS_COORDINATE:g} in "
                                              "any unit: not a body")
        return a

    def _open(self, stream: Hashable, shape: tuple[int, ...], layout: JointLayout | None,
              owner: Hashable, now: float) -> tuple[_Stream, str | None]:
        """A new stream bound to the layout and body count of its first frame (``shape``
        ``(bodies, V, C)``), and its notice."""
        source = _source(stream)
        if len(self._streams) >= self.max_streams:
            self.evict_idle(now)
        if len(self._streams) >= self.max_streams:
            raise StreamLimitError(f"{source}: refused, {self.max_streams} streams are already "
                                   "live")
        if (self.max_streams_per_owner is not None
                and self.streams_of(owner) >= self.max_streams_per_owner):
            raise StreamLimitError(f"{source}: refused, this client already has "
                                   f"{self.max_streams_per_owner} live streams")
        found, guessed = self.spec.resolve_layout(shape[1], layout or self.options.layout,
                                                  source)
        try:
            mapping = (None if found.name == self.layout.name
                       else layout_mapping(found, self.layout))
        except LayoutError as exc:
            raise SkeletonFormatError(source, str(exc)) from None
        state = _Stream(self._rings.take(self.max_streams), found, guessed, mapping, shape[0],
                        owner)
        self._streams[stream] = state
        self._owned.setdefault(owner, set()).add(stream)
        note = getattr(self.classifier, "note_layout", None)
        if note is not None:
            note(found, guessed)
        notice = None
        if mapping is not None:
            how = (f"guessed from its {found.num_joints} joints; declare it with \"layout\""
                   if guessed else "declared")
            derived = "".join(f"; {name} = mean of {', '.join(parts)}"
                              for name, parts in mapping.derived.items())
            notice = (f"joints in layout {found.name} ({how}), mapped by joint name to the "
                      f"model's layout {self.layout.name}{derived}")
        return state, notice

    def push(self, stream: Hashable, frame: Any, t: float | None = None, *,
             layout: JointLayout | None = None, owner: Hashable = None) -> Pushed:
        """Append one frame to ``stream`` (created on first use); queue a window when due.

        Args:
            stream: any hashable id.
            frame: ``(bodies, V, C)`` or ``(V, C)`` raw coordinates, C the model's, V of any
                known layout that maps to the model's.
            t: optional timestamp; it must not go back within a stream.
            layout: the frame's declared layout; it must not change within a stream.
            owner: who the stream belongs to (a server client), for the per-owner limits.

        Raises:
            SkeletonFormatError: a bad frame; it is dropped and the stream is unchanged.
            ImplausibleInputError: the stream's first due window is unlike the training data;
                the stream is refused from now on.
            StreamRefusedError: a frame of a refused stream (dropped, reported before).
            StreamLimitError: a new stream beyond ``max_streams`` or the owner's share.
        """
        state = self._streams.get(stream)
        if state is not None and state.refused is not None:
            raise StreamRefusedError(_source(stream), state.refused)
        a = self.check_frame(frame, _source(stream))
        now = self.clock()
        state, new, notice, t = self._admit(stream, state, a.shape, t, layout, owner, now)
        self._write(state, a, t, now)
        if state.count % self.hop == 0:
            accepted = self._queue(stream, state, t, now)
            notice = accepted or notice
        return Pushed(new, notice)

    def push_many(self, streams: Sequence[Hashable], frames: Sequence[Any] | np.ndarray,
                  ts: Sequence[float | None] | None = None, *,
                  layouts: Sequence[JointLayout | None] | None = None,
                  owner: Hashable = None) -> list[Pushed | RestcnError]:
        """:meth:`push` of many frames of many streams at once: ``frames[i]`` to ``streams[i]``
        at ``ts[i]`` declaring ``layouts[i]`` (None or a None entry: not given), all of
        ``owner``, in order.

        Returns per frame what :meth:`push` returns or raises for it, with the same effect on
        every stream and queue as pushing the frames one by one: a :class:`Pushed`, or the
        error, returned rather than raised (a ``SkeletonFormatError``, ``ImplausibleInputError``
        or ``StreamRefusedError``, or a ``StreamLimitError``); a bad frame costs only itself.

        The frame checks, the ring buffer writes and the preparation of the due windows are
        whole-array steps for all frames of one shape (:mod:`restcn_infer.stream_ingest`);
        what remains per frame is bookkeeping (a stream before its plausibility check, its first
        window with a body, goes frame by frame). ``frames`` may be one array
        ``(N, bodies, V, C)`` or ``(N, V, C)``, or a sequence of frames as :meth:`push` takes
        them.

        Raises:
            ValueError: ``frames``, ``ts`` or ``layouts`` not one per stream id.
        """
        n = len(streams)
        if len(frames) != n or any(x is not None and len(x) != n for x in (ts, layouts)):
            raise ValueError(f"push_many: {n} stream ids need as many frames (got "
                             f"{len(frames)}), timestamps and layouts")
        groups, group, row = check_frames(frames, self.spec.coords, self.options.convert)
        results: list[Pushed | RestcnError] = [_NOTHING] * n
        batch = _Batch(self, groups)
        windows: list[tuple[int, PendingWindow]] = []  # (position, window) of unchecked streams
        self._held = []  # a stream forgotten meanwhile keeps its slot until its frames are in
        try:
            for i, (stream, g, r) in enumerate(zip(streams, group.tolist(), row.tolist())):
                now = self.clock()
                state = self._streams.get(stream)
                if state is not None and state.refused is not None:
                    results[i] = StreamRefusedError(_source(stream), state.refused)
                    continue
                try:
                    if g < 0:  # checked alone: its error, or a group of its own
                        g, r = batch.add(self.check_frame(frames[i], _source(stream)))
                    state, new, notice, t = self._admit(
                        stream, state, groups[g].shape[1:], None if ts is None else ts[i],
                        None if layouts is None else layouts[i], owner, now)
                except (SkeletonFormatError, StreamLimitError) as exc:
                    results[i] = exc
                    continue
                if state.checked:  # the usual case: deferred, whole-array
                    batch.write(state, g, r)
                    self._advance(state, t, now)
                    if state.count % self.hop == 0:
                        batch.due(i, stream, state, t, now)
                else:  # as push does: its check may refuse the stream
                    self._write(state, groups[g][r], t, now)
                    if state.count % self.hop == 0:
                        try:
                            pending, accepted = self._due_window(stream, state, t, now)
                        except SkeletonFormatError as exc:
                            results[i] = exc
                            continue
                        notice = accepted or notice
                        if pending is not None:
                            windows.append((i, pending))
                results[i] = Pushed(new, notice) if new or notice else _NOTHING
        finally:
            windows += batch.finish()
            for slot in self._held:
                self._rings.release(slot)
            self._held = None
            for _, pending in sorted(windows, key=itemgetter(0)):  # in the frames' order
                self._enqueue(pending)
        return results

    def _admit(self, stream: Hashable, state: _Stream | None, shape: tuple[int, ...],
               t: float | None, layout: JointLayout | None, owner: Hashable,
               now: float) -> tuple[_Stream, bool, str | None, float | None]:
        """A checked frame of ``shape`` ``(bodies, V, C)`` meets its stream (opened here on its
        first frame): its timestamp, layout and body count. Returns ``(state, new stream,
        notice, t)``.

        Raises:
            SkeletonFormatError: the frame does not fit the stream; the stream is unchanged.
            StreamLimitError: a new stream beyond the limits.
        """
        if t is not None:
            t = float(t)
            if not math.isfinite(t):
                raise SkeletonFormatError(_source(stream), f"timestamp must be finite, got {t}")
        if state is None:
            state, notice = self._open(stream, shape, layout, owner, now)
            return state, True, notice, t
        self._check_same(state, shape, layout, stream)
        if t is not None and state.last_t is not None and t < state.last_t:
            raise SkeletonFormatError(
                _source(stream), f"timestamp {t} goes back (last frame had {state.last_t})"
            )
        self._streams.move_to_end(stream)
        return state, False, None, t

    def _write(self, state: _Stream, a: np.ndarray, t: float | None, now: float) -> None:
        """Write a checked frame ``(bodies_in, V_frame, C)`` as the stream's next one."""
        if state.mapping is not None:
            a = state.mapping.apply(a)  # (bodies_in, V_frame, C) -> (bodies_in, V, C)
        slot = self._rings.frames[state.slot, state.count % self.window]  # (M, V, C) view
        kept = min(a.shape[0], self.bodies)
        slot[:kept] = a[:kept]
        slot[kept:] = 0.0
        self._advance(state, t, now)

    @staticmethod
    def _advance(state: _Stream, t: float | None, now: float) -> None:
        """Count a frame written (or waiting to be written) into the stream's ring."""
        state.count += 1
        state.last_seen = now
        state.last_t = t if t is not None else state.last_t

    def _check_same(self, state: _Stream, shape: tuple[int, ...], layout: JointLayout | None,
                    stream: Hashable) -> None:
        """A later frame (of ``shape`` ``(bodies, V, C)``) must keep the stream's layout and
        body count."""
        if layout is not None and layout.name != state.layout.name:
            raise SkeletonFormatError(_source(stream), f"declares layout {layout.name}, but the "
                                                       f"stream is in layout {state.layout.name}"
                                                       " (start a new stream for another "
                                                       "layout)")
        if shape[1] != state.layout.num_joints:
            raise SkeletonFormatError(_source(stream), f"has {shape[1]} joints, but the "
                                                       "stream's frames have "
                                                       f"{state.layout.num_joints} "
                                                       f"({state.layout.name}); a stream keeps "
                                                       "its layout")
        if shape[0] != state.bodies_in:
            raise SkeletonFormatError(_source(stream), f"has {shape[0]} bodies, but the "
                                                       "stream's frames have "
                                                       f"{state.bodies_in}; a stream keeps its "
                                                       "body count (send an absent body as "
                                                       "zeros)")

    def _queue(self, stream: Hashable, state: _Stream, t: float | None,
               now: float) -> str | None:
        """Queue the stream's current window (:meth:`_due_window`); returns its notice.

        Raises:
            ImplausibleInputError: the first checked window is implausible (stream refused).
        """
        pending, notice = self._due_window(stream, state, t, now)
        if pending is not None:
            self._enqueue(pending)
        return notice

    def _due_window(self, stream: Hashable, state: _Stream, t: float | None,
                    now: float) -> tuple[PendingWindow | None, str | None]:
        """The stream's current window as a model input (None: no body in it); checks
        plausibility on the first one with a body. Also returns a notice when an implausible
        stream was accepted anyway.

        Raises:
            ImplausibleInputError: the first checked window is implausible (stream refused).
        """
        state.decided = state.count
        seq = self._rings.recent(state.slot, state.count)  # (M, t, V, C), model layout, a copy
        notice = None
        if not state.checked and np.any(seq != 0):
            source = _source(stream)
            try:
                verdict = self.checker.check(seq, source=source, layout=state.layout.name,
                                             guessed=state.guessed,
                                             converted=self.options.describe())
            except SkeletonFormatError as exc:
                state.refused = (f"refused earlier: {exc.reason}" if not isinstance(
                    exc, ImplausibleInputError) else "refused earlier as implausible")
                raise
            state.checked = True
            if verdict.accepted:
                notice = "accepted although implausible: " + "; ".join(verdict.problems)
        try:
            x = self.spec.to_window(seq)  # (M, t, V, C) -> (window, D)
        except SkeletonFormatError:  # no body in the whole window: nothing to classify
            self.skipped_empty += 1
            return None, notice
        return PendingWindow(stream, state.count, t, now, x, state.owner), notice

    def _model_frames(self, frames: np.ndarray, mapping: LayoutMapping | None) -> np.ndarray:
        """Checked frames ``(n, bodies_in, V_frame, C)`` in the model's joints and bodies
        ``(n, M, V, C)`` (joints mapped by name, bodies fitted), as :meth:`push` writes them."""
        if mapping is not None:
            frames = mapping.apply(frames)  # (n, bodies_in, V_frame, C) -> (n, bodies_in, V, C)
        return fit_bodies(frames.swapaxes(0, 1), self.bodies).swapaxes(0, 1)

    def _enqueue(self, pending: PendingWindow) -> None:
        queue = self._ready.setdefault(pending.owner, deque())
        if self.max_pending_per_owner is not None and len(queue) >= self.max_pending_per_owner:
            queue.popleft()
            self._num_ready -= 1
            self.dropped += 1
        if self._num_ready >= self.max_pending:
            longest = max(self._ready.values(), key=len)
            longest.popleft()
            self._num_ready -= 1
            self.dropped += 1
        queue.append(pending)
        self._num_ready += 1

    # -- decisions ----------------------------------------------------------------------------

    def take_ready(self, limit: int | None = None) -> list[PendingWindow]:
        """Remove and return queued windows, at most ``limit``, owners served round-robin
        (one window of each owner in turn, the next call starting after the last served);
        also forgets idle streams."""
        taken: list[PendingWindow] = []
        limit = self._num_ready if limit is None else limit
        while self._ready and len(taken) < limit:
            owner, queue = next(iter(self._ready.items()))
            if len(self._ready) == 1:  # one owner: its windows in push order
                while queue and len(taken) < limit:
                    taken.append(queue.popleft())
            else:
                taken.append(queue.popleft())
            if queue:
                self._ready.move_to_end(owner)
            else:
                del self._ready[owner]
        self._num_ready -= len(taken)
        self.evict_idle()
        return taken

    def decide(self, ready: list[PendingWindow]) -> list[StreamDecision]:
        """Classify ``ready`` in ``ceil(len / max_batch)`` session calls (one in normal load).

        A window whose scores (or decoded skeletons) are not finite gets a decision with
        ``error`` set. Touches no stream state, so an asyncio server may run it in a worker
        thread.
        """
        decisions: list[StreamDecision] = []
        for start in range(0, len(ready), self.max_batch):
            chunk = ready[start:start + self.max_batch]
            batch = np.stack([p.x for p in chunk])  # B x (T, D) -> (B, T, D)
            logits, decoded = self.classifier.run(batch, decode=self.decode)
            ok = finite_rows(logits, decoded)
            tops = iter(self.classifier.predict(logits[ok], top_k=self.top_k) if ok.any()
                        else [])
            if decoded is not None:
                decoded = unflatten(decoded, self.bodies, self.spec.coords)  # (B,L,M,T,V,C)
            done = self.clock()
            for i, p in enumerate(chunk):
                latency = (done - p.arrived) * 1000.0
                if not ok[i]:
                    decisions.append(StreamDecision(
                        p.stream, p.frame, p.t, [], latency,
                        error="the model's scores for this window are not finite (NaN or "
                              "infinity): the input lies far outside what the model handles"))
                    continue
                decisions.append(StreamDecision(
                    stream=p.stream, frame=p.frame, t=p.t, top=next(tops), latency_ms=latency,
                    decoded=None if decoded is None else decoded[i],
                ))
        return decisions

    def decide_safely(self, ready: list[PendingWindow]) -> list[StreamDecision]:
        """:meth:`decide`, one session call at a time, where a failure of the call itself (a
        bug, onnxruntime failing) is logged with its traceback and becomes an error decision
        for each window of that call: a serving loop answers every window and goes on. The
        one place in the runtime that catches any exception."""
        decisions: list[StreamDecision] = []
        for start in range(0, len(ready), self.max_batch):
            chunk = ready[start:start + self.max_batch]
            try:
                decisions += self.decide(chunk)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.exception("deciding %d stream windows failed", len(chunk))
                reason = (f"internal error while deciding this window ({type(exc).__name__}: "
                          f"{exc})")[:300]
                decisions += [StreamDecision(p.stream, p.frame, p.t, [], 0.0, error=reason)
                              for p in chunk]
        return decisions

    def poll(self) -> list[StreamDecision]:
        """Decisions for every window that fell due since the last poll, in push order."""
        return self.decide(self.take_ready())

    def _queue_remaining(self) -> list[StreamDecision]:
        """Queue every stream's frames since its last due window; refusals as decisions."""
        now = self.clock()
        refused = []
        for stream, state in list(self._streams.items()):
            if state.count > state.decided and state.refused is None:
                try:
                    self._queue(stream, state, state.last_t, now)
                except SkeletonFormatError as exc:
                    refused.append(StreamDecision(stream, state.count, state.last_t, [], 0.0,
                                                  error=exc.reason))
        return refused

    def flush(self) -> list[StreamDecision]:
        """End of input: also decide every stream on the frames since its last due window.
        A stream refused at this point gets a decision with ``error`` set."""
        refused = self._queue_remaining()
        return refused + self.poll()

    def flush_safely(self) -> list[StreamDecision]:
        """:meth:`flush` through :meth:`decide_safely`."""
        refused = self._queue_remaining()
        return refused + self.decide_safely(self.take_ready())

