"""Per-class accuracy of a baseline and a refined model side by side (the paper's Table 2).

``compare_runs(A, B)`` reads two run directories written by ``restcn-train`` (``metrics.json``
for the per-class accuracy, ``checkpoint.pt`` for the classes, data, split and targeted
joints). A side may also be a directory of runs (e.g. one per seed): its per-class and overall
accuracies are then the mean over the runs, with the standard deviation kept.

Which classes "involve the targeted joints" is decided from the data, not by hand:

    for every validation sequence (M, T, V, 3), per present body:
      motion  = positions relative to the centroid of the body's torso joints (the layout's
                ``torso`` group): moving the whole body, e.g. walking, is not hand motion
      energy  = sum over frames of the squared frame-to-frame displacement, per joint
    share     = energy of the targeted joints / energy of all joints       (one per sequence)
    a class is marked when the median share of its sequences exceeds the median share over
    every sequence of the split.

So roughly the half of the classes in which the targeted joints carry the largest part of the
motion is marked; for ``hands`` these are the hand-heavy actions. The criterion needs the
validation data the runs name (or ``data=`` to point elsewhere); without it, nothing is marked
and :attr:`Comparison.criterion` says why.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restcn_infer.datasets import LabelledSplit
from restcn_infer.errors import DataError, LayoutError, RestcnError
from restcn_infer.layouts import JointLayout
from restcn_training.checkpoint import Checkpoint
from restcn_training.data import load_training_data


class CompareError(RestcnError, ValueError):
    """The runs cannot be compared (missing files, different classes or validation split)."""


@dataclass(frozen=True)
class Run:
    """What a comparison needs from one run directory."""

    path: Path
    architecture: str
    classes: list[str]
    per_class: list[float]  # accuracy per class, in ``classes`` order
    accuracy: float  # final validation accuracy
    target_joints: list[int]
    layout: JointLayout
    training: dict[str, Any]


@dataclass(frozen=True)
class Side:
    """One column of the table: one run, or the mean over several (seeds)."""

    runs: list[Run]

    @property
    def architecture(self) -> str:
        return self.runs[0].architecture

    @property
    def accuracies(self) -> list[float]:
        return [r.accuracy for r in self.runs]

    @property
    def accuracy(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def accuracy_std(self) -> float:
        """Sample standard deviation over runs (0 for one run)."""
        return statistics.stdev(self.accuracies) if len(self.runs) > 1 else 0.0

    def per_class(self) -> list[float]:
        return [statistics.fmean(col) for col in zip(*(r.per_class for r in self.runs))]


@dataclass(frozen=True)
class ClassRow:
    name: str
    a: float
    b: float
    targeted_share: float | None  # median share of the targeted joints' motion, None: not computed
    targeted: bool

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    rows: list[ClassRow]
    target_joints: list[int]
    target_joint_names: list[str]
    criterion: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_delta(self) -> float:
        return statistics.fmean(r.delta for r in self.rows)

    def mean_delta_of(self, targeted: bool) -> float | None:
        deltas = [r.delta for r in self.rows if r.targeted == targeted]
        return statistics.fmean(deltas) if deltas else None

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` document (see ``restcn-diagnose compare --help``)."""
        def side(s: Side) -> dict[str, Any]:
            return {"architecture": s.architecture, "runs": [str(r.path) for r in s.runs],
                    "accuracy": s.accuracy, "accuracy_std": s.accuracy_std,
                    "accuracies": s.accuracies}
        return {
            "a": side(self.a), "b": side(self.b),
            "target_joints": self.target_joints, "target_joint_names": self.target_joint_names,
            "criterion": self.criterion,
            "classes": [{"name": r.name, "a": r.a, "b": r.b, "delta": r.delta,
                         "targeted_share": r.targeted_share, "targeted": r.targeted}
                        for r in self.rows],
            "accuracy_delta": self.b.accuracy - self.a.accuracy,
            "mean_class_delta": self.mean_delta,
            "mean_class_delta_targeted": self.mean_delta_of(True),
            "mean_class_delta_other": self.mean_delta_of(False),
        }


def load_run(path: str | Path) -> Run:
    """Read ``metrics.json`` and ``checkpoint.pt`` of one run directory."""
    path = Path(path)
    try:
        metrics = json.loads((path / "metrics.json").read_text())
        spec = Checkpoint.load(path / "checkpoint.pt").spec
    except (OSError, ValueError) as exc:  # CheckpointError is a ValueError
        raise CompareError(f"{path}: not a finished restcn-train run ({exc})") from None
    classes = list(spec.classes)
    per_class = metrics.get("per_class_accuracy", {})
    missing = [c for c in classes if c not in per_class]
    if missing:
        raise CompareError(f"{path}/metrics.json: no per-class accuracy for {missing}")
    return Run(path=path, architecture=spec.architecture, classes=classes,
               per_class=[float(per_class[c]) for c in classes],
               accuracy=float(metrics["final_val_accuracy"]),
               target_joints=list(spec.target_joints), layout=spec.input.layout,
               training=dict(spec.training))


def load_side(path: str | Path) -> Side:
    """A run directory, or a directory whose subdirectories (any depth) hold runs."""
    path = Path(path)
    if (path / "metrics.json").is_file():
        return Side([load_run(path)])
    found = sorted(p.parent for p in path.rglob("metrics.json")) if path.is_dir() else []
    if not found:
        raise CompareError(f"{path}: no run directory (metrics.json) found")
    runs = [load_run(p) for p in found]
    _check_same(runs, f"{path}")
    return Side(runs)


