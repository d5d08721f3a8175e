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
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from restcn_infer.classifier import finite_rows
from restcn_infer.errors import LayoutError, ModelError, RestcnError, SkeletonFormatError
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import JointLayout, LayoutMapping, layout_mapping
from restcn_infer.limits import COORDS, MAX_ABS_COORDINATE
from restcn_infer.plausibility import ImplausibleInputError, InputChecker
from restcn_infer.preprocess import unflatten
from restcn_infer.spec import MAX_WINDOW

log = logging.getLogger("restcn_infer")

#: Bodies a single frame may carry (Kinect tracks at most 6); more is a malformed frame.
MAX_BODIES_PER_FRAME = 6


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
    """Ring buffer of one stream: ``frames[(count - 1) % window]`` is the newest frame."""

    __slots__ = ("frames", "count", "last_seen", "last_t", "decided", "layout", "guessed",
                 "mapping", "bodies_in", "checked", "refused", "owner")

    def __init__(self, window: int, bodies: int, joints: int, coords: int, layout: JointLayout,
                 guessed: bool, mapping: LayoutMapping | None, bodies_in: int,
                 owner: Hashable) -> None:
        self.frames = np.zeros((window, bodies, joints, coords), dtype=np.float32)  # (W,M,V,C)
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

    def recent(self) -> np.ndarray:
        """A copy of the last ``min(count, window)`` frames in time order, ``(M, t, V, C)``.

        A copy, never a view: preprocessing may hand back its input unchanged, and a queued
        window must not change when the ring buffer moves on.
        """
        window = self.frames.shape[0]
        if self.count <= window:
            ordered = self.frames[: self.count].copy()
        else:
            start = self.count % window  # slot of the oldest frame
            ordered = np.concatenate((self.frames[start:], self.frames[:start]))
        return ordered.transpose(1, 0, 2, 3)  # (t, M, V, C) -> (M, t, V, C)


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

    def _open(self, stream: Hashable, a: np.ndarray, layout: JointLayout | None,
              owner: Hashable, source: str, now: float) -> tuple[_Stream, str | None]:
        """A new stream bound to the first frame's layout and body count, and its notice."""
        if len(self._streams) >= self.max_streams:
            self.evict_idle(now)
        if len(self._streams) >= self.max_streams:
            raise StreamLimitError(f"{source}: refused, {self.max_streams} streams are already "
                                   "live")
        if (self.max_streams_per_owner is not None
                and self.streams_of(owner) >= self.max_streams_per_owner):
            raise StreamLimitError(f"{source}: refused, this client already has "
                                   f"{self.max_streams_per_owner} live streams")
        found, guessed = self.spec.resolve_layout(a.shape[1], layout or self.options.layout,
                                                  source)
        try:
            mapping = (None if found.name == self.layout.name
                       else layout_mapping(found, self.layout))
        except LayoutError as exc:
            raise SkeletonFormatError(source, str(exc)) from None
        state = _Stream(self.window, self.bodies, self.layout.num_joints, self.spec.coords, found,
                        guessed, mapping, a.shape[0], owner)
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
        source = f"stream {stream!r}"
        state = self._streams.get(stream)
        if state is not None and state.refused is not None:
            raise StreamRefusedError(source, state.refused)
        a = self.check_frame(frame, source)
        if t is not None:
            t = float(t)
            if not np.isfinite(t):
                raise SkeletonFormatError(source, f"timestamp must be finite, got {t}")
        now = self.clock()
        notice = None
        new = state is None
        if state is None:
            state, notice = self._open(stream, a, layout, owner, source, now)
        else:
            self._check_same(state, a, layout, source)
            if t is not None and state.last_t is not None and t < state.last_t:
                raise SkeletonFormatError(
                    source, f"timestamp {t} goes back (last frame had {state.last_t})"
                )
            self._streams.move_to_end(stream)
        if state.mapping is not None:
            a = state.mapping.apply(a)  # (bodies_in, V_frame, C) -> (bodies_in, V, C)
        slot = state.frames[state.count % self.window]  # (M, V, C) view into the ring
        kept = min(a.shape[0], self.bodies)
        slot[:kept] = a[:kept]
        slot[kept:] = 0.0
        state.count += 1
        state.last_seen = now
        state.last_t = t if t is not None else state.last_t
        if state.count % self.hop == 0:
            accepted = self._queue(stream, state, t, now)
            notice = accepted or notice
        return Pushed(new, notice)

    def _check_same(self, state: _Stream, a: np.ndarray, layout: JointLayout | None,
                    source: str) -> None:
        """A later frame must keep the stream's layout and body count."""
        if layout is not None and layout.name != state.layout.name:
            raise SkeletonFormatError(source, f"declares layout {layout.name}, but the stream "
                                              f"is in layout {state.layout.name} (start a new "
                                              "stream for another layout)")
        if a.shape[1] != state.layout.num_joints:
            raise SkeletonFormatError(source, f"has {a.shape[1]} joints, but the stream's frames "
                                              f"have {state.layout.num_joints} "
                                              f"({state.layout.name}); a stream keeps its layout")
        if a.shape[0] != state.bodies_in:
            raise SkeletonFormatError(source, f"has {a.shape[0]} bodies, but the stream's frames "
                                              f"have {state.bodies_in}; a stream keeps its body "
                                              "count (send an absent body as zeros)")

    def _queue(self, stream: Hashable, state: _Stream, t: float | None,
               now: float) -> str | None:
        """Queue the stream's current window; checks plausibility on the first one with a
        body. Returns a notice when an implausible stream was accepted anyway.

        Raises:
            ImplausibleInputError: the first checked window is implausible (stream refused).
        """
        state.decided = state.count
        seq = state.recent()  # (M, t, V, C) in the model's layout
        notice = None
        if not state.checked and np.any(seq != 0):
            source = f"stream {stream!r}"
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
            return notice
        self._enqueue(PendingWindow(stream, state.count, t, now, x, state.owner))
        return notice

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

