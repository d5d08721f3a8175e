"""The two ends of one classification, without a session: a raw sequence made into a checked
network input (:func:`prepare_checked`), and the network's scores made into a ranking
(:func:`rank`). :class:`~restcn_infer.classifier.Classifier` runs them around its onnxruntime
session; :mod:`restcn_infer.client` gives them to clients of a served model (Triton), so a
remote answer passes the same checks as ``restcn-infer classify`` (numpy only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import JointLayout
from restcn_infer.limits import COORDS
from restcn_infer.plausibility import InputChecker, Verdict
from restcn_infer.readers.arrays import check_sequence
from restcn_infer.spec import ModelSpec

#: Fewer frames with a body than this get a warning: a still pose, not an action, which a model
#: answers with confidence all the same. Not refused: benchmarks hold such samples (NW-UCLA's
#: ``val`` has one) and an evaluation counts every sample.
MIN_FRAMES_WITH_A_BODY = 2

log = logging.getLogger("restcn_infer")


class NonFiniteScoresError(SkeletonFormatError):
    """The model's scores for one input are NaN or infinite: no answer for it."""

    def __init__(self, source: object) -> None:
        super().__init__(source, "the model's scores for this input are not finite (NaN or "
                                 "infinity): the input lies far outside what the model handles")


@dataclass(frozen=True)
class Prediction:
    """One class of a ranking: ``label`` index, class ``name`` and softmax ``probability``."""

    label: int
    name: str
    probability: float


@dataclass(frozen=True)
class PreparedInput:
    """A network input ``x`` ``(window, D)`` and the plausibility verdict on its sequence;
    ``layout`` is the layout the sequence was read in, ``guessed`` whether from its joint
    count."""

    x: np.ndarray
    verdict: Verdict
    layout: JointLayout | None = None
    guessed: bool = False


def prepare_checked(spec: ModelSpec, checker: InputChecker, options: InputOptions,
                    seq: np.ndarray, *, source_layout: JointLayout | None = None,
                    source: object = None) -> PreparedInput:
    """A sequence ``(M, T, V, C)`` or ``(T, V, C)`` as one checked network input, ``C`` the
    model's coordinates: converted by ``options`` (units, axis), its layout declared
    (``source_layout``, else ``options.layout``) or guessed from the joint count, mapped to
    the model's layout, checked for plausibility by ``checker``, then windowed
    (:meth:`InputSpec.prepare <restcn_infer.spec.InputSpec.prepare>`'s steps).

    Raises:
        SkeletonFormatError: naming ``source``: empty, non-finite, unmappable joints, or
            (:class:`~restcn_infer.plausibility.ImplausibleInputError`) implausible. Fewer than
            :data:`MIN_FRAMES_WITH_A_BODY` frames with a body are logged as a warning.
    """
    inp = spec.input
    seq = check_sequence(seq, source, COORDS)
    inp.check_coords(seq.shape[-1], source)
    seq = options.convert(seq)
    layout, guessed = inp.resolve_layout(seq.shape[2], source_layout or options.layout, source)
    model_seq = inp.to_model_layout(seq, layout, source)  # (bodies, T, V, C)
    verdict = checker.check(model_seq, source=source, layout=layout.name, guessed=guessed,
                            converted=options.describe())
    frames = int(np.any(model_seq != 0, axis=(0, 2, 3)).sum())  # frames with any body
    if 0 < frames < MIN_FRAMES_WITH_A_BODY:
        log.warning("%s: only %d frame with a body: a still pose, not an action; the answer "
                    "rests on the pose alone", source if source is not None else "<input>",
                    frames)
    return PreparedInput(inp.to_window(model_seq, source), verdict, layout, guessed)


def finite_rows(*arrays: np.ndarray | None) -> np.ndarray:
    """``(B,)`` bool: whether every value of row b of each ``(B, ...)`` array is finite."""
    ok = None
    for array in arrays:
        if array is None:
            continue
        row_ok = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        ok = row_ok if ok is None else ok & row_ok
    return ok


def rank(classes: Sequence[str], logits: np.ndarray, top_k: int = 5) -> list[list[Prediction]]:
    """Softmax over ``logits (B, C)``; the ``top_k`` most likely of ``classes`` per row.

    Raises:
        NonFiniteScoresError: a row holds NaN or infinity (split such rows off first with
            :func:`finite_rows` to answer the others).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"expected logits of shape (B, {len(classes)}), got {logits.shape}")
    if not finite_rows(logits).all():
        raise NonFiniteScoresError(None)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)  # (B, C)
    k = max(1, min(top_k, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (B, k)
    return [[Prediction(int(c), classes[c], float(row[c])) for c in idx]
            for row, idx in zip(probs, order)]
