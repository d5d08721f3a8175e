"""Training data: the two splits of a run, windowed through the model's one input path.

The data set is read by :func:`restcn_infer.datasets.open_dataset` (PYSKL pickle, packed NTU
directory or CTR-GCN ``.npz``: the same reader evaluation and diagnosis use).
:class:`WindowedDataset` turns a split into network inputs ``(window, D)`` with
:meth:`restcn_infer.spec.InputSpec.prepare`, the path the runtime takes (augmentation, when given,
acts on the raw ``(M, T, V, C)`` sequence before it; C = 3, or 2 for a 2-D data set). Every
check that can fail does so here, before any training starts, with a :class:`DataError` that
says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restcn_infer.datasets import LabelledSplit, carve_holdout, open_dataset
from restcn_infer.errors import DataError, SkeletonFormatError
from restcn_infer.layouts import JointLayout
from restcn_infer.modality import modality_features
from restcn_infer.spec import InputSpec
from restcn_training.augment import Augmentation

__all__ = ["DataError", "TrainingData", "WindowedDataset", "load_training_data", "mean_skeleton"]


@dataclass(frozen=True)
class TrainingData:
    """The two splits of a run and what the model needs to know about them."""

    train: LabelledSplit
    val: LabelledSplit
    layout: JointLayout
    bodies: int  # max bodies over the training split's sequences
    classes: list[str]
    val_name: str = "val"  # what ``val`` is: a split's name, or which holdout
    coords: int = 3  # coordinates per joint (2: a 2-D data set's image keypoints)


def load_training_data(path: str | Path, train_split: str, val_split: str,
                       layout: str | JointLayout | None = None, *,
                       holdout_fraction: float = 0.0,
                       holdout_match: str | None = None, holdout_seed: int = 0) -> TrainingData:
    """Open ``path`` and check both splits.

    Args:
        layout: a layout (built-in name, layout ``.json`` file, or a layout) overriding the one
            the data declares or implies (:func:`restcn_infer.datasets.open_dataset`).
        holdout_fraction, holdout_match, holdout_seed: validate on a holdout carved from the
            training split (:func:`restcn_infer.datasets.carve_holdout`) instead of
            ``val_split``, which is then not read at all.

    Raises:
        DataError: anything that would make training meaningless or crash later.
    """
    data = open_dataset(path, layout)
    if holdout_fraction or holdout_match:
        train, val = carve_holdout(data.split(train_split), fraction=holdout_fraction,
                                   match=holdout_match, seed=holdout_seed)
        rule = (f"names matching {holdout_match!r}" if holdout_match
                else f"fraction {holdout_fraction:g}, seed {holdout_seed}")
        val_split = f"holdout of {train_split} ({rule})"
    else:
        train, val = data.split(train_split), data.split(val_split)
    _check_split(train, train_split, data.classes, training=True)
    _check_split(val, val_split, data.classes, training=False)
    return TrainingData(train=train, val=val, layout=data.layout, bodies=train.bodies,
                        classes=list(data.classes), val_name=val_split, coords=data.coords)


def _check_split(split: LabelledSplit, name: str, classes: list[str], training: bool) -> None:
    if len(split) == 0:
        raise DataError(f"split {name!r} is empty")
    labels = np.asarray(split.labels)
    if labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"split {name!r} has labels outside 0..{len(classes) - 1}")
    if training and len(np.unique(labels)) < 2:
        raise DataError(f"split {name!r} has a single class ({classes[int(labels[0])]!r}); "
                        "a classifier needs at least two")


class WindowedDataset(torch.utils.data.Dataset):
    """A split as ``(x (window, D) float32, label)`` pairs through ``spec.prepare``.

    With an augmentation, sample ``i`` of epoch ``e`` draws its randomness from
    ``np.random.default_rng((seed, e, i))``: the same run gives the same inputs whatever the
    number of workers or processes, and a resumed run sees what an uninterrupted one would.
    """

    def __init__(self, split: LabelledSplit, spec: InputSpec,
                 augmentation: Augmentation | None = None, seed: int = 0) -> None:
        self.split = split
        self.spec = spec
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        seq = self.split.sequence(index)  # (M, T, V, C)
        if self.augmentation is not None:
            seq = self.augmentation(seq, np.random.default_rng((self.seed, self.epoch, index)))
        try:
            x = self.spec.prepare(seq)  # (window, D)
        except SkeletonFormatError as exc:
            raise DataError(f"sequence {index} ({self.split.names[index]}): {exc.reason}") from None
        return torch.from_numpy(x), int(self.split.labels[index])


def mean_skeleton(split: LabelledSplit, spec: InputSpec, modality: str = "joint",
                  parents: tuple[int, ...] = ()) -> np.ndarray:
    """Per-dimension mean ``(D,)`` over every frame of the windowed, unaugmented split, of the
    ``modality``'s features (:func:`restcn_infer.modality.modality_features`).

    Raises:
        DataError: a sequence has no frame with a body.
    """
    plain = WindowedDataset(split, spec)
    total = np.zeros(spec.D)
    for i in range(len(plain)):
        x = modality_features(plain[i][0].numpy(), modality, parents, spec.coords)  # (T, D)
        total += x.sum(axis=0, dtype=np.float64)  # (window, D) -> (D,)
    return (total / (len(plain) * spec.window)).astype(np.float32)
