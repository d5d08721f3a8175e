"""Motion primitives (paper Figure 3): conv1's filters drawn as short moving skeletons.

Filter ``i`` of conv1 has weights ``W_1[i] (D, f)``; read tap by tap, each tap is a ``D``-vector
in the input's layout, a skeleton offset, so ``mu + s * W_1[i][:, t]`` for ``t = 0..f-1`` is a
moving skeleton (DESIGN section 4). Filter weights are small next to coordinates in metres, so
one scale ``s`` for all filters -- by default the largest joint offset of any filter becomes a
quarter of the mean skeleton's height -- makes the motion visible while keeping filters
comparable. The weights come from a deployed model's ``filters`` output or from a checkpoint.
"""

from __future__ import annotations

import numpy as np


def motion_primitives(filters: np.ndarray, mean: np.ndarray,
                      scale: float | None = None) -> tuple[np.ndarray, float]:
    """conv1 weights ``(N, D, f)`` as skeleton sequences ``(N, f, D)`` = ``mu + s * W[i][:, t]``.

    Returns the primitives (float32) and the scale ``s`` used (``None``: module docstring).
    """
    weight = np.asarray(filters, dtype=np.float64)  # (N, D, f)
    mu = np.asarray(mean, dtype=np.float64)  # (D,)
    offsets = weight.transpose(0, 2, 1)  # (N, D, f) -> (N, f, D)
    if scale is None:
        joints = offsets.reshape(*offsets.shape[:2], -1, 3)  # (N, f, M*V, 3)
        largest = float(np.linalg.norm(joints, axis=-1).max()) if joints.size else 0.0
        height = float(np.ptp(mu.reshape(-1, 3)[:, 1]))  # y extent of the mean skeleton
        scale = 0.25 * height / largest if largest > 0 and height > 0 else 1.0
    return (mu + scale * offsets).astype(np.float32), float(scale)


def strongest_filters(filters: np.ndarray, top: int | None) -> np.ndarray:
    """Filter indices by weight norm, largest first (all of them, in order, when ``top`` is
    None)."""
    norms = np.linalg.norm(np.asarray(filters).reshape(len(filters), -1), axis=1)
    if top is None:
        return np.arange(len(filters))
    return np.argsort(-norms, kind="stable")[:top]
