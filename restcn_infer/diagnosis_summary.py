"""A whole diagnosis: every number of :mod:`restcn_infer.diagnosis` and the finding of
:mod:`restcn_infer.finding` in one JSON document (``diagnosis.json``), plus what the report draws
(animated decoded skeletons of chosen samples, motion primitives).

``diagnosis.json`` (stable; every float finite or null)::

    {"format": 1, "model", "architecture", "data", "split", "sequences", "skipped",
     "accuracy", "layers": [l...], "display_scale": [a_l...],
     "groups": {name: [joints]}, "joint_names": [...],
     "classes": [{"name", "support", "accuracy", "most_confused_with", "motion_share": {g},
                  "emphasis": {g: [per layer]}, "response": {"strength", "selectivity",
                  "top_filters"} | null}],
     "confusion_matrix": [[int]] (row: true class),
     "confused_pairs": [{"a", "b", "count", "separability": {"input", "layers": [...],
                         "ratio": [...]}, "response_similarity"}],
     "responses_available": bool,
     "view_invariance": {"pairs", "performances", "input_distance", "layer_distance": [...],
                         "ratio": [...], "per_class": [{"name", "pairs", "input_distance",
                         "layer_distance": [...], "ratio": [...]}] (model class order)}
                        | {"pairs": 0, "reason"},
     "finding": {"weak_classes", "evidence": [...], "reason"},
     "suggested_target_joints": {"joints": [int], "group": str | null, "joint_names",
                                 "reason", "command"},
     "samples": [{"name", "label", "predicted", "probability"}]}
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restcn_infer.classifier import Classifier
from restcn_infer.datasets import Dataset
from restcn_infer.diagnosis import (
    DiagnosisOptions,
    Progress,
    decoded_separability,
    display_scale,
    emphasis,
    group_energy,
    measure,
    response_signatures,
    run_outputs,
    view_invariance,
)
from restcn_infer.finding import find_target
from restcn_infer.layouts import JointLayout
from restcn_infer.motion import reference_joints
from restcn_infer.preprocess import fit_bodies, unflatten, window_frames
from restcn_infer.primitives import motion_primitives, strongest_filters

DOCUMENT_FORMAT = 1
#: Samples animated in the report, and the frames each animation keeps at most.
MAX_SAMPLES, MAX_FRAMES = 24, 64
CONFUSED_PAIRS, PRIMITIVES = 6, 16


@dataclass
class Sample:
    """One animated sample: ``input (M, T, V, 3)``, ``decoded (L, M, T, V, 3)`` at the display
    scale, ``frames (T,)`` the recording's frame each animation frame shows (NaN: padding)."""

    name: str
    label: int
    predicted: int
    probability: float
    frames: np.ndarray
    input: np.ndarray
    decoded: np.ndarray


@dataclass
class Diagnosis:
    """:func:`diagnose`'s result: the JSON ``document`` and what the report draws."""

    document: dict[str, Any]
    layout: JointLayout
    samples: list[Sample] = field(default_factory=list)
    primitives: np.ndarray | None = None  # (K, f, M, V, C)
    primitive_labels: list[str] = field(default_factory=list)
    y_down: bool = False  # the model's y axis points down (image keypoints): drawn inverted


