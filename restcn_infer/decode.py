"""Decoded skeletons of one sequence: what the model's layers "see" (paper section 4.1).

The exported graph computes the Feature Map Decoder itself (output ``decoded``, one skeleton
sequence per decoder layer); this module runs it on one sequence, brings every array back into
the skeleton layout and writes the result as an ``.npz`` (no pickle)::

    clf = Classifier()
    result = decode_sequence(clf, load_sequence("a.npy"), layers=[1, 10])
    save_decoded(result, "a_decoded.npz")

``.npz`` keys: ``input (M, window, V, C)`` the windowed raw input the model saw (C = 3, or 2
for a 2-D model); ``decoded (L, M, window, V, C)`` float32; ``layers (L,)`` int;
``joint_names (V,)`` str; ``bones (E, 2)`` int (child, parent); ``classes (K,)`` str;
``logits (K,)`` float32.
numpy + onnxruntime only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.atomic import atomic_write
from restcn_infer.classifier import Classifier, NonFiniteScoresError, finite_rows
from restcn_infer.errors import ModelError
from restcn_infer.layouts import JointLayout
from restcn_infer.plausibility import Verdict
from restcn_infer.preprocess import unflatten


@dataclass(frozen=True)
class DecodeResult:
    """One sequence through the model and its decoder head.

    Attributes:
        input: the windowed raw input ``(M, window, V, C)``, exactly what the model was fed.
        decoded: decoded skeletons ``(L, M, window, V, C)``, mean skeleton added back.
        layers: the decoded layers, in ``decoded``'s order.
        layout: the model's joint layout (joint names, bones).
        classes: the model's class names; ``logits`` ``(C,)`` its scores for this sequence.
        verdict: the plausibility verdict on the input (:mod:`restcn_infer.plausibility`).
    """

    input: np.ndarray
    decoded: np.ndarray
    layers: list[int]
    layout: JointLayout
    classes: list[str]
    logits: np.ndarray
    verdict: Verdict | None = None

    @property
    def predicted(self) -> str:
        return self.classes[int(np.argmax(self.logits))]


def select_layers(available: Sequence[int], layers: Sequence[int] | None) -> list[int]:
    """Indices into ``available`` (the model's decoder layers) for ``layers`` (``None``: all).

    Raises:
        ModelError: the model has no decoder head, or a layer is not among those it decodes.
    """
    available = list(available)
    if not available:
        raise ModelError("the model was exported without a decoder head "
                         "(re-export with --decoder-layers)")
    if layers is None:
        return list(range(len(available)))
    missing = [layer for layer in layers if layer not in available]
    if missing or not layers:
        raise ModelError(f"layers {list(layers)} not decodable: the model decodes layers "
                         f"{','.join(map(str, available))}")
    return [available.index(layer) for layer in layers]


def decode_sequence(classifier: Classifier, seq: np.ndarray, *,
                    layers: Sequence[int] | None = None,
                    source_layout: JointLayout | None = None,
                    source: object = None) -> DecodeResult:
    """Window ``seq (M, T, V, C)`` like the classifier does and decode ``layers`` (default all).

    Raises:
        SkeletonFormatError: the sequence cannot be prepared (empty, non-finite, wrong joints,
            implausible), or its scores or decoded skeletons are not finite.
        ModelError: see :func:`select_layers`.
    """
    available = classifier.metadata.decoder_layers
    spec = classifier.spec
    index = select_layers(available, layers)
    prepared = classifier.prepare_input(seq, source_layout=source_layout, source=source)
    x = prepared.x  # (window, D)
    logits, decoded = classifier.run(x[None], decode=True)  # (1, C), (1, L_all, window, D)
    if not finite_rows(logits, decoded).all():
        raise NonFiniteScoresError(source)
    decoded = decoded[0, index]  # (L, window, D)
    bodies, coords = spec.input.bodies, spec.input.coords
    return DecodeResult(
        input=unflatten(x, bodies, coords),  # (window, D) -> (M, window, V, C)
        decoded=unflatten(decoded, bodies, coords),  # (L, window, D) -> (L, M, window, V, C)
        layers=[available[i] for i in index],
        layout=spec.input.layout,
        classes=list(spec.classes),
        logits=logits[0],
        verdict=prepared.verdict,
    )


def save_decoded(result: DecodeResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` as an uncompressed ``.npz`` (keys in the module docstring), atomically."""
    arrays = {
        "input": result.input.astype(np.float32),
        "decoded": result.decoded.astype(np.float32),
        "layers": np.asarray(result.layers, dtype=np.int64),
        "joint_names": np.asarray(result.layout.joint_names, dtype=str),
        "bones": np.asarray(result.layout.bones, dtype=np.int64).reshape(-1, 2),
        "classes": np.asarray(result.classes, dtype=str),
        "logits": result.logits.astype(np.float32),
    }
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))
