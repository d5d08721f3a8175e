"""Diagnosis as numbers, from the deployed model: what the paper reads off its figures, measured
over a labelled split (numpy + onnxruntime; works on any model exported with a decoder head).

One pass over the split runs every sequence through the graph with its diagnosis outputs
(``decoded``: the Feature Map Decoder's skeletons, ``responses``: conv1's responses) and keeps
small per-sequence and per-class sums; :func:`diagnose` then computes, per class:

- accuracy, the confusion matrix, the most-confused pairs;
- **joint-group emphasis** per decoded layer (paper section 5.2: the decoded skeletons
  exaggerate the joints the model relies on): :func:`emphasis`;
- the **response signature** (Figure 8: how strongly and how selectively conv1's filters
  respond to the class): :func:`response_signatures`;
- **confusion in decoded space** (Figure 6: confused classes look alike in the decoded layers):
  :func:`decoded_separability`;
- **view invariance** (Figure 5: one action seen from two views decodes to similar skeletons),
  where sample names carry a view: :func:`view_invariance`;
- and **the finding** (:mod:`restcn_infer.finding`): the weakest classes, the joint group whose
  input motion is large for them but whose emphasis is low, and the suggested target.

Shapes: a windowed input is ``X (M, T, V, 3)``, a decoded layer ``X_hat_l`` the same; ``mu`` is
the model's mean skeleton. Absent bodies and padding frames (all zeros in ``X``) are left out
of every sum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restcn_infer.classifier import Classifier
from restcn_infer.datasets import Dataset, LabelledSplit
from restcn_infer.errors import ModelError, SkeletonFormatError
from restcn_infer.motion import joint_motion_energy, reference_joints
from restcn_infer.preprocess import unflatten
from restcn_infer.sample_names import recording

#: ``progress(done, total)`` after each batch.
Progress = Callable[[int, int], None]
#: Time is pooled into this many segments for the class-mean and view-pair distances, so
#: sequences of any window compare at one resolution and memory stays small.
SEGMENTS = 16


@dataclass(frozen=True)
class DiagnosisOptions:
    """How much of a split to measure.

    Attributes:
        max_sequences: at most this many sequences, taken evenly from every class (None: all).
        view_pairs: at most this many performances seen from several views, taken in turn
            from every class so each class is represented.
        batch_size: sequences per session call.
    """

    max_sequences: int | None = None
    view_pairs: int = 100
    batch_size: int = 32


@dataclass
class Sums:
    """What one pass keeps: per-sequence results and per-class sums (all numpy)."""

    names: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # into the split
    logits: list[np.ndarray] = field(default_factory=list)  # (C,) each
    input_energy: list[np.ndarray] = field(default_factory=list)  # (V,) each
    decoded_energy: list[np.ndarray] = field(default_factory=list)  # (L, V) each
    responses: list[np.ndarray] = field(default_factory=list)  # (N,) each
    class_sum: dict[int, np.ndarray] = field(default_factory=dict)  # (L+1, F) pooled features
    class_sumsq: dict[int, np.ndarray] = field(default_factory=dict)  # (L+1,)
    class_count: dict[int, int] = field(default_factory=dict)
    #: performance -> [(view, label, (L+1, F) pooled features)]
    views: dict[str, list[tuple[str, int, np.ndarray]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def pick_sequences(split: LabelledSplit, limit: int | None) -> np.ndarray:
    """Indices of at most ``limit`` sequences, the same share of every class, in split order."""
    labels = np.asarray(split.labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    picked = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes])
    return np.sort(picked)


def diagnosis_outputs(classifier: Classifier) -> list[str]:
    """The graph outputs the diagnosis reads: ``logits``, ``decoded`` and (newer exports)
    ``responses``. Raises :class:`ModelError` for a model without a decoder head."""
    if not classifier.metadata.decoder_layers:
        raise ModelError(f"{classifier.model_path}: exported without a decoder head; the "
                         "diagnosis needs one (re-export with --decoder-layers)")
    names = {o.name for o in classifier.session.get_outputs()}
    return ["logits", "decoded"] + (["responses"] if "responses" in names else [])


def run_outputs(classifier: Classifier, batch: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """One session call for ``names`` with the diagnosis heads on."""
    feed = {"skeleton": np.ascontiguousarray(batch, dtype=np.float32)}
    if any(i.name == "decode" for i in classifier.session.get_overridable_initializers()):
        feed["decode"] = np.array(True)
    return classifier.session.run(names, feed)


def pooled(seq: np.ndarray, present: np.ndarray, segments: int = SEGMENTS) -> np.ndarray:
    """A sequence ``(..., M, T, V, 3)`` as translation-free features ``(..., F)``: the mean
    position of its present points subtracted, absent points zeroed, time averaged into
    ``segments`` equal parts."""
    mask = present[..., None]  # (..., M, T, V, 1)
    count = np.maximum(mask.sum(axis=(-4, -3, -2), keepdims=True), 1)
    centre = (seq * mask).sum(axis=(-4, -3, -2), keepdims=True) / count
    centred = (seq - centre) * mask  # (..., M, T, V, 3)
    t = centred.shape[-3]
    edges = np.linspace(0, t, min(segments, t) + 1).round().astype(int)
    parts = [centred[..., a:b, :, :].mean(axis=-3) for a, b in zip(edges[:-1], edges[1:])]
    return np.stack(parts, axis=-3).reshape(*seq.shape[:-4], -1)  # (..., M*S*V*3)


def measure(classifier: Classifier, data: Dataset, split: str, options: DiagnosisOptions,
            progress: Progress | None = None) -> Sums:
    """The one pass over the split (see the module docstring)."""
    part = data.split(split)
    spec = classifier.spec
    bodies, layout, coords = spec.input.bodies, spec.input.layout, spec.input.coords
    reference = reference_joints(layout)
    names = diagnosis_outputs(classifier)
    chosen = pick_sequences(part, options.max_sequences)
    wanted_views = _performances_with_views([str(part.names[i]) for i in chosen],
                                            [int(part.labels[i]) for i in chosen],
                                            options.view_pairs)
    sums = Sums()
    batch: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        x = np.stack([b[1] for b in batch])  # (B, T, D)
        outputs = run_outputs(classifier, x, names)
        logits, decoded = outputs[0], outputs[1]  # (B, C), (B, L, T, D)
        responses = outputs[2] if len(outputs) > 2 else None  # (B, N, T)
        seq = unflatten(x, bodies, coords)  # (B, M, T, V, C)
        dec = unflatten(decoded, bodies, coords)  # (B, L, M, T, V, C)
        present = np.any(seq != 0, axis=-1)  # (B, M, T, V)
        e_in = joint_motion_energy(seq, reference)  # (B, V)
        e_dec = joint_motion_energy(dec, reference, present[:, None])  # (B, L, V)
        f_in = pooled(seq, present)  # (B, F)
        f_dec = pooled(dec, np.broadcast_to(present[:, None], dec.shape[:-1]))  # (B, L, F)
        frames = present.any(axis=(1, 3))  # (B, T): frames with a body
        for k, (i, _) in enumerate(batch):
            label = int(part.labels[i])
            name = str(part.names[i])
            sums.indices.append(i)
            sums.names.append(name)
            sums.labels.append(label)
            sums.logits.append(logits[k])
            sums.input_energy.append(e_in[k])
            sums.decoded_energy.append(e_dec[k])
            if responses is not None:
                valid = frames[k] if frames[k].any() else np.ones_like(frames[k])
                sums.responses.append(responses[k][:, valid].mean(axis=1))  # (N,)
            features = np.concatenate([f_in[k][None], f_dec[k]])  # (L+1, F)
            sums.class_sum[label] = sums.class_sum.get(label, 0) + features
            sums.class_sumsq[label] = (sums.class_sumsq.get(label, 0)
                                       + np.square(features).sum(axis=1))
            sums.class_count[label] = sums.class_count.get(label, 0) + 1
            rec = recording(name)
            if rec is not None and rec.performance in wanted_views:
                sums.views.setdefault(rec.performance, []).append((rec.view, label, features))
        batch.clear()

    for n, i in enumerate(chosen, 1):
        name = str(part.names[i])
        try:
            x = classifier.prepare(part.sequence(int(i)), source_layout=data.layout, source=name)
            batch.append((int(i), x))  # (window, D), in the data set's own layout
        except SkeletonFormatError as exc:
            sums.errors[name] = exc.reason
        if len(batch) == options.batch_size:
            flush()
            if progress is not None:
                progress(n, len(chosen))
    flush()
    if progress is not None:
        progress(len(chosen), len(chosen))
    if not sums.labels:
        raise ModelError(f"{data.path} [{split}]: no sequence could be diagnosed "
                         f"({len(sums.errors)} refused)")
    return sums


def _performances_with_views(names: list[str], labels: list[int], limit: int) -> set[str]:
    """Up to ``limit`` performances that appear from two or more views in ``names``, taken in
    turn from every class (each class's in sorted order), so a limit below the split's count
    still gives every class its pairs rather than the first classes all of them."""
    views: dict[str, set[str]] = {}
    label_of: dict[str, int] = {}
    for name, label in zip(names, labels):
        rec = recording(name)
        if rec is not None:
            views.setdefault(rec.performance, set()).add(rec.view)
            label_of[rec.performance] = label
    per_class: dict[int, list[str]] = {}
    for performance in sorted(p for p, v in views.items() if len(v) > 1):
        per_class.setdefault(label_of[performance], []).append(performance)
    queues = [per_class[c] for c in sorted(per_class)]
    chosen: list[str] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return set(chosen)


def display_scale(sums: Sums) -> np.ndarray:
    """One scale per decoded layer ``(L,)``: ``a_l = sqrt(E_in / E_dec_l)``, the body-relative
    motion energies (:func:`restcn_infer.motion.joint_motion_energy`) of every joint of every
    sequence of the split, input over decoded layer.

    Decoded layers come out several times the input's size (README, "Diagnosis"); drawn at
    ``mu + a_l (X_hat_l - mu)`` a layer moves exactly as much as the input does, over the split
    and all joints, so layers and models are comparable, and what is left -- one joint group
    moving more than another -- is the model's emphasis (:func:`emphasis` averages to 1, weighted
    by the input's motion).
    """
    e_in = np.stack(sums.input_energy).sum()  # all sequences and joints
    e_dec = np.stack(sums.decoded_energy).sum(axis=(0, 2))  # (L,)
    return np.sqrt(np.where(e_dec > 0, e_in / np.where(e_dec > 0, e_dec, 1.0), 1.0))


def emphasis(energy_in: np.ndarray, energy_dec: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Amplification of each joint's motion from the input to each decoded layer.

    ``energy_in (..., V)`` and ``energy_dec (..., L, V)`` are body-relative motion energies
    (:func:`restcn_infer.motion.joint_motion_energy`, summed over the sequences of a class or
    group); the decoded layer drawn at its display scale ``a_l`` has energy ``a_l^2 E_dec``
    (the mean skeleton is constant in time), so the emphasis is the ratio of motion amplitudes::

        emphasis_l = a_l * sqrt(E_dec_l / E_in)     (..., L, V); NaN where the input is still

    Above 1 the layer exaggerates that motion, below 1 it attenuates it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt(energy_dec / energy_in[..., None, :])
    ratio = np.where(energy_in[..., None, :] > 0, ratio, np.nan)
    return np.abs(scale)[:, None] * ratio


def group_energy(energy: np.ndarray, groups: dict[str, tuple[int, ...]]) -> np.ndarray:
    """``(..., V)`` per-joint energies -> ``(..., G)`` per group, in ``groups`` order."""
    return np.stack([energy[..., list(joints)].sum(axis=-1) for joints in groups.values()], -1)


def response_signatures(responses: np.ndarray, labels: np.ndarray,
                        num_classes: int) -> dict[str, np.ndarray]:
    """Per class, conv1's mean response per filter and how strong and selective it is (Fig. 8).

    ``responses (S, N)`` is each sequence's mean over time of ``|W_1 * (X_0 - mu)|`` per filter.
    Returns ``signature (C, N)`` (the class mean), ``strength (C,)`` (its mean over filters),
    ``selectivity (C,)`` (``1 - H(p) / log N`` for ``p`` the signature normalised to sum 1: 0
    when every filter responds alike, 1 when one filter carries it all) and ``similarity
    (C, C)`` (cosine of two classes' signatures).
    """
    n = responses.shape[1]
    signature = np.full((num_classes, n), np.nan)
    for c in range(num_classes):
        if np.any(labels == c):
            signature[c] = responses[labels == c].mean(axis=0)
    strength = signature.mean(axis=1) if n else np.full(num_classes, np.nan)  # NaN: no sequence
    with np.errstate(divide="ignore", invalid="ignore"):
        p = signature / signature.sum(axis=1, keepdims=True)
        entropy = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
        selectivity = 1.0 - entropy / math.log(n) if n > 1 else np.zeros(num_classes)
        unit = signature / np.linalg.norm(signature, axis=1, keepdims=True)
    selectivity = np.where(np.isnan(strength), np.nan, selectivity)
    return {"signature": signature, "strength": strength, "selectivity": selectivity,
            "similarity": unit @ unit.T}


def decoded_separability(sums: Sums, a: int, b: int) -> np.ndarray:
    """How far apart classes ``a`` and ``b`` are, in the input and in each decoded layer (Fig. 6).

    With ``m_c`` the mean of a class's pooled, translation-free sequences (:func:`pooled`) and
    ``v_c`` their mean squared distance from it, the separability is
    ``|m_a - m_b| / sqrt((v_a + v_b) / 2)`` (a scale-free Fisher distance). Returns ``(L+1,)``:
    the input's, then each layer's; a layer below the input brings the pair closer together --
    the decoded skeletons of a confused pair resemble each other more than their inputs do.
    """
    stats = []
    for c in (a, b):
        n = sums.class_count[c]
        mean = sums.class_sum[c] / n  # (L+1, F)
        var = sums.class_sumsq[c] / n - np.square(mean).sum(axis=1)  # (L+1,)
        stats.append((mean, np.maximum(var, 0.0)))
    (ma, va), (mb, vb) = stats
    spread = np.sqrt((va + vb) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, np.linalg.norm(ma - mb, axis=1) / spread, np.nan)


def view_invariance(sums: Sums, scale: np.ndarray) -> dict[str, Any] | None:
    """How alike one performance looks from two views, in the input and each layer (Fig. 5).

    For every performance recorded from several views (NTU ``C00N``, NW-UCLA ``v0N``) and each
    pair of its views: the distance of their pooled, translation-free sequences, in the input
    and in each decoded layer at its display scale. Returns the mean input distance, the mean
    distance per layer and their ratio per layer (below 1: the layer sees the two views as more
    alike than the raw coordinates are), the same per class under ``per_class`` (data label ->
    ``{"pairs", "input_distance", "layer_distance", "ratio"}``: which actions the model
    recognises alike from every side and which it does not), or None when the split has no
    such pair.
    """
    d_in: dict[int, list[float]] = {}
    d_layers: dict[int, list[np.ndarray]] = {}
    for seen in sums.views.values():
        for i in range(len(seen)):
            for j in range(i + 1, len(seen)):
                (view_a, label, a), (view_b, _, b) = seen[i], seen[j]
                if view_a == view_b:
                    continue
                diff = np.linalg.norm(a - b, axis=1)  # (L+1,)
                d_in.setdefault(label, []).append(float(diff[0]))
                d_layers.setdefault(label, []).append(diff[1:] * np.abs(scale))
    if not d_in:
        return None
    result = _distances(sum(d_in.values(), []), sum(d_layers.values(), []))
    result["performances"] = len(sums.views)
    result["per_class"] = {c: _distances(d_in[c], d_layers[c]) for c in sorted(d_in)}
    return result


def _distances(d_in: list[float], d_layers: list[np.ndarray]) -> dict[str, Any]:
    """Mean input distance, mean distance per layer ``(L,)`` and their ratio over some pairs."""
    mean_in, mean_layers = float(np.mean(d_in)), np.mean(d_layers, axis=0)
    ratio = mean_layers / mean_in if mean_in > 0 else np.full_like(mean_layers, np.nan)
    return {"pairs": len(d_in), "input_distance": mean_in, "layer_distance": mean_layers,
            "ratio": ratio}