def diagnose(classifier: Classifier, data: Dataset, split: str, *,
             options: DiagnosisOptions | None = None, target_file: str = "diagnosis.json",
             progress: Progress | None = None) -> Diagnosis:
    """Measure ``classifier`` on ``data``'s ``split`` and find what to fix.

    Args:
        target_file: where the document will be written, for the suggested command.

    Raises:
        ModelError: the model has no decoder head. DataError: unknown split, or classes of the
            data set the model does not know.
    """
    from restcn_infer.evaluate import class_index

    options = options or DiagnosisOptions()
    spec, layers = classifier.spec, list(classifier.metadata.decoder_layers)
    class_index(list(spec.classes), list(data.classes), str(data.path))  # refuse unknowns early
    to_model = {name: i for i, name in enumerate(spec.classes)}
    data_to_model = np.array([to_model[name] for name in data.classes])
    sums = measure(classifier, data, split, options, progress)
    labels = data_to_model[np.array(sums.labels)]
    logits = np.stack(sums.logits)  # (S, C)
    predicted = logits.argmax(axis=1)
    k = spec.num_classes
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)

    layout = spec.input.layout
    groups = dict(layout.groups) or {"all": tuple(range(layout.num_joints))}
    scale = display_scale(sums)  # (L,)
    e_in = np.stack(sums.input_energy)  # (S, V)
    e_dec = np.stack(sums.decoded_energy)  # (S, L, V)
    class_in = np.stack([e_in[labels == c].sum(axis=0) for c in range(k)])  # (C, V)
    class_dec = np.stack([e_dec[labels == c].sum(axis=0) for c in range(k)])  # (C, L, V)
    group_in, group_dec = group_energy(class_in, groups), group_energy(class_dec, groups)
    group_emphasis = emphasis(group_in, group_dec, scale)  # (C, L, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = group_in / class_in.sum(axis=1, keepdims=True)  # (C, G)

    reference = set(reference_joints(layout))
    candidates = {g: j for g, j in groups.items() if not set(j) <= reference}
    index = [list(groups).index(g) for g in candidates]
    finding = find_target(list(spec.classes), np.nan_to_num(accuracy, nan=1.0), support,
                          candidates, group_in[:, index], class_in.sum(axis=1),
                          group_emphasis[:, :, index])

    responses = None
    if sums.responses:
        responses = response_signatures(np.stack(sums.responses), labels, k)
    pairs = _confused_pairs(confusion, data_to_model, sums, responses)
    view = view_invariance(sums, scale)
    if view is not None:  # data labels -> class names, in the model's class order
        per_class = {spec.classes[int(data_to_model[c])]: v for c, v in view["per_class"].items()}
        view["per_class"] = [{"name": n, **per_class[n]} for n in spec.classes if n in per_class]

    classes_doc = []
    for c, name in enumerate(spec.classes):
        row = confusion[c].copy()
        row[c] = 0
        response = None
        if responses is not None and support[c]:
            signature = responses["signature"][c]
            response = {"strength": _num(responses["strength"][c]),
                        "selectivity": _num(responses["selectivity"][c]),
                        "top_filters": [int(i) for i in np.argsort(-signature)[:5]]}
        classes_doc.append({
            "name": name, "support": int(support[c]), "accuracy": _num(accuracy[c]),
            "most_confused_with": spec.classes[int(row.argmax())] if row.max() else None,
            "motion_share": {g: _num(share[c, i]) for i, g in enumerate(groups)},
            "emphasis": {g: [_num(v) for v in group_emphasis[c, :, i]]
                         for i, g in enumerate(groups)},
            "response": response})
    document = {
        "format": DOCUMENT_FORMAT, "model": str(classifier.model_path),
        "architecture": spec.architecture, "data": str(data.path), "split": split,
        "sequences": len(labels), "skipped": [{"sample": s, "error": e}
                                              for s, e in sums.errors.items()],
        "accuracy": float(np.mean(predicted == labels)), "layers": layers,
        "display_scale": [_num(a) for a in scale],
        "groups": {g: list(j) for g, j in groups.items()},
        "joint_names": list(layout.joint_names), "classes": classes_doc,
        "confusion_matrix": confusion.tolist(), "confused_pairs": pairs,
        "responses_available": responses is not None,
        "view_invariance": _plain(view) if view else {
            "pairs": 0, "reason": "no performance of this split is seen from two views (the "
            "names carry no view, or the split holds one view)"},
        "finding": {"weak_classes": finding.weak_classes, "evidence": finding.evidence,
                    "reason": finding.reason},
        "suggested_target_joints": {
            "joints": finding.joints, "group": finding.group,
            "joint_names": [layout.joint_names[j] for j in finding.joints],
            "reason": finding.reason,
            "command": _command(classifier, data, target_file) if finding.joints else None},
    }
    result = Diagnosis(_plain(document), layout, y_down=classifier.checker.envelope.y_down)
    weak = {list(spec.classes).index(n) for n in finding.weak_classes}
    chosen = _choose_samples(labels, predicted, logits, weak)
    result.samples = _samples(classifier, data, split, sums, chosen, scale, labels)
    document["samples"] = [{"name": s.name, "label": s.label, "predicted": s.predicted,
                            "probability": round(s.probability, 4)} for s in result.samples]
    result.document = _plain(document)
    _add_primitives(result, classifier)
    return result