def _check_same(runs: list[Run], what: str) -> None:
    first = runs[0]
    for run in runs[1:]:
        if run.classes != first.classes:
            raise CompareError(f"{what}: {run.path} and {first.path} have different classes")
        if run.architecture != first.architecture:
            raise CompareError(f"{what}: {run.path} is {run.architecture}, {first.path} is "
                               f"{first.architecture}")
        if _split_of(run) != _split_of(first):
            raise CompareError(f"{what}: {run.path} and {first.path} validate on different "
                               f"data ({_split_of(run)} vs {_split_of(first)})")


def _split_of(run: Run) -> tuple[str, str]:
    return Path(str(run.training.get("data", ""))).name, str(run.training.get("val_split", ""))


def motion_shares(split: LabelledSplit, joints: list[int],
                  reference: list[int] | None = None) -> np.ndarray:
    """Share of the motion energy carried by ``joints``, one value per sequence ``(N,)``.

    Motion is measured relative to the centroid of the ``reference`` joints (default: all
    joints); see the module docstring. A sequence without motion gets share 0.
    """
    shares = np.zeros(len(split))
    reference = list(range(split.sequence(0).shape[2])) if reference is None else reference
    for i in range(len(split)):
        seq = np.asarray(split.sequence(i), dtype=np.float64)  # (M, T, V, 3)
        energy = np.zeros(seq.shape[2])
        for body in seq:  # (T, V, 3)
            present = np.any(body != 0, axis=(1, 2))  # (T,)
            centre = body[:, reference].mean(axis=1, keepdims=True)  # (T, 1, 3)
            rel = body - centre  # (T, V, 3)
            step = np.diff(rel, axis=0)  # (T-1, V, 3)
            both = present[1:] & present[:-1]  # steps between two frames with this body
            energy += np.square(step[both]).sum(axis=(0, 2))  # (V,)
        total = energy.sum()
        shares[i] = energy[joints].sum() / total if total > 0 else 0.0
    return shares


def compare_runs(a: str | Path, b: str | Path, target_joints: str | list[int] | None = None,
                 data: str | Path | None = None) -> Comparison:
    """Compare baseline ``a`` with refined ``b`` class by class.

    Args:
        a, b: run directories, or directories of runs (averaged).
        target_joints: the joints to mark classes by (group name or indices); default: the
            refined side's targeted joints, else the other side's, else the layout's ``hands``.
        data: the dataset file/directory for the motion criterion; default: the one the runs
            trained on.

    Raises:
        CompareError: the runs cannot be compared.
    """
    side_a, side_b = load_side(a), load_side(b)
    ra, rb = side_a.runs[0], side_b.runs[0]
    if ra.classes != rb.classes:
        raise CompareError(f"{a} and {b} have different classes")
    if _split_of(ra) != _split_of(rb):
        raise CompareError(f"{a} and {b} validate on different data "
                           f"({_split_of(ra)} vs {_split_of(rb)})")
    try:
        layout = rb.layout
        if target_joints is not None:
            joints = list(layout.resolve_joints(target_joints))
        else:
            joints = rb.target_joints or ra.target_joints or list(layout.resolve_joints("hands"))
    except LayoutError as exc:
        raise CompareError(str(exc)) from None

    shares, criterion = _class_shares(rb, joints, data)
    rows = []
    for k, (name, acc_a, acc_b) in enumerate(zip(ra.classes, side_a.per_class(),
                                                 side_b.per_class())):
        share = shares[k] if shares is not None else None
        marked = share is not None and share > criterion["split_median_share"]
        rows.append(ClassRow(name, acc_a, acc_b, share, marked))
    return Comparison(side_a, side_b, rows, joints, [layout.joint_names[j] for j in joints],
                      criterion)


def _class_shares(run: Run, joints: list[int], data: str | Path | None
                  ) -> tuple[list[float] | None, dict[str, Any]]:
    """Median targeted-motion share per class, and how it was computed (or why not)."""
    source = data if data is not None else run.training.get("data")
    train_split, val_split = run.training.get("train_split"), run.training.get("val_split")
    criterion: dict[str, Any] = {"rule": "median class share > median split share",
                                 "motion": "relative to the torso centroid",
                                 "data": str(source), "split": val_split}
    if not source or not train_split or not val_split:
        criterion["error"] = "the runs do not name their data; pass data="
        return None, criterion
    try:
        loaded = load_training_data(source, train_split, val_split, run.layout)
    except DataError as exc:
        criterion["error"] = str(exc)
        return None, criterion
    if len(loaded.classes) != len(run.classes):
        raise CompareError(f"{source}: {len(loaded.classes)} classes, the runs have "
                           f"{len(run.classes)}")
    torso = list(loaded.layout.groups.get("torso", range(loaded.layout.num_joints)))
    shares = motion_shares(loaded.val, joints, torso)  # (N,)
    labels = np.asarray(loaded.val.labels)
    criterion["split_median_share"] = float(np.median(shares))
    per_class = [float(np.median(shares[labels == k])) if np.any(labels == k) else math.nan
                 for k in range(len(run.classes))]
    return per_class, criterion
