"""CTR-GCN's packed NTU arrays (``NTU60_CS.npz``): ``x_train (N, 300, 150)``, one-hot ``y_train``,
``x_test``, ``y_test``. Loaded with ``allow_pickle=False``: an object array is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.errors import SkeletonFormatError


@dataclass(frozen=True)
class PackedSplit:
    """One split: ``x`` (N, T, D) float32 (body-major features), ``label`` (N,) int64."""

    x: np.ndarray
    label: np.ndarray


def read_ctrgcn_npz(path: str | Path) -> dict[str, PackedSplit]:
    """``{"train": PackedSplit, "test": PackedSplit}`` from a CTR-GCN ``.npz``.

    Labels may be one-hot (N, classes) or integer (N,). Raises SkeletonFormatError naming the
    file and the array that is wrong.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise SkeletonFormatError(path, f"expected a .npz archive without pickles: {exc}")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise SkeletonFormatError(path, "expected a .npz archive, got a single array")
    splits = {}
    with archive:
        for split in ("train", "test"):
            for key in (f"x_{split}", f"y_{split}"):
                if key not in archive.files:
                    raise SkeletonFormatError(
                        path, f"expected array {key!r}, archive has {sorted(archive.files)}"
                    )
            try:
                x, y = archive[f"x_{split}"], archive[f"y_{split}"]
            except ValueError as exc:  # object arrays need pickle: refused
                raise SkeletonFormatError(path, f"{split}: {exc}")
            if x.ndim != 3 or x.dtype.kind != "f":
                raise SkeletonFormatError(
                    path, f"x_{split}: expected float (N, T, D), got {x.dtype} {x.shape}"
                )
            label = y.argmax(axis=1) if y.ndim == 2 else y
            if label.ndim != 1 or label.shape[0] != x.shape[0]:
                raise SkeletonFormatError(
                    path, f"y_{split}: expected {x.shape[0]} labels (one-hot or int), got {y.shape}"
                )
            if not np.isfinite(x).all():
                raise SkeletonFormatError(path, f"x_{split}: expected finite values, found NaN/inf")
            splits[split] = PackedSplit(x=x.astype(np.float32, copy=False),
                                        label=label.astype(np.int64))
    return splits