def _confused_pairs(confusion: np.ndarray, data_to_model: np.ndarray, sums,
                    responses: dict | None) -> list[dict[str, Any]]:
    """The most-confused class pairs (both directions counted), with their separability in
    the input and each decoded layer and the similarity of their response signatures."""
    mutual = confusion + confusion.T
    np.fill_diagonal(mutual, 0)
    model_to_data = {int(m): d for d, m in enumerate(data_to_model)}
    pairs = []
    order = np.dstack(np.unravel_index(np.argsort(-mutual, axis=None), mutual.shape))[0]
    for a, b in order:
        if len(pairs) == CONFUSED_PAIRS or mutual[a, b] == 0:
            break
        if a >= b:
            continue
        da, db = model_to_data.get(int(a)), model_to_data.get(int(b))
        separability = None
        if da in sums.class_count and db in sums.class_count:
            values = decoded_separability(sums, da, db)  # (L+1,)
            separability = {"input": _num(values[0]), "layers": [_num(v) for v in values[1:]],
                            "ratio": [_num(v / values[0]) if values[0] else None
                                      for v in values[1:]]}
        similarity = (_num(responses["similarity"][a, b]) if responses is not None else None)
        pairs.append({"a": int(a), "b": int(b), "count": int(mutual[a, b]),
                      "separability": separability, "response_similarity": similarity})
    return pairs


