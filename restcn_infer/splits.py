"""The splits of a labelled data set, as every reader of :mod:`restcn_infer.datasets` gives
them: a :class:`LabelledSplit` is ``len``, ``labels``, ``names``, ``bodies`` and
``sequence(i)`` -> float32 ``(M, T, V, C)``; :func:`carve_holdout` cuts one in two, for
choosing recipes without the test split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from restcn_infer.errors import DataError


class LabelledSplit(Protocol):
    """One split: ``len(split)`` sequences, ``labels`` int64 ``(N,)``, ``names`` (N,) str, and
    ``bodies``, the most bodies any of its sequences has."""

    labels: np.ndarray
    names: Sequence[str]

    @property
    def bodies(self) -> int: ...

    def __len__(self) -> int: ...

    def sequence(self, index: int) -> np.ndarray:
        """Raw float32 ``(M, T, V, C)`` of sequence ``index``."""
        ...


@dataclass(frozen=True)
class ListSplit:
    """A split held as in-memory sequences (PYSKL pickles)."""

    sequences: list[np.ndarray]
    labels: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def bodies(self) -> int:
        return max((s.shape[0] for s in self.sequences), default=1)

    def sequence(self, index: int) -> np.ndarray:
        return self.sequences[index]


@dataclass(frozen=True)
class PackedSplit:
    """A split of a packed benchmark directory: frames end to end, memory-mapped."""

    frames: np.ndarray  # (total_frames, M, V, 3), memory-mapped
    offsets: np.ndarray  # (N+1,)
    labels: np.ndarray  # (N,)
    names: Sequence[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def bodies(self) -> int:
        return int(self.frames.shape[1])

    def sequence(self, index: int) -> np.ndarray:
        chunk = self.frames[self.offsets[index]:self.offsets[index + 1]]  # (T, M, V, 3)
        return np.ascontiguousarray(chunk.transpose(1, 0, 2, 3), dtype=np.float32)  # (M, T, V, 3)


@dataclass(frozen=True)
class FeatureSplit:
    """A split of body-major features ``(N, T, M*V*3)`` (CTR-GCN ``.npz``), memory-mapped."""

    x: np.ndarray  # (N, T, D)
    labels: np.ndarray  # (N,)
    bodies: int
    names: Sequence[str]

    def __len__(self) -> int:
        return len(self.labels)

    def sequence(self, index: int) -> np.ndarray:
        t, d = self.x.shape[1:]
        seq = np.asarray(self.x[index], dtype=np.float32).reshape(t, self.bodies, -1, 3)
        return np.ascontiguousarray(seq.transpose(1, 0, 2, 3))  # (T, M, V, 3) -> (M, T, V, 3)


@dataclass(frozen=True)
class SubsetSplit:
    """The sequences ``indices`` of another split, in that order (a holdout or its rest)."""

    base: LabelledSplit
    indices: np.ndarray  # (n,) int64 into ``base``

    def __len__(self) -> int:
        return len(self.indices)

    # Built once: readers index ``names[i]`` / ``labels[i]`` per sequence, and a fresh list per
    # access made every pass over a holdout quadratic in its size.
    @cached_property
    def labels(self) -> np.ndarray:
        return np.asarray(self.base.labels)[self.indices]

    @cached_property
    def names(self) -> list[str]:
        return [str(self.base.names[i]) for i in self.indices]

    @property
    def bodies(self) -> int:
        return self.base.bodies

    def sequence(self, index: int) -> np.ndarray:
        return self.base.sequence(int(self.indices[index]))


def carve_holdout(split: LabelledSplit, *, fraction: float = 0.0, match: str | None = None,
                  seed: int = 0) -> tuple[SubsetSplit, SubsetSplit]:
    """Split ``split`` into (rest, holdout) for choosing recipes without the test split.

    Args:
        fraction: the holdout is this fraction of every class (at least one sequence of each
            class with two or more), drawn with ``seed``: the same for every run of a sweep.
        match: instead, the sequences whose name matches this regular expression (``re.search``),
            e.g. ``_v02$`` holds out NW-UCLA's second view, ``_s[13]_`` two UTD-MHAD subjects.

    Raises:
        DataError: neither or both given, a bad expression, or an empty rest or holdout.
    """
    labels = np.asarray(split.labels)
    if (fraction > 0) == (match is not None):
        raise DataError("carve a holdout by a fraction or by a name pattern (one of them)")
    if match is not None:
        try:
            pattern = re.compile(match)
        except re.error as exc:
            raise DataError(f"holdout pattern {match!r}: {exc}") from None
        held = np.array([bool(pattern.search(str(name))) for name in split.names], dtype=bool)
    else:
        if not 0.0 < fraction < 1.0:
            raise DataError(f"holdout fraction must be in (0, 1), got {fraction}")
        rng = np.random.default_rng(seed)
        held = np.zeros(len(labels), dtype=bool)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            count = min(len(members) - 1, max(1, round(fraction * len(members))))
            held[rng.permutation(members)[:count]] = True
    if held.all() or not held.any():
        raise DataError(f"the holdout ({'pattern ' + repr(match) if match else fraction}) "
                        f"takes {int(held.sum())} of {len(held)} sequences; it must leave some "
                        "for training and hold some")
    return (SubsetSplit(split, np.flatnonzero(~held)), SubsetSplit(split, np.flatnonzero(held)))
