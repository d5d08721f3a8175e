"""Input modalities: what a network reads, computed from the raw coordinates (numpy definition).

The strongest skeleton models ensemble streams over the same skeleton: the joints, the bones
(each joint minus its parent) and their motion (frame-to-frame differences). All keep the
paper's principle -- no view or scale normalisation -- because they are computed from the raw
coordinates. With ``x`` the raw input ``(..., T, D)``, body-major ``D = M * V * C`` (C = 3
coordinates, or 2 for image keypoints: every definition holds per coordinate), and a joint
*present* when any of its coordinates is non-zero (absent joints and bodies are all zeros):

- ``joint``:       ``x``.
- ``bone``:        ``b[t, m, j] = x[t, m, j] - x[t, m, parent(j)]`` where both are present, else 0;
                   a joint without a parent (the layout's root) has bone 0.
- ``motion``:      ``d[t, m, j] = x[t, m, j] - x[t-1, m, j]`` where both frames have the joint,
                   else 0; the first frame's motion is 0.
- ``bone-motion``: the motion of the bones.

Absent bodies and padding frames stay exactly zero in every modality. ``parent(j)`` comes from the
layout's bones ``(child, parent)``. The exported graph computes the modality itself from raw input
(``restcn_training.modality`` is the torch twin, pinned to this module by a test), so every
consumer still feeds raw coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from restcn_infer.errors import ModelError
from restcn_infer.layouts import JointLayout

MODALITIES = ("joint", "bone", "motion", "bone-motion")


def bone_parents(layout: JointLayout) -> tuple[int, ...]:
    """Parent of every joint from the layout's ``(child, parent)`` bones; -1 for a root.

    A joint listed as the child of several bones takes the first.
    """
    parents = [-1] * layout.num_joints
    for child, parent in layout.bones:
        if parents[child] == -1 and child != parent:
            parents[child] = parent
    return tuple(parents)


def check_modality(modality: str, parents: Sequence[int], d: int, coords: int = 3) -> None:
    """Raise :class:`ModelError` unless ``modality`` can be computed for ``d`` features of
    ``coords`` coordinates per joint."""
    if modality not in MODALITIES:
        raise ModelError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    if modality != "joint" and (coords < 1 or d % coords):  # joints: the input as it is
        raise ModelError(f"D = {d} is not a multiple of {coords} coordinates")
    if "bone" in modality:
        joints = len(parents)
        if joints == 0 or d % (coords * joints):
            raise ModelError(f"modality {modality!r} needs a parent per joint: {joints} parents "
                             f"do not divide D = {d}")
        if any(not -1 <= p < joints for p in parents):
            raise ModelError(f"bone parents {list(parents)} outside -1..{joints - 1}")


def modality_features(x: np.ndarray, modality: str, parents: Sequence[int] = (),
                      coords: int = 3) -> np.ndarray:
    """``(..., T, D)`` raw coordinates -> ``(..., T, D)`` features of ``modality`` (float32).

    See the module docstring for the definitions; ``parents`` is needed for bones, ``coords``
    is the coordinates per joint (3, or 2 for image keypoints).
    """
    check_modality(modality, parents, x.shape[-1], coords)
    x = np.asarray(x, dtype=np.float32)
    if modality == "joint":
        return x
    *lead, t, d = x.shape
    points = x.reshape(*lead, t, -1, coords)  # (..., T, M*V, C)
    if "bone" in modality:
        points = _bones(points, parents)
    if "motion" in modality:
        points = _motion(points)
    return points.reshape(*lead, t, d)


def _present(points: np.ndarray) -> np.ndarray:
    """``(..., C) -> (...)``: a point is present when any coordinate is non-zero."""
    return np.any(points != 0, axis=-1)


def _bones(points: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """``(..., T, M*V, C)`` joints -> bones (child minus parent, 0 where either is absent)."""
    v = len(parents)
    m = points.shape[-2] // v
    body = points.reshape(*points.shape[:-2], m, v, points.shape[-1])  # (..., T, M, V, C)
    index = np.array([p if p >= 0 else j for j, p in enumerate(parents)])  # root: itself
    parent = body[..., index, :]  # (..., T, M, V, C)
    both = (_present(body) & _present(parent))[..., None]
    bones = np.where(both, body - parent, np.float32(0))
    return bones.reshape(points.shape)


def _motion(points: np.ndarray) -> np.ndarray:
    """``(..., T, P, C)`` -> frame differences; 0 at t = 0 and where a frame lacks the point."""
    prev = np.concatenate([np.zeros_like(points[..., :1, :, :]), points[..., :-1, :, :]],
                          axis=-3)  # (..., T, P, C): frame t-1 (zeros before the first)
    both = (_present(points) & _present(prev))[..., None]
    return np.where(both, points - prev, np.float32(0))
