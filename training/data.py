"""Training data: labelled skeleton splits from a PYSKL pickle or a packed NTU benchmark directory.

Two sources, one interface (:class:`SkeletonSplit`: ``len``, ``labels``, ``sequence(i)`` ->
float32 ``(M, T, V, 3)``):

- a PYSKL/mmaction2 annotation pickle (splits inside), read with
  :func:`restcn_infer.readers.pyskl.read_pyskl`; class names from ``label_map.txt`` beside it;
- a packed benchmark directory written by ``restcn_training.ntu_builder``::

      meta.json   {"dataset", "benchmark", "layout": "ntu25", "bodies": 2, "classes": [...],
                   "splits": {"train": N, "test": N}}
      <s>_x.npy        float32 (total_frames, bodies, V, 3)   all sequences of split s, end to end
      <s>_offsets.npy  int64 (N+1,)                           sequence i = frames offsets[i]:offsets[i+1]
      <s>_label.npy    int64 (N,)
      <s>_names.npy    (N,) sample names

  memory-mapped (``np.load(mmap_mode="r", allow_pickle=False)``), so NTU never sits in RAM.

:class:`WindowedDataset` turns a split into network inputs ``(window, D)`` through the one
preprocessing path of :mod:`restcn_infer.preprocess` (augmentation, when given, acts on the raw
``(M, T, V, 3)`` sequence before windowing). Every check that can fail does so here, before any
training starts, with a :class:`DataError` that says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import JointLayout, get_layout, layout_for_joints
from restcn_infer.preprocess import to_model_input
from restcn_infer.readers.pyskl import read_pyskl
from restcn_training.augment import Augmentation


class DataError(ValueError):
    """The training data cannot be used as asked (missing file, unknown split, one class, ...)."""


class SkeletonSplit(Protocol):
    """One labelled split: ``len(split)`` sequences, ``labels`` int64 (N,)."""

    labels: np.ndarray

    def __len__(self) -> int: ...

    def sequence(self, index: int) -> np.ndarray:
        """Raw float32 ``(M, T, V, 3)`` of sequence ``index``."""
        ...


@dataclass(frozen=True)
class ListSplit:
    """A split held as a list of in-memory sequences (PYSKL pickles)."""

    sequences: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence(self, index: int) -> np.ndarray:
        return self.sequences[index]


@dataclass(frozen=True)
class PackedSplit:
    """A split of a packed benchmark directory: frames end to end, memory-mapped."""

    frames: np.ndarray  # (total_frames, M, V, 3), memory-mapped
    offsets: np.ndarray  # (N+1,)
    labels: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def sequence(self, index: int) -> np.ndarray:
        chunk = self.frames[self.offsets[index]:self.offsets[index + 1]]  # (T, M, V, 3)
        return np.ascontiguousarray(chunk.transpose(1, 0, 2, 3), dtype=np.float32)  # (M, T, V, 3)


@dataclass(frozen=True)
class TrainingData:
    """The two splits of a run and what the model needs to know about them."""

    train: SkeletonSplit
    val: SkeletonSplit
    layout: JointLayout
    bodies: int  # max bodies of the training split (packed: from meta.json)
    classes: list[str]
    source: str  # "pyskl" | "packed"


def load_training_data(path: str | Path, train_split: str, val_split: str,
                       layout: str | None = None) -> TrainingData:
    """Open ``path`` (PYSKL pickle or packed directory) and check both splits.

    Args:
        layout: layout name overriding the one the data implies (meta.json or joint count).

    Raises:
        DataError: anything that would make training meaningless or crash later.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        data = _load_packed(path, train_split, val_split, layout)
    else:
        data = _load_pyskl(path, train_split, val_split, layout)
    _check_split(data.train, train_split, data.classes, training=True)
    _check_split(data.val, val_split, data.classes, training=False)
    return data


def _resolve_layout(name: str | None, implied: str | None, num_joints: int, where: Path) -> JointLayout:
    try:
        layout = get_layout(name) if name else (get_layout(implied) if implied
                                                else layout_for_joints(num_joints))
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    if layout.num_joints != num_joints:
        raise DataError(f"{where}: layout {layout.name} has {layout.num_joints} joints, "
                        f"the data has {num_joints}")
    return layout


