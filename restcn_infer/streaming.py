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

Every frame has the model's coordinates per joint (3: x, y, z; 2: x, y for a 2-D model). A
stream is checked for plausibility (:mod:`restcn_infer.plausibility`) on its first due
window with a body: an implausible stream raises :class:`~restcn_infer.plausibility.
ImplausibleInputError` once and is *refused*: its later frames raise
:class:`StreamRefusedError`, which a protocol counts without another error record.

Bounded under any input: ``max_streams`` live streams (``max_streams_per_owner`` of one owner,
e.g. a server client; :mod:`restcn_infer.stream_table`), ``max_pending`` queued windows
(``max_pending_per_owner`` per owner), served round-robin (:mod:`restcn_infer.stream_queue`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from restcn_infer.errors import ModelError, RestcnError, SkeletonFormatError
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import JointLayout
from restcn_infer.plausibility import ImplausibleInputError, InputChecker
from restcn_infer.spec import MAX_WINDOW
from restcn_infer.stream_batch import model_frames, push_many
from restcn_infer.stream_decide import decide_windows, decide_windows_safely
from restcn_infer.stream_ingest import RingPool, check_frame
from restcn_infer.stream_queue import ReadyQueue, check_at_least_one
from restcn_infer.stream_table import StreamTable, bind_layout
from restcn_infer.stream_types import (
    PendingWindow,
    Pushed,
    StreamDecision,
    StreamLimitError,
    StreamRefusedError,
    StreamState,
    stream_source,
)

__all__ = ["PendingWindow", "Pushed", "StreamClassifier", "StreamDecision", "StreamLimitError",
           "StreamRefusedError"]


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
                            ("max_streams", max_streams), ("max_batch", max_batch)):
            check_at_least_one(name, value)
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
        self.clock = clock
        self.options = options or getattr(classifier, "options", None) or InputOptions()
        self.options.check_model(self.spec)
        self.checker = InputChecker(classifier.spec,
                                    accept_implausible=self.options.accept_implausible)
        self.bodies = self.spec.bodies
        self._rings = RingPool(self.window, (self.bodies, self.spec.layout.num_joints,
                                             self.spec.coords))
        self._table = StreamTable(self._rings)
        self._streams = self._table.streams  # least recently fed first
        self._ready = ReadyQueue(max_pending, max_pending_per_owner)  # owns the pending bounds
        self.set_limits(max_streams_per_owner=max_streams_per_owner, max_pending=max_pending,
                        max_pending_per_owner=max_pending_per_owner)
        self.skipped_empty = 0  # due windows without any body: no decision

    # -- state --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live streams."""
        return len(self._streams)

    def __contains__(self, stream: Hashable) -> bool:
        return stream in self._streams

    @property
    def num_ready(self) -> int:
        """Due windows waiting for :meth:`poll`."""
        return len(self._ready)

    def set_limits(self, *, max_streams_per_owner: int | None, max_pending: int,
                   max_pending_per_owner: int | None) -> None:
        """Change the per-owner and pending bounds (a server sets its clients' shares); None:
        no per-owner bound.

        Raises:
            ValueError: a bound below 1.
        """
        if max_streams_per_owner is not None:
            check_at_least_one("max_streams_per_owner", max_streams_per_owner)
        self._ready.set_bounds(max_pending, max_pending_per_owner)
        self.max_streams_per_owner = max_streams_per_owner

    @property
    def max_pending(self) -> int:
        """Queued windows at most, all owners together (change it with :meth:`set_limits`)."""
        return self._ready.max_pending

    @property
    def dropped(self) -> int:
        """Queued windows dropped to keep the pending bounds."""
        return self._ready.dropped

    def pending_of(self, owner: Hashable) -> int:
        """Due windows of ``owner`` waiting for a session call."""
        return self._ready.of(owner)

    def streams_of(self, owner: Hashable) -> int:
        """Live streams of ``owner``."""
        return self._table.of(owner)

    def forget(self, stream: Hashable) -> None:
        """Drop a stream's buffer (e.g. its client disconnected); queued windows still run."""
        self._table.forget(stream)

    def forget_owner(self, owner: Hashable) -> None:
        """Drop every stream of ``owner`` and its queued windows (a closed connection)."""
        self._table.forget_owner(owner)
        self._ready.drop_owner(owner)

    def evict_idle(self, now: float | None = None) -> list[Hashable]:
        """Forget streams idle for longer than ``idle_timeout_s``; returns their ids."""
        return self._table.evict_idle(self.clock() if now is None else now,
                                      self.idle_timeout_s)

    # -- input --------------------------------------------------------------------------------

    def _open(self, stream: Hashable, shape: tuple[int, ...], layout: JointLayout | None,
              owner: Hashable, now: float) -> tuple[StreamState, str | None]:
        """A new stream bound to the layout and body count of its first frame (``shape``
        ``(bodies, V, C)``), and its notice."""
        source = stream_source(stream)
        if len(self._streams) >= self.max_streams:
            self.evict_idle(now)
        self._table.check_room(source, owner, self.max_streams, self.max_streams_per_owner)
        found, guessed, mapping, notice = bind_layout(self.spec, shape[1],
                                                      layout or self.options.layout, source,
                                                      self._table.mappings)
        state = self._table.open(stream, found, guessed, mapping, shape[0], owner,
                                 self.max_streams)
        note = getattr(self.classifier, "note_layout", None)
        if note is not None:
            note(found, guessed)
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
            raise StreamRefusedError(stream_source(stream), state.refused)
        a = check_frame(frame, self.spec, self.options.convert, stream_source(stream))
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
        return push_many(self, streams, frames, ts, layouts=layouts, owner=owner)

    def _admit(self, stream: Hashable, state: StreamState | None, shape: tuple[int, ...],
               t: float | None, layout: JointLayout | None, owner: Hashable,
               now: float) -> tuple[StreamState, bool, str | None, float | None]:
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
                raise SkeletonFormatError(stream_source(stream),
                                          f"timestamp must be finite, got {t}")
        if state is None:
            state, notice = self._open(stream, shape, layout, owner, now)
            return state, True, notice, t
        state.check_same(shape, layout, stream)
        if t is not None and state.last_t is not None and t < state.last_t:
            raise SkeletonFormatError(
                stream_source(stream), f"timestamp {t} goes back (last frame had {state.last_t})"
            )
        self._table.touch(stream)
        return state, False, None, t

    def _write(self, state: StreamState, a: np.ndarray, t: float | None, now: float) -> None:
        """Write a checked frame ``(bodies_in, V_frame, C)`` as the stream's next one, in the
        model's joints and bodies as ``push_many`` writes its frames (:func:`model_frames`)."""
        frame = model_frames(a[None], state.mapping, self.bodies)[0]  # (M, V, C)
        self._rings.frames[state.slot, state.count % self.window] = frame
        state.advance(t, now)

    def _queue(self, stream: Hashable, state: StreamState, t: float | None,
               now: float) -> str | None:
        """Queue the stream's current window (:meth:`_due_window`); returns its notice.

        Raises:
            ImplausibleInputError: the first checked window is implausible (stream refused).
        """
        pending, notice = self._due_window(stream, state, t, now)
        if pending is not None:
            self._enqueue(pending)
        return notice

    def _due_window(self, stream: Hashable, state: StreamState, t: float | None,
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
            source = stream_source(stream)
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

    def _enqueue(self, pending: PendingWindow) -> None:
        self._ready.add(pending)

    # -- decisions ----------------------------------------------------------------------------

    def take_ready(self, limit: int | None = None) -> list[PendingWindow]:
        """Remove and return queued windows, at most ``limit``, owners served round-robin
        (one window of each owner in turn, the next call starting after the last served);
        also forgets idle streams."""
        taken = self._ready.take(limit)
        self.evict_idle()
        return taken

    def decide(self, ready: list[PendingWindow]) -> list[StreamDecision]:
        """Classify ``ready`` in ``ceil(len / max_batch)`` session calls (one in normal load).

        A window whose scores (or decoded skeletons) are not finite gets a decision with
        ``error`` set (:func:`~restcn_infer.stream_decide.decide_windows`). Touches no stream
        state, so an asyncio server may run it in a worker thread.
        """
        return decide_windows(self.classifier, ready, max_batch=self.max_batch,
                              decode=self.decode, top_k=self.top_k, clock=self.clock)

    def decide_safely(self, ready: list[PendingWindow]) -> list[StreamDecision]:
        """:meth:`decide`, one session call at a time, where a failure of the call itself (a
        bug, onnxruntime failing) is logged with its traceback and becomes an error decision
        for each window of that call: a serving loop answers every window and goes on."""
        return decide_windows_safely(self.decide, ready, self.max_batch)

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

