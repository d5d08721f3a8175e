"""The session call of the stream engine: queued windows in, one :class:`StreamDecision` each out.

Used by :meth:`StreamClassifier.decide <restcn_infer.streaming.StreamClassifier.decide>` and
its ``decide_safely``; it touches no stream state, so an asyncio server may run it in a worker
thread while pushes go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from restcn_infer.checked_input import finite_rows
from restcn_infer.preprocess import unflatten
from restcn_infer.stream_types import PendingWindow, StreamDecision

log = logging.getLogger("restcn_infer")

#: A decision's error when the model's output for its window is not finite.
NOT_FINITE = ("the model's scores for this window are not finite (NaN or infinity): the input "
              "lies far outside what the model handles")


def decide_windows(classifier: Any, ready: list[PendingWindow], *, max_batch: int,
                   decode: bool, top_k: int,
                   clock: Callable[[], float]) -> list[StreamDecision]:
    """Classify ``ready`` in ``ceil(len / max_batch)`` session calls (one in normal load); a
    window whose scores (or decoded skeletons) are not finite gets a decision with ``error``
    set. ``decoded`` of a decision: float32 ``(L, M, T, V, C)``."""
    spec = classifier.spec.input
    decisions: list[StreamDecision] = []
    for start in range(0, len(ready), max_batch):
        chunk = ready[start:start + max_batch]
        batch = np.stack([p.x for p in chunk])  # B x (T, D) -> (B, T, D)
        logits, decoded = classifier.run(batch, decode=decode)
        ok = finite_rows(logits, decoded)
        tops = iter(classifier.predict(logits[ok], top_k=top_k) if ok.any() else [])
        if decoded is not None:
            decoded = unflatten(decoded, spec.bodies, spec.coords)  # (B, L, M, T, V, C)
        done = clock()
        for i, p in enumerate(chunk):
            latency = (done - p.arrived) * 1000.0
            if not ok[i]:
                decisions.append(StreamDecision(p.stream, p.frame, p.t, [], latency,
                                                error=NOT_FINITE))
                continue
            decisions.append(StreamDecision(
                stream=p.stream, frame=p.frame, t=p.t, top=next(tops), latency_ms=latency,
                decoded=None if decoded is None else decoded[i],
            ))
    return decisions


def decide_windows_safely(decide: Callable[[list[PendingWindow]], list[StreamDecision]],
                          ready: list[PendingWindow], max_batch: int) -> list[StreamDecision]:
    """``decide`` (:func:`decide_windows` with its arguments bound), one session call at a
    time, where a failure of the call itself
    (a bug, onnxruntime failing) is logged with its traceback and becomes an error decision for
    each window of that call: a serving loop answers every window and goes on. The one place
    in the runtime that catches any exception."""
    decisions: list[StreamDecision] = []
    for start in range(0, len(ready), max_batch):
        chunk = ready[start:start + max_batch]
        try:
            decisions += decide(chunk)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.exception("deciding %d stream windows failed", len(chunk))
            decisions += failed_decisions(chunk, exc)
    return decisions


def failed_decisions(ready: list[PendingWindow], exc: BaseException) -> list[StreamDecision]:
    """An error decision for each window of ``ready`` that ``exc`` left without an answer."""
    reason = f"internal error while deciding this window ({type(exc).__name__}: {exc})"[:300]
    return [StreamDecision(p.stream, p.frame, p.t, [], 0.0, error=reason) for p in ready]