def _choose_samples(labels: np.ndarray, predicted: np.ndarray, logits: np.ndarray,
                    weak: set[int]) -> list[int]:
    """Positions (in the measured order) of the animated samples: for each class its most
    confident correct one, and for the weak classes also their most confident mistake; weak
    classes first, at most :data:`MAX_SAMPLES`."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    confidence = (shifted / shifted.sum(axis=1, keepdims=True)).max(axis=1)
    chosen = []
    for c in sorted(set(labels.tolist()), key=lambda c: (c not in weak, c)):
        for correct in ((True, False) if c in weak else (True,)):
            members = np.flatnonzero((labels == c) & ((predicted == c) == correct))
            if len(members):
                chosen.append(int(members[np.argmax(confidence[members])]))
    return chosen[:MAX_SAMPLES]


def _samples(classifier: Classifier, data: Dataset, split: str, sums, chosen: list[int],
             scale: np.ndarray, labels: np.ndarray) -> list[Sample]:
    """Re-run the chosen samples and keep their input and display-scaled decoded skeletons."""
    if not chosen:
        return []
    spec = classifier.spec
    part = data.split(split)
    bodies, coords, mu = spec.input.bodies, spec.input.coords, spec.mean_array
    x = np.stack([classifier.prepare(part.sequence(sums.indices[i]), source_layout=data.layout,
                                     source=sums.names[i])
                  for i in chosen])  # (S, T, D)
    logits, decoded = run_outputs(classifier, x, ["logits", "decoded"])
    shown = mu + np.abs(scale)[None, :, None, None] * (decoded - mu)  # (S, L, T, D)
    step = max(1, math.ceil(x.shape[1] / MAX_FRAMES))
    samples = []
    for k, i in enumerate(chosen):
        raw = fit_bodies(part.sequence(sums.indices[i]), bodies)
        frames = window_frames(raw, spec.input.window, spec.input.policy)[::step]
        z = logits[k] - logits[k].max()
        p = np.exp(z) / np.exp(z).sum()
        samples.append(Sample(
            name=sums.names[i], label=int(labels[i]), predicted=int(np.argmax(p)),
            probability=float(p.max()), frames=frames,
            input=unflatten(x[k][::step], bodies, coords),  # (M, T', V, C)
            decoded=unflatten(shown[k][:, ::step], bodies, coords)))  # (L, M, T', V, C)
    return samples


def _add_primitives(result: Diagnosis, classifier: Classifier) -> None:
    """The strongest conv1 filters as moving skeletons, when the graph exposes ``filters``."""
    if "filters" not in {o.name for o in classifier.session.get_outputs()}:
        return
    spec = classifier.spec
    probe = np.broadcast_to(spec.mean_array, (1, spec.input.window, spec.input.D))
    (filters,) = run_outputs(classifier, probe, ["filters"])  # (N, D, f)
    coords = spec.input.coords
    prims, used = motion_primitives(filters, spec.mean_array, coords=coords)  # (N, f, D)
    order = strongest_filters(filters, PRIMITIVES)
    norms = np.linalg.norm(filters.reshape(len(filters), -1), axis=1)
    skeletons = unflatten(prims, spec.input.bodies, coords).swapaxes(1, 2)  # (N, f, M, V, C)
    result.primitives = skeletons[order]
    result.primitive_labels = [f"#{i} |w|={norms[i]:.2f}" for i in order]
    result.document["primitives"] = {"filters": [int(i) for i in order], "scale": used}


def _command(classifier: Classifier, data: Dataset, target_file: str) -> str:
    """The ``restcn-train`` command of the fix: the model's own training command (when it has
    one) with ``--model ms-res-tcn --target-joints <target_file>`` and a new ``--out``."""
    recorded = str(classifier.spec.training.get("command", ""))
    try:
        words = shlex.split(recorded) if recorded.startswith("restcn-train") else []
    except ValueError:
        words = []
    if not words:
        words = ["restcn-train", "--data", str(data.path)]
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in ("--model", "--target-joints", "--out"):
            skip = "=" not in word
            continue
        kept.append(word)
    return shlex.join([*kept, "--model", "ms-res-tcn", "--target-joints", target_file,
                       "--out", "runs/targeted"])


def _num(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def _plain(value: Any) -> Any:
    """JSON-safe: numpy to Python, non-finite floats to None, floats to 4 decimals."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        return _num(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class SuggestedTarget:
    """The ``suggested_target_joints`` of a ``diagnosis.json``, as the fix reads it."""

    joints: tuple[int, ...]
    group: str | None
    path: str
    sha256: str  # of the file, recorded with the trained model


def read_suggested_target(path: str | os.PathLike[str], num_joints: int) -> SuggestedTarget:
    """The targets a diagnosis suggests, checked against a layout of ``num_joints`` joints.

    Raises:
        DataError: unreadable, not a restcn diagnosis, a malformed or empty suggestion (the
            diagnosis found nothing to target), or joints outside the layout.
    """
    import hashlib

    from restcn_infer.bounded_json import JsonInputError, loads_bounded
    from restcn_infer.errors import DataError
    from restcn_infer.fields import Fields

    path = Path(path)
    try:
        data = path.read_bytes()
        doc = loads_bounded(data)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the diagnosis ({exc.strerror or exc})") from None
    except JsonInputError as exc:
        raise DataError(f"{path}: not a diagnosis.json ({exc.reason})") from None
    if not isinstance(doc, dict) or "suggested_target_joints" not in doc:
        raise DataError(f"{path}: not a restcn diagnosis.json (no 'suggested_target_joints'); "
                        "write one with restcn-diagnose report")
    f = Fields(doc["suggested_target_joints"], f"{path}: suggested_target_joints", DataError)
    joints = f.int_list("joints", low=0, high=num_joints - 1)
    group = doc["suggested_target_joints"].get("group")
    if group is not None and not isinstance(group, str):
        raise f.fail("group", f"must be a string or null, got {group!r}")
    if not joints:
        raise DataError(f"{path}: the diagnosis suggests no target joints "
                        f"({doc['suggested_target_joints'].get('reason', 'nothing stood out')}); "
                        "name a group or joints instead, e.g. --target-joints hands")
    return SuggestedTarget(tuple(sorted(set(joints))), group, str(path),
                           hashlib.sha256(data).hexdigest())