def _load_pyskl(path: Path, train_split: str, val_split: str, layout: str | None) -> TrainingData:
    try:
        dataset = read_pyskl(path)
    except SkeletonFormatError as exc:
        raise DataError(str(exc)) from None
    splits = {}
    for name in (train_split, val_split):
        if name not in dataset.splits:
            raise DataError(f"{path}: unknown split {name!r}; available: "
                            f"{', '.join(sorted(dataset.splits)) or 'none'}")
        anns = dataset.split(name)
        splits[name] = ListSplit([a.keypoint for a in anns],
                                 np.array([a.label for a in anns], dtype=np.int64))
    num_joints = next(iter(dataset.annotations.values())).keypoint.shape[2]
    joint_counts = {a.keypoint.shape[2] for a in dataset.annotations.values()}
    if len(joint_counts) > 1:
        raise DataError(f"{path}: sequences have different joint counts {sorted(joint_counts)}")
    num_classes = 1 + max(a.label for a in dataset.annotations.values())
    train = splits[train_split]
    return TrainingData(
        train=train,
        val=splits[val_split],
        layout=_resolve_layout(layout, None, num_joints, path),
        bodies=max((s.shape[0] for s in train.sequences), default=1),
        classes=_class_names(path.parent / "label_map.txt", num_classes),
        source="pyskl",
    )


def _class_names(label_map: Path, num_classes: int) -> list[str]:
    """Names from ``label_map.txt`` (one per line) when it covers every label, else class_<i>."""
    if label_map.is_file():
        names = [line.strip() for line in label_map.read_text().splitlines() if line.strip()]
        if len(names) >= num_classes:
            return names
    return [f"class_{i}" for i in range(num_classes)]


def _load_packed(path: Path, train_split: str, val_split: str, layout: str | None) -> TrainingData:
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        classes = [str(c) for c in meta["classes"]]
        available = dict(meta["splits"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{meta_path}: expected a packed benchmark meta.json ({exc})") from None
    splits = {}
    for name in (train_split, val_split):
        if name not in available:
            raise DataError(f"{path}: unknown split {name!r}; available: "
                            f"{', '.join(sorted(available)) or 'none'}")
        try:
            frames, offsets, labels = (
                np.load(path / f"{name}_{part}.npy", mmap_mode="r", allow_pickle=False)
                for part in ("x", "offsets", "label"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read split {name!r} ({exc})") from None
        if (frames.ndim != 4 or frames.shape[3] != 3 or offsets.shape != (len(labels) + 1,)
                or (len(offsets) and offsets[-1] != len(frames))):
            raise DataError(f"{path}: split {name!r} arrays are inconsistent: x {frames.shape}, "
                            f"offsets {offsets.shape}, labels {labels.shape}")
        splits[name] = PackedSplit(frames, np.asarray(offsets), np.asarray(labels, dtype=np.int64))
    num_joints = splits[train_split].frames.shape[2]
    return TrainingData(
        train=splits[train_split],
        val=splits[val_split],
        layout=_resolve_layout(layout, meta.get("layout"), num_joints, path),
        bodies=int(meta.get("bodies", splits[train_split].frames.shape[1])),
        classes=classes,
        source="packed",
    )


def _check_split(split: SkeletonSplit, name: str, classes: list[str], training: bool) -> None:
    if len(split) == 0:
        raise DataError(f"split {name!r} is empty")
    labels = np.asarray(split.labels)
    if labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"split {name!r} has labels outside 0..{len(classes) - 1}")
    if training and len(np.unique(labels)) < 2:
        raise DataError(f"split {name!r} has a single class ({classes[int(labels[0])]!r}); "
                        "a classifier needs at least two")


class WindowedDataset(torch.utils.data.Dataset):
    """A split as ``(x (window, D) float32, label)`` pairs through :mod:`restcn_infer.preprocess`.

    With an augmentation, sample ``i`` of epoch ``e`` draws its randomness from
    ``np.random.default_rng((seed, e, i))``: the same run gives the same inputs whatever the
    number of workers or processes, and a resumed run sees what an uninterrupted one would.
    """

    def __init__(self, split: SkeletonSplit, layout: JointLayout, bodies: int, window: int,
                 policy: str, augmentation: Augmentation | None = None, seed: int = 0) -> None:
        self.split = split
        self.layout = layout
        self.bodies = bodies
        self.window = window
        self.policy = policy
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        seq = self.split.sequence(index)  # (M, T, V, 3)
        if self.augmentation is not None:
            seq = self.augmentation(seq, np.random.default_rng((self.seed, self.epoch, index)))
        try:
            x = to_model_input(seq, layout=self.layout, bodies=self.bodies, window=self.window,
                               policy=self.policy)  # (window, D)
        except SkeletonFormatError as exc:
            raise DataError(f"sequence {index}: {exc.reason}") from None
        return torch.from_numpy(x), int(self.split.labels[index])


def mean_skeleton(split: SkeletonSplit, layout: JointLayout, bodies: int, window: int,
                  policy: str) -> np.ndarray:
    """Per-dimension mean ``(D,)`` over every frame of the windowed, unaugmented split.

    Raises:
        DataError: a sequence has no frame with a body.
    """
    plain = WindowedDataset(split, layout, bodies, window, policy)
    total = np.zeros(bodies * layout.num_joints * 3)
    for i in range(len(plain)):
        total += plain[i][0].numpy().sum(axis=0, dtype=np.float64)  # (window, D) -> (D,)
    return (total / (len(plain) * window)).astype(np.float32)
