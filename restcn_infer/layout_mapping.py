"""Joints of one layout built from another's, matched by canonical name:
:func:`layout_mapping`, with the derived joints of :data:`DERIVED_JOINTS` where the source lacks
a joint by name but has what a documented rule needs (e.g. the hip centre ``SpineBase`` = the
mean of the two hips), and :func:`joint_map`, the pure reordering.

A derived joint averages only the source joints present in each frame (a joint is present when
any coordinate is non-zero), so a hip centre with one hip missing is that hip, not a point
halfway to the origin; with none present it is absent (zero). Any number of coordinates works
(2-D and 3-D keypoints alike). Both functions are re-exported by :mod:`restcn_infer.layouts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from restcn_infer.errors import LayoutError

if TYPE_CHECKING:
    from restcn_infer.layouts import JointLayout

#: Canonical joint -> ways to compute it from other canonical joints, tried in order: the mean
#: of the listed joints present in a frame (zero where none is). Used only for a target joint
#: the source lacks by name.
DERIVED_JOINTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "SpineBase": (("HipLeft", "HipRight"),),  # hip centre
    "SpineShoulder": (("ShoulderLeft", "ShoulderRight"),),  # shoulder centre
    "SpineMid": (("HipLeft", "HipRight", "ShoulderLeft", "ShoulderRight"),),  # torso centre
    "Head": (("EarLeft", "EarRight"),),  # head centre
    "Neck": (("ShoulderLeft", "ShoulderRight", "EarLeft", "EarRight"),),  # shoulders to head
    "HandLeft": (("PinkyLeft", "IndexLeft"),),  # palm, from MediaPipe's knuckles
    "HandRight": (("PinkyRight", "IndexRight"),),
    "FootLeft": (("BigToeLeft", "SmallToeLeft"), ("FootIndexLeft",)),  # toes
    "FootRight": (("BigToeRight", "SmallToeRight"), ("FootIndexRight",)),
}


@dataclass(frozen=True)
class LayoutMapping:
    """How to build ``target`` joints from ``source`` joints.

    Attributes:
        sources: per target joint, the source joints it comes from: one (copied) or several
            (averaged over those present in the frame: a derived joint).
    """

    source: JointLayout
    target: JointLayout
    sources: tuple[tuple[int, ...], ...]

    @property
    def index(self) -> np.ndarray | None:
        """int64 ``(V_target,)`` source index per target joint; None when a joint is derived."""
        if any(len(s) != 1 for s in self.sources):
            return None
        return np.array([s[0] for s in self.sources], dtype=np.int64)

    @property
    def derived(self) -> dict[str, tuple[str, ...]]:
        """Derived target joint name -> the source joint names averaged for it."""
        return {self.target.joint_names[j]: tuple(self.source.joint_names[i] for i in s)
                for j, s in enumerate(self.sources) if len(s) > 1}

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(..., V_source, C)`` -> ``(..., V_target, C)`` (any C: 2-D, 3-D, float32 kept).

        A derived joint is the mean of its source joints present in that frame (a joint is
        present when any coordinate is non-zero) and zero where none is.
        """
        first = np.array([s[0] for s in self.sources], dtype=np.int64)
        out = x[..., first, :]  # (..., V_target, C), a copy
        for j, src in enumerate(self.sources):
            if len(src) == 1:
                continue
            points = x[..., list(src), :]  # (..., k, C)
            present = np.any(points != 0, axis=-1, keepdims=True)  # (..., k, 1)
            count = present.sum(axis=-2)  # (..., 1)
            total = np.where(present, points, 0).sum(axis=-2)  # (..., C)
            out[..., j, :] = np.where(count > 0, total / np.maximum(count, 1), 0)
        return out

    def apply_scores(self, scores: np.ndarray) -> np.ndarray:
        """Per-joint confidences ``(..., V_source)`` -> ``(..., V_target)``; a derived joint
        scores as its least confident source."""
        out = np.stack([scores[..., list(s)].min(axis=-1) for s in self.sources], axis=-1)
        return out.astype(scores.dtype, copy=False)


def layout_mapping(source: JointLayout, target: JointLayout) -> LayoutMapping:
    """Match ``target`` joints to ``source`` joints by canonical name, deriving the missing
    ones by :data:`DERIVED_JOINTS` where the source has what a rule needs.

    Raises:
        LayoutError: target joints that neither exist in ``source`` nor can be derived.
    """
    by_name = {source.canonical_name(j): j for j in range(source.num_joints)}
    sources: list[tuple[int, ...]] = []
    missing = []
    for j in range(target.num_joints):
        name = target.canonical_name(j)
        if name in by_name:
            sources.append((by_name[name],))
            continue
        rule = next((r for r in DERIVED_JOINTS.get(name, ()) if all(n in by_name for n in r)),
                    None)
        if rule is None:
            missing.append(target.joint_names[j])
        else:
            sources.append(tuple(by_name[n] for n in rule))
    if missing:
        raise LayoutError(
            f"layout {source.name} has no joints matching {missing} of layout {target.name}"
        )
    return LayoutMapping(source, target, tuple(sources))


def joint_map(source: JointLayout, target: JointLayout) -> np.ndarray:
    """Index into ``source`` joints for every ``target`` joint, matched by canonical name.

    Returns:
        int64 array of shape (target.num_joints,).

    Raises:
        LayoutError: a target joint has no counterpart in ``source`` (also when it could be
            derived: use :func:`layout_mapping` for that).
    """
    mapping = layout_mapping(source, target)
    index = mapping.index
    if index is None:
        raise LayoutError(
            f"layout {source.name} has no joints matching {sorted(mapping.derived)} of layout "
            f"{target.name}; they can be derived ({_describe(mapping.derived)}) by "
            "layout_mapping()"
        )
    return index


def _describe(derived: Mapping[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{name} = mean of {', '.join(parts)}" for name, parts in derived.items())
