"""The data a lower-precision export is calibrated and judged on: network inputs from a labelled
data set, prepared exactly as the runtime prepares them (:meth:`InputSpec.prepare`).

Where the data comes from (:func:`gate_data`):

- **calibration**: by default the checkpoint's own training split (its spec's ``training`` record
  names the data set and the split); ``--calibration PATH [--calibration-split NAME]``
  overrides it (default split: the run's training split when PATH is the run's data, else
  ``train``);
- **validation** (the accuracy gate's sequences), never the split the run reports on:
  the run's own validation holdout when it trained with one (``--holdout-match`` /
  ``--holdout-fraction``: unseen by training, and not the test split), else a
  :data:`VALIDATION_FRACTION` per-class holdout carved from the calibration split
  (:func:`restcn_infer.datasets.carve_holdout`, seed 0). The calibration windows are drawn from
  the rest, so the two never overlap. A holdout of the training split was seen in training: its
  accuracy is higher than on new data, but a quantization that damages the model shows on it
  just as well, and it keeps the reported split out of every export decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restcn_export.errors import ExportError
from restcn_infer.datasets import Dataset, LabelledSplit, carve_holdout, open_dataset
from restcn_infer.errors import DataError, SkeletonFormatError
from restcn_infer.evaluate import class_index
from restcn_infer.spec import ModelSpec

#: Windows the quantizer's calibration runs over (drawn at random from the calibration part).
CALIBRATION_WINDOWS = 256
#: Share of every class held out for validation when the run had no holdout of its own.
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class GateData:
    """Prepared network inputs for calibration and validation.

    Attributes:
        calibration: ``(N, window, D)`` float32.
        validation: ``(M, window, D)`` float32.
        labels: ``(M,)`` int64, the validation windows' classes in the model's class indices.
        facts: where they came from (for the model's metadata): ``data``, ``split``,
            ``windows``, ``validation``, ``validation_sequences``.
    """

    calibration: np.ndarray
    validation: np.ndarray
    labels: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)


def gate_data(spec: ModelSpec, calibration: str | os.PathLike[str] | None = None,
              calibration_split: str | None = None, *, windows: int = CALIBRATION_WINDOWS,
              seed: int = 0) -> GateData:
    """Calibration and validation inputs for ``spec``'s model (see the module docstring).

    Raises:
        ExportError: no calibration data (the checkpoint names none and none was given), data
            that cannot be opened, an unknown split, classes the model does not know, or too
            few usable sequences.
    """
    training = dict(spec.training)
    own = training.get("data")
    path = calibration if calibration is not None else own
    if path is None:
        raise ExportError("a lower-precision export needs calibration data, and this checkpoint "
                          "does not name its training data: pass --calibration DATA "
                          "[--calibration-split NAME]")
    is_own = own is not None and _same_path(path, own)
    try:
        data = open_dataset(path, spec.input.layout)
    except DataError as exc:
        hint = (" (the data this checkpoint was trained on; pass --calibration to use another "
                "copy)" if calibration is None else "")
        raise ExportError(f"calibration data: {exc}{hint}") from None
    split_name = calibration_split or (training.get("train_split") if is_own else None) or "train"
    try:
        split = data.split(split_name)
    except DataError as exc:
        raise ExportError(f"calibration data: {exc} (choose one with --calibration-split)"
                          ) from None
    rest, held, validation = _validation_part(split, split_name, training if is_own else {})
    to_model = _class_map(spec, data)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rest))[:max(1, windows)]
    calib, _ = _prepare(spec, rest, order)
    valid, labels = _prepare(spec, held, np.arange(len(held)))
    if len(calib) == 0 or len(valid) == 0:
        raise ExportError(f"calibration data {path} split {split_name!r}: no sequence the model "
                          "can read (joints, layout or length do not fit)")
    return GateData(calib, valid, to_model[labels], {
        "data": str(path), "split": split_name, "windows": int(len(calib)),
        "validation": validation, "validation_sequences": int(len(valid))})


def _validation_part(split: LabelledSplit, name: str,
                     training: dict[str, Any]) -> tuple[LabelledSplit, LabelledSplit, str]:
    """``(calibration part, validation part, description of the validation part)``."""
    recipe = training.get("recipe") or {}
    match, fraction = recipe.get("holdout_match"), float(recipe.get("holdout_fraction") or 0)
    try:
        if name == training.get("train_split") and (match or fraction):
            rest, held = carve_holdout(split, fraction=fraction, match=match,
                                       seed=int(recipe.get("holdout_seed") or 0))
            return rest, held, f"the run's validation holdout ({training.get('val_split')})"
        rest, held = carve_holdout(split, fraction=VALIDATION_FRACTION)
    except DataError as exc:
        raise ExportError(f"calibration split {name!r}: {exc}") from None
    seen = " (seen in training)" if name == training.get("train_split") else ""
    return rest, held, f"a {VALIDATION_FRACTION:.0%} per-class holdout of {name}, seed 0{seen}"


def _class_map(spec: ModelSpec, data: Dataset) -> np.ndarray:
    try:
        return class_index(list(spec.classes), list(data.classes), f"{data.path}")
    except DataError as exc:
        raise ExportError(f"calibration data: {exc}") from None


def _prepare(spec: ModelSpec, split: LabelledSplit,
             indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(windows (n, window, D) float32, labels (n,))`` of the sequences that prepare."""
    windows, labels = [], []
    all_labels = np.asarray(split.labels)
    for i in indices:
        try:
            windows.append(spec.input.prepare(split.sequence(int(i)), source=f"sequence {i}"))
        except SkeletonFormatError:
            continue
        labels.append(int(all_labels[i]))
    shape = (0, spec.input.window, spec.input.D)
    return (np.stack(windows) if windows else np.zeros(shape, np.float32),
            np.asarray(labels, dtype=np.int64))


def _same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)
