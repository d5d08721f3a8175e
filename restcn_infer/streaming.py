"""Classify many live skeleton streams at once: a ring buffer per stream, one batched session call.

Frames arrive one at a time per stream id. Every ``hop`` frames a stream is *due*: its last
``window`` frames (fewer at the start) go through the same preprocessing as a file
(:meth:`Classifier.prepare`, i.e. :func:`restcn_infer.preprocess.to_model_input`: the model's
window policy brings any length to the model's window), and the resulting input waits in a queue.
:meth:`StreamClassifier.poll` runs every queued input of every stream in one ``Classifier.run``
call and returns one :class:`StreamDecision` each::

    sc = StreamClassifier(Classifier("model.onnx"), hop=8)
    for stream_id, frame in frames:        # frame: (bodies, V, 3) or (V, 3)
        sc.push(stream_id, frame)          # SkeletonFormatError: that frame is rejected, no more
    for decision in sc.poll():             # one batched session call for all due streams
        ...

Decisions do not depend on how pushes and polls interleave: the window is taken when the stream
becomes due, so a recorded sequence fed frame by frame gets exactly the decisions that ``classify``
gives on the same windows. For asyncio servers, :meth:`StreamClassifier.take_ready` (cheap, on the
event loop) and :meth:`StreamClassifier.decide` (the session call, safe in a worker thread while
pushes go on) split :meth:`poll` in two.

Frames are stored in the model's joint layout: a frame whose joint count names another layout
(an NTU 25-joint frame for a ``kinect20`` model) is mapped by joint name with
:func:`restcn_infer.layouts.joint_map`, the mapping ``prepare`` applies to files. Extra bodies are
dropped and missing ones are zeros, as :func:`restcn_infer.preprocess.fit_bodies` does.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from restcn_infer.errors import LayoutError, ModelError, RestcnError, SkeletonFormatError
from restcn_infer.layouts import joint_map
from restcn_infer.preprocess import unflatten

#: Bodies a single frame may carry (Kinect tracks at most 6); more is a malformed frame.
MAX_BODIES_PER_FRAME = 6


class StreamLimitError(RestcnError, ValueError):
    """A new stream was refused because ``max_streams`` live streams already exist."""


@dataclass(frozen=True)
class StreamDecision:
    """One classification of one stream's current window.

    Attributes:
        stream: the stream id given to :meth:`StreamClassifier.push`.
        frame: frames the stream had received when the decision fell due (1-based count).
        t: the timestamp pushed with that frame, if any.
        top: the ``top_k`` predictions, most probable first.
        latency_ms: from the push of that frame to the decision being ready.
        decoded: with ``decode=True``, the decoded skeletons of the window, float32
            ``(L, bodies, window, V, 3)`` for the model's ``metadata.decoder_layers``; else None.
    """

    stream: Hashable
    frame: int
    t: float | None
    top: list[Any]
    latency_ms: float
    decoded: np.ndarray | None = None


@dataclass(frozen=True)
class PendingWindow:
    """A due window waiting for the batched session call: ``x`` is the model input (T, D)."""

    stream: Hashable
    frame: int
    t: float | None
    arrived: float
    x: np.ndarray


class _Stream:
    """Ring buffer of one stream: ``frames[(count - 1) % window]`` is the newest frame."""

    __slots__ = ("frames", "count", "last_seen", "last_t", "decided")

    def __init__(self, window: int, bodies: int, joints: int) -> None:
        self.frames = np.zeros((window, bodies, joints, 3), dtype=np.float32)  # (W, M, V, 3)
        self.count = 0
        self.last_seen = 0.0
        self.last_t: float | None = None
        self.decided = 0  # frame count at the last queued decision

    def recent(self) -> np.ndarray:
        """A copy of the last ``min(count, window)`` frames in time order, ``(M, t, V, 3)``.

        A copy, never a view: preprocessing may hand back its input unchanged, and a queued
        window must not change when the ring buffer moves on.
        """
        window = self.frames.shape[0]
        if self.count <= window:
            ordered = self.frames[: self.count].copy()
        else:
            start = self.count % window  # slot of the oldest frame
            ordered = np.concatenate((self.frames[start:], self.frames[:start]))
        return ordered.transpose(1, 0, 2, 3)  # (t, M, V, 3) -> (M, t, V, 3)


class StreamClassifier:
    """Per-stream ring buffers in front of one classifier; decisions batched across streams.

    Args:
        classifier: a :class:`restcn_infer.classifier.Classifier` (anything with its
            ``metadata``, ``spec``, ``prepare``, ``run`` and ``predict``).
        hop: a stream is due every ``hop`` frames, from its ``hop``-th frame on.
        window: frames of history per decision (default: the model's window); the model's
            window policy maps them to the model's input length, as for a file.
        top_k: predictions per decision.
        decode: also return the decoded skeletons of each window (the model needs a decoder head).
        idle_timeout_s: a stream that received no frame for this long is forgotten.
        max_streams: live streams at most; a frame for a new stream beyond it raises
            :class:`StreamLimitError` (bounded memory under any input).
        max_batch: inputs per session call at most; a larger backlog is split (bounded memory).
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
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        meta = classifier.metadata
        self.classifier = classifier
        self.spec = classifier.spec.input
        self.window = self.spec.window if window is None else int(window)
        for name, value in (("hop", hop), ("window", self.window), ("top_k", top_k),
                            ("max_streams", max_streams), ("max_batch", max_batch)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
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
        self.bodies = self.spec.bodies
        self.layout = self.spec.layout
        # Joint count -> index of each model joint in such a frame; None: the model's own layout.
        self._joint_maps: dict[int, np.ndarray | None] = {self.layout.num_joints: None}
        self._streams: OrderedDict[Hashable, _Stream] = OrderedDict()  # least recent first
        self._ready: list[PendingWindow] = []
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

    def forget(self, stream: Hashable) -> None:
        """Drop a stream's buffer (e.g. its client disconnected); queued windows still run."""
        self._streams.pop(stream, None)

    def evict_idle(self, now: float | None = None) -> list[Hashable]:
        """Forget streams idle for longer than ``idle_timeout_s``; returns their ids."""
        now = self.clock() if now is None else now
        gone = []
        while self._streams:
            stream, state = next(iter(self._streams.items()))
            if now - state.last_seen <= self.idle_timeout_s:
                break
            del self._streams[stream]
            gone.append(stream)
        return gone

    # -- input --------------------------------------------------------------------------------

    def check_frame(self, frame: Any, source: str = "<frame>") -> np.ndarray:
        """Validate one frame and return it as float32 ``(bodies_in, V_model, 3)``.

        Raises:
            SkeletonFormatError: not numeric, wrong shape, a joint count no layout maps to the
                model's, too many bodies, or NaN/inf.
        """
        try:
            a = np.asarray(frame, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise SkeletonFormatError(source, f"expected a numeric (bodies, V, 3) frame: {exc}"
                                      ) from None
        if a.ndim == 2:
            a = a[None]  # (V, 3) -> (1, V, 3)
        if a.ndim != 3 or a.shape[2] != 3 or not 1 <= a.shape[0] <= MAX_BODIES_PER_FRAME:
            raise SkeletonFormatError(
                source,
                f"expected a frame of shape (V, 3) or (bodies <= {MAX_BODIES_PER_FRAME}, V, 3), "
                f"got {a.shape}",
            )
        index = self._joint_map(a.shape[1], source)
        if not np.isfinite(a).all():
            raise SkeletonFormatError(source, "frame contains NaN or infinite coordinates")
        return a if index is None else a[:, index]

    def _joint_map(self, num_joints: int, source: str) -> np.ndarray | None:
        """Index of each model joint in a frame of ``num_joints`` joints (None: the model's own
        layout), found as :meth:`InputSpec.source_layout` finds a file's layout."""
        if num_joints not in self._joint_maps:
            layout = self.spec.source_layout(num_joints, source=source)
            try:
                self._joint_maps[num_joints] = joint_map(layout, self.layout)
            except LayoutError as exc:
                raise SkeletonFormatError(source, str(exc)) from None
        return self._joint_maps[num_joints]

    def push(self, stream: Hashable, frame: Any, t: float | None = None) -> None:
        """Append one frame to ``stream`` (created on first use); queue a window when due.

        Args:
            stream: any hashable id.
            frame: ``(bodies, V, 3)`` or ``(V, 3)`` raw coordinates, V of any known layout that
                maps to the model's.
            t: optional timestamp; it must not go backwards within a stream.

        Raises:
            SkeletonFormatError: a bad frame; it is dropped and the stream is unchanged.
            StreamLimitError: a new stream while ``max_streams`` streams are live.
        """
        source = f"stream {stream!r}"
        a = self.check_frame(frame, source)
        if t is not None:
            t = float(t)
            if not np.isfinite(t):
                raise SkeletonFormatError(source, f"timestamp must be finite, got {t}")
        now = self.clock()
        state = self._streams.get(stream)
        if state is None:
            if len(self._streams) >= self.max_streams:
                self.evict_idle(now)
            if len(self._streams) >= self.max_streams:
                raise StreamLimitError(
                    f"{source}: refused, {self.max_streams} streams are already live"
                )
            state = _Stream(self.window, self.bodies, self.layout.num_joints)
            self._streams[stream] = state
        else:
            if t is not None and state.last_t is not None and t < state.last_t:
                raise SkeletonFormatError(
                    source, f"timestamp {t} goes back (last frame had {state.last_t})"
                )
            self._streams.move_to_end(stream)
        slot = state.frames[state.count % self.window]  # (M, V, 3) view into the ring
        kept = min(a.shape[0], self.bodies)
        slot[:kept] = a[:kept]
        slot[kept:] = 0.0
        state.count += 1
        state.last_seen = now
        state.last_t = t if t is not None else state.last_t
        if state.count % self.hop == 0:
            self._queue(stream, state, t, now)

    def _queue(self, stream: Hashable, state: _Stream, t: float | None, now: float) -> None:
        state.decided = state.count
        try:
            x = self.classifier.prepare(state.recent())  # (M, t, V, 3) -> (window, D)
        except SkeletonFormatError:  # no body in the whole window: nothing to classify
            self.skipped_empty += 1
            return
        self._ready.append(PendingWindow(stream, state.count, t, now, x))

    # -- decisions ----------------------------------------------------------------------------

    def take_ready(self) -> list[PendingWindow]:
        """Remove and return the queued windows; also forgets idle streams."""
        ready, self._ready = self._ready, []
        self.evict_idle()
        return ready

    def decide(self, ready: list[PendingWindow]) -> list[StreamDecision]:
        """Classify ``ready`` in ``ceil(len / max_batch)`` session calls (one in normal load).

        Touches no stream state, so an asyncio server may run it in a worker thread.
        """
        decisions: list[StreamDecision] = []
        for start in range(0, len(ready), self.max_batch):
            chunk = ready[start:start + self.max_batch]
            batch = np.stack([p.x for p in chunk])  # B x (T, D) -> (B, T, D)
            logits, decoded = self.classifier.run(batch, decode=self.decode)
            tops = self.classifier.predict(logits, top_k=self.top_k)
            if decoded is not None:
                decoded = unflatten(decoded, self.bodies)  # (B, L, T, D) -> (B, L, M, T, V, 3)
            done = self.clock()
            for i, p in enumerate(chunk):
                decisions.append(StreamDecision(
                    stream=p.stream, frame=p.frame, t=p.t, top=tops[i],
                    latency_ms=(done - p.arrived) * 1000.0,
                    decoded=None if decoded is None else decoded[i],
                ))
        return decisions

    def poll(self) -> list[StreamDecision]:
        """Decisions for every window that fell due since the last poll, in push order."""
        return self.decide(self.take_ready())

    def flush(self) -> list[StreamDecision]:
        """End of input: also decide every stream on the frames since its last due window."""
        now = self.clock()
        for stream, state in self._streams.items():
            if state.count > state.decided:
                self._queue(stream, state, state.last_t, now)
        return self.poll()
