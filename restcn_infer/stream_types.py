"""What the stream engine (:mod:`restcn_infer.streaming`) hands out and keeps per stream: its
errors, a decision, a window waiting for the session call, a push's outcome, and one stream's
state (:class:`StreamState`: its ring slot, counts and what its first frame bound it to).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from restcn_infer.errors import RestcnError, SkeletonFormatError
from restcn_infer.layouts import JointLayout, LayoutMapping


class StreamLimitError(RestcnError, ValueError):
    """A new stream was refused because ``max_streams`` (or the owner's share) are live."""


class StreamRefusedError(SkeletonFormatError):
    """A frame for a stream refused earlier as implausible: dropped, already reported once."""


@dataclass(frozen=True)
class StreamDecision:
    """One classification of one stream's current window, or why there is none.

    Attributes:
        stream: the stream id given to :meth:`~restcn_infer.streaming.StreamClassifier.push`.
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
    """What :meth:`~restcn_infer.streaming.StreamClassifier.push` has to say: whether it
    opened the stream, and a notice to pass on once (layout mapped, implausible input
    accepted), or None."""

    new_stream: bool
    notice: str | None = None


class StreamState:
    """One stream: its ring buffer is slot ``slot`` of the engine's
    :class:`~restcn_infer.stream_ingest.RingPool`."""

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

    def advance(self, t: float | None, now: float) -> None:
        """Count a frame written (or waiting to be written) into the stream's ring."""
        self.count += 1
        self.last_seen = now
        self.last_t = t if t is not None else self.last_t

    def check_same(self, shape: tuple[int, ...], layout: JointLayout | None,
                   stream: Hashable) -> None:
        """A later frame (of ``shape`` ``(bodies, V, C)``, declaring ``layout``) must keep the
        stream's layout and body count.

        Raises:
            SkeletonFormatError: it does not.
        """
        if layout is not None and layout.name != self.layout.name:
            raise SkeletonFormatError(
                stream_source(stream), f"declares layout {layout.name}, but the stream is in "
                f"layout {self.layout.name} (start a new stream for another layout)")
        if shape[1] != self.layout.num_joints:
            raise SkeletonFormatError(
                stream_source(stream), f"has {shape[1]} joints, but the stream's frames have "
                f"{self.layout.num_joints} ({self.layout.name}); a stream keeps its layout")
        if shape[0] != self.bodies_in:
            raise SkeletonFormatError(
                stream_source(stream), f"has {shape[0]} bodies, but the stream's frames have "
                f"{self.bodies_in}; a stream keeps its body count (send an absent body as "
                "zeros)")


#: What :meth:`~restcn_infer.streaming.StreamClassifier.push` says of most frames: an open
#: stream, nothing to tell.
NOTHING = Pushed(False)


def stream_source(stream: Hashable) -> str:
    """How an error names a stream."""
    return f"stream {stream!r}"
