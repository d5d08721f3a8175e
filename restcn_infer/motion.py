"""Where a skeleton sequence moves: motion energy per joint, relative to the body.

One definition for the diagnosis (which joint groups a class moves, and which ones a model's
decoded layers amplify) and for ``restcn-diagnose compare`` (which classes involve the targeted
joints)::

    per present body, per frame t: positions relative to the centroid of the layout's ``torso``
        group (present joints only; all joints when the layout has no torso group), so that
        moving the whole body -- walking, or a shift of the camera -- is not joint motion
    energy of joint j = sum over t >= 1 of |P(t, j) - P(t-1, j)|^2, over the steps where the
        joint is present in both frames

A joint or body is present when any coordinate is non-zero (absent ones are all zeros).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from restcn_infer.layouts import JointLayout


def reference_joints(layout: JointLayout) -> list[int]:
    """The joints whose centroid positions are taken relative to: ``torso``, else all."""
    return list(layout.groups.get("torso", range(layout.num_joints)))


def joint_motion_energy(seq: np.ndarray, reference: Sequence[int],
                        present: np.ndarray | None = None) -> np.ndarray:
    """Energy per joint of ``(..., M, T, V, 3)`` sequences -> ``(..., V)`` float64.

    Args:
        reference: joints whose centroid (present ones) is subtracted per frame and body.
        present: ``(..., M, T, V)`` bool mask of the points to count (default: the non-zero
            points of ``seq``). A decoded sequence has no zeros; pass its input's mask.
    """
    seq = np.asarray(seq, dtype=np.float64)
    if present is None:
        present = np.any(seq != 0, axis=-1)  # (..., M, T, V)
    ref = present[..., list(reference)]  # (..., M, T, R)
    count = ref.sum(axis=-1, keepdims=True)  # (..., M, T, 1)
    centre = (seq[..., list(reference), :] * ref[..., None]).sum(axis=-2) \
        / np.maximum(count, 1)  # (..., M, T, 3)
    relative = seq - centre[..., None, :]  # (..., M, T, V, 3)
    step = np.diff(relative, axis=-3)  # (..., M, T-1, V, 3)
    both = present[..., 1:, :] & present[..., :-1, :] & (count[..., 1:, :] > 0) \
        & (count[..., :-1, :] > 0)  # (..., M, T-1, V)
    energy = (np.square(step).sum(axis=-1) * both)  # (..., M, T-1, V)
    return energy.sum(axis=(-3, -2))  # (..., V)
