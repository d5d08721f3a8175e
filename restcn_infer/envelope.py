"""The input envelope: what the bodies of a model's training data looked like, compactly.

A network that reads raw coordinates answers anything with confidence, including a body in
millimetres, upside down, or in another joint order; the envelope lets the runtime see that an
input is unlike everything the model was trained on (:mod:`restcn_infer.plausibility`). It is
measured once from the training split when a run starts (``restcn_training.engine``), stored in
the model description (``ModelSpec.envelope``) and so in the ONNX metadata.

Measures of one sequence ``(M, T, V, C)`` in a layout (:func:`measure`), C = 3 or 2, over the
joints that are present (a joint is absent when all its coordinates are exactly 0, as readers
write it), each in the data's own units (metres for Kinect data; pixels or image fractions for a
2-D model's image keypoints):

- ``scale``: the median over bones of each bone's median length over the frames, in the
  data's unit (metres for Kinect data: 0.17-0.25 on NW-UCLA, UTD-MHAD and NTU RGB+D mapped to
  ``kinect20``; 0.13 for ``ntu25``, whose hand bones are short);
- ``bone_ratios``: each bone's median length divided by ``scale``: the body's proportions,
  which tell one joint order from another;
- ``up``: the mean unit vector from the hips (``SpineBase``, else the mid-point of the hips) to
  the head (``Head``, else ``Neck``, else the ``Nose`` of pose-estimator layouts): the data's
  vertical axis and its sign (image keypoints: y down);
- ``centre``: the median position of the bodies (mean of their present joints);
- ``depth_ratio``: the range of the third coordinate over the larger range of the first two:
  near 0 for 2-D image keypoints with a confidence or 0 as third value (3-D data only).

An :class:`Envelope` keeps robust percentiles of these over the training sequences (at most
:data:`MAX_MEASURED` of them, evenly spaced). Models exported before envelopes existed (ONNX
format 1, such as the bundled NW-UCLA models) and checkpoints made without training data get
:func:`default_envelope`: a human body measured in metres (:data:`DEFAULT_SCALE`), and, when the
model's own mean skeleton looks like a body (left and right bones of equal length, a head above
the hips), that mean's proportions and vertical axis. Its position and depth are not known, so
they go unchecked. A 2-D model has no such default size (pixels have no human scale): without
a measured envelope its sizes go unchecked (:data:`UNKNOWN_SCALE`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from restcn_infer.errors import ModelError
from restcn_infer.fields import Fields
from restcn_infer.layouts import JointLayout

#: Training sequences measured at most (evenly spaced over the split): percentiles settle long
#: before, and a 40,000-sequence NTU split is measured in seconds.
MAX_MEASURED = 2000
#: Median bone length of a human body in metres, (low, typical, high): the Kinect layouts
#: measure 0.13-0.25 on real data; the margins admit children and other layouts.
DEFAULT_SCALE = (0.06, 0.2, 0.5)
#: The scale of a 2-D model without a measured envelope: any size is accepted.
UNKNOWN_SCALE = (1e-9, 1.0, 1e9)
#: What a 2-D model's network reads as the training data's median bone length (see
#: :func:`unit_scale`): a human's in metres, so the recipe tuned on Kinect data applies.
TYPICAL_BONE = DEFAULT_SCALE[1]
#: Joints that give the vertical axis, by canonical (Kinect v2) name, in order of preference.
_TOP = ("Head", "Neck", "Nose")
_BOTTOM = ("SpineBase",)
_HIPS = ("HipLeft", "HipRight")
#: A mean skeleton "looks like a body" when its left and right bones differ by less than this
#: (median absolute log ratio).
_SYMMETRY_TOLERANCE = 0.25

Vector = tuple[float, ...]  # one value per coordinate (3, or 2 for a 2-D model)


@dataclass(frozen=True)
class Measures:
    """What :func:`measure` finds in one sequence; ``None`` where nothing could be measured."""

    scale: float | None
    bone_ratios: np.ndarray  # (E,) per bone of the layout, NaN for a bone never present
    up: np.ndarray | None  # (C,) unit
    centre: np.ndarray | None  # (C,)
    depth_ratio: float | None  # None for 2-D data


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():  # an all-NaN column is a bone never seen: NaN is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=axis)


def _joint(layout: JointLayout, names: tuple[str, ...]) -> list[int]:
    canonical = [layout.canonical_name(j) for j in range(layout.num_joints)]
    return [canonical.index(name) for name in names if name in canonical]


def vertical_joints(layout: JointLayout) -> tuple[list[int], list[int]] | None:
    """``(top, bottom)`` joint indices that give the layout's vertical axis, or None."""
    top = _joint(layout, _TOP)[:1]
    hips = _joint(layout, _HIPS)
    bottom = _joint(layout, _BOTTOM)[:1] or (hips if len(hips) == 2 else [])
    return (top, bottom) if top and bottom else None


def measure(seq: np.ndarray, layout: JointLayout) -> Measures:
    """The measures of the module docstring for one sequence ``(M, T, V, C)`` in ``layout``."""
    seq = np.asarray(seq, dtype=np.float64)
    present = np.any(seq != 0, axis=-1)  # (M, T, V)
    bones = np.asarray(layout.bones, dtype=np.int64).reshape(-1, 2)  # (E, 2) child, parent
    length = np.linalg.norm(seq[:, :, bones[:, 0]] - seq[:, :, bones[:, 1]], axis=-1)  # (M,T,E)
    valid = present[:, :, bones[:, 0]] & present[:, :, bones[:, 1]]
    per_bone = _nanmedian(np.where(valid, length, np.nan).reshape(-1, len(bones)), 0)  # (E,)
    scale = float(np.nanmedian(per_bone)) if np.isfinite(per_bone).any() else None
    if scale is not None and not scale > 0:
        scale = None
    ratios = per_bone / scale if scale else np.full(len(bones), np.nan)

    up = None
    vertical = vertical_joints(layout)
    if vertical is not None:
        top, bottom = vertical
        both = present[:, :, top].all(-1) & present[:, :, bottom].all(-1)  # (M, T)
        if both.any():
            vec = seq[:, :, top].mean(2) - seq[:, :, bottom].mean(2)  # (M, T, C)
            vec = vec[both]
            norm = np.linalg.norm(vec, axis=-1, keepdims=True)
            vec = vec[norm[:, 0] > 0] / norm[norm[:, 0] > 0]
            if len(vec):
                mean = vec.mean(0)
                if np.linalg.norm(mean) > 0:
                    up = mean / np.linalg.norm(mean)

    body_present = present.any(-1)  # (M, T)
    centre = depth = None
    if body_present.any():
        counts = present.sum(-1, keepdims=True)  # (M, T, 1)
        centres = seq.sum(2) / np.maximum(counts, 1)  # (M, T, C) mean of present joints
        centre = np.median(centres[body_present], axis=0)
        points = seq[present]  # (P, C)
        extent = points.max(0) - points.min(0)
        wide = max(extent[0], extent[1])
        depth = float(extent[2] / wide) if wide > 0 and len(extent) > 2 else None
    return Measures(scale, ratios, up, centre, depth)


@dataclass(frozen=True)
class Envelope:
    """Robust percentiles of the training bodies' measures (see the module docstring).

    Attributes:
        origin: where it comes from: ``training data``, ``mean skeleton`` or ``default``.
        sequences: how many sequences were measured (0 for a default).
        scale: ``(p1, p50, p99)`` of the per-sequence median bone length.
        bone_ratios: per bone of the layout, the median proportion (bone / scale); None: unknown.
        up: the mean vertical axis (unit, from hips to head, one value per coordinate); None:
            unknown.
        up_cos_p1: the 1st percentile of the cosine between a sequence's axis and ``up``.
        centre_low, centre_high: the 1st and 99th percentiles of the body centre per axis.
        depth_ratio_p1: the 1st percentile of the depth ratio; None: unknown.
    """

    origin: str
    sequences: int
    scale: tuple[float, float, float]
    bone_ratios: tuple[float, ...] | None = None
    up: Vector | None = None
    up_cos_p1: float | None = None
    centre_low: Vector | None = None
    centre_high: Vector | None = None
    depth_ratio_p1: float | None = None

    def __post_init__(self) -> None:
        low, mid, high = self.scale
        if not (0 < low <= mid <= high and math.isfinite(high)):
            raise ModelError(f"envelope scale must be 0 < p1 <= p50 <= p99, got {self.scale}")
        if (self.centre_low is None) != (self.centre_high is None):
            raise ModelError("envelope needs both centre percentiles or neither")

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"origin": self.origin, "sequences": self.sequences,
                               "scale": list(self.scale)}
        for name in ("bone_ratios", "up", "up_cos_p1", "centre_low", "centre_high",
                     "depth_ratio_p1"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = list(value) if isinstance(value, tuple) else value
        return doc

    @property
    def y_down(self) -> bool:
        """Whether the data's y axis points down (its up direction has a negative y), as image
        coordinates do: pictures are then drawn with y inverted, so heads are up."""
        return self.up is not None and self.up[1] < 0

    @classmethod
    def from_dict(cls, raw: Any, where: str = "envelope", coords: int = 3) -> Envelope:
        """Typed and checked (``coords``: the model's coordinates per joint, the length of the
        position and axis vectors); :class:`ModelError` names the field."""
        f = Fields(raw, where, ModelError)

        def vector(name: str, size: int | None = coords) -> tuple[float, ...] | None:
            if name not in f.raw:
                return None
            values = f.float_list(name)
            if size is not None and len(values) != size:
                raise f.fail(name, f"must hold {size} numbers, got {len(values)}")
            return tuple(values)

        def number(name: str) -> float | None:
            if name not in f.raw:
                return None
            value = f.raw[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                    value):
                raise f.fail(name, f"must be a finite number, got {value!r}")
            return float(value)

        scale = vector("scale", 3)
        if scale is None:
            raise f.fail("scale", "is missing")
        try:
            return cls(origin=f.str("origin", "training data"),
                       sequences=f.int("sequences", 0, low=0), scale=scale,  # type: ignore[arg-type]
                       bone_ratios=vector("bone_ratios", None), up=vector("up"),  # type: ignore[arg-type]
                       up_cos_p1=number("up_cos_p1"),
                       centre_low=vector("centre_low"),  # type: ignore[arg-type]
                       centre_high=vector("centre_high"),  # type: ignore[arg-type]
                       depth_ratio_p1=number("depth_ratio_p1"))
        except ModelError as exc:
            raise ModelError(f"{where}: {exc}") from None

    def check_coords(self, coords: int, where: str = "envelope") -> None:
        """Position and axis vectors must hold ``coords`` numbers (:class:`ModelError`)."""
        for name in ("up", "centre_low", "centre_high"):
            value = getattr(self, name)
            if value is not None and len(value) != coords:
                raise ModelError(f"{where}: {name} has {len(value)} values, the model reads "
                                 f"{coords} coordinates per joint")

    def check_layout(self, layout: JointLayout, where: str = "envelope") -> None:
        """The bone proportions must be one per bone of ``layout`` (:class:`ModelError`)."""
        if self.bone_ratios is not None and len(self.bone_ratios) != len(layout.bones):
            raise ModelError(f"{where}: bone_ratios has {len(self.bone_ratios)} values, layout "
                             f"{layout.name} has {len(layout.bones)} bones")


def _vector(value: np.ndarray | None) -> Vector | None:
    return None if value is None else tuple(float(v) for v in value)  # type: ignore[return-value]


def envelope_of(sequences: Iterable[np.ndarray], layout: JointLayout) -> Envelope | None:
    """The envelope of ``sequences`` ``(M, T, V, C)`` in ``layout``; None when no sequence has
    a measurable body."""
    found = [m for m in (measure(seq, layout) for seq in sequences) if m.scale is not None]
    if not found:
        return None
    scales = np.array([m.scale for m in found])
    p1, p50, p99 = (float(v) for v in np.percentile(scales, [1, 50, 99]))
    ratios = _nanmedian(np.stack([m.bone_ratios for m in found]), 0)
    ratios = np.where(np.isfinite(ratios), ratios, 0.0)  # 0: a bone never seen, not compared
    ups = np.array([m.up for m in found if m.up is not None])  # (n, C)
    up = cos_p1 = None
    if len(ups) and np.linalg.norm(ups.mean(0)) > 0:
        up = ups.mean(0) / np.linalg.norm(ups.mean(0))
        cos_p1 = float(np.percentile(ups @ up, 1))
    centres = np.array([m.centre for m in found if m.centre is not None])  # (n, C)
    depths = [m.depth_ratio for m in found if m.depth_ratio is not None]
    return Envelope(origin="training data", sequences=len(found), scale=(p1, p50, p99),
                    bone_ratios=tuple(float(r) for r in ratios), up=_vector(up), up_cos_p1=cos_p1,
                    centre_low=_vector(np.percentile(centres, 1, axis=0)) if len(centres) else None,
                    centre_high=_vector(np.percentile(centres, 99, axis=0))
                    if len(centres) else None,
                    depth_ratio_p1=float(np.percentile(depths, 1)) if depths else None)


def envelope_of_split(split: Any, layout: JointLayout,
                      limit: int = MAX_MEASURED) -> Envelope | None:
    """The envelope of a labelled split (``len(split)``, ``split.sequence(i)``), measured on at
    most ``limit`` sequences evenly spaced over it."""
    n = len(split)
    index = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64)) if n else []
    return envelope_of((split.sequence(int(i)) for i in index), layout)


def _mirrored_bones(layout: JointLayout) -> list[tuple[int, int]]:
    """Pairs of bone indices whose joints are each other's left/right mirror."""
    names = [layout.canonical_name(j) for j in range(layout.num_joints)]

    def mirror(name: str) -> str:
        return name.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")

    edges = {(names[c], names[p]): i for i, (c, p) in enumerate(layout.bones)}
    pairs = []
    for (child, parent), i in edges.items():
        j = edges.get((mirror(child), mirror(parent)))
        if j is not None and i < j:
            pairs.append((i, j))
    return pairs


def default_envelope(mean: np.ndarray, layout: JointLayout, bodies: int,
                     joint_modality: bool = True, coords: int = 3) -> Envelope:
    """The envelope of a model without one (see the module docstring).

    Args:
        mean: the model's mean skeleton ``(D,)``, body-major.
        joint_modality: whether the mean is of joint coordinates (a bone or motion model's mean
            is not a skeleton and is not used).
        coords: coordinates per joint (2: no default size, see :data:`UNKNOWN_SCALE`).
    """
    scale = DEFAULT_SCALE if coords == 3 else UNKNOWN_SCALE
    plain = Envelope(origin="default", sequences=0, scale=scale)
    if not joint_modality:
        return plain
    body = np.asarray(mean, dtype=np.float64).reshape(bodies, 1, layout.num_joints, coords)[:1]
    found = measure(body, layout)
    pairs = _mirrored_bones(layout)
    if found.scale is None or found.up is None or not pairs:
        return plain
    lengths = found.bone_ratios
    asymmetry = np.abs(np.log(np.array([lengths[i] / lengths[j] for i, j in pairs])))
    if not np.all(np.isfinite(asymmetry)) or np.median(asymmetry) > _SYMMETRY_TOLERANCE:
        return plain  # not a body: an untrained model's random mean, say
    return Envelope(origin="mean skeleton", sequences=0, scale=scale,
                    bone_ratios=tuple(float(r) for r in np.nan_to_num(lengths)),
                    up=_vector(found.up))


def unit_scale(envelope: Envelope | None, coords: int) -> float:
    """The factor a network multiplies its mean-subtracted input by: 1 for 3-D coordinates
    (metres by contract: ``--units`` converts), and for 2-D keypoints, whose units (pixels,
    image fractions) say nothing about size, :data:`TYPICAL_BONE` over the training data's
    median bone length, so their numbers are as large as Kinect metres.

    It is one fixed unit per model, chosen at training time and stored in the model's config
    (``input_scale``): not a per-sequence normalisation, so a body twice as large (a 4K camera,
    a closer person) still reads twice as large, as in the raw data. Res-TCN needs it because
    conv1's output rides the identity shortcuts un-normalised: at pixel magnitudes it swamps
    every residual unit's contribution.
    """
    if coords == 3 or envelope is None or envelope.origin != "training data":
        return 1.0
    return float(TYPICAL_BONE / envelope.scale[1])


def envelope_from_mapping(raw: Mapping[str, Any] | None, layout: JointLayout,
                          where: str, coords: int = 3) -> Envelope | None:
    """A stored envelope (or None), checked against the model's layout and coordinates."""
    if raw is None:
        return None
    envelope = Envelope.from_dict(raw, where, coords)
    envelope.check_layout(layout, where)
    return envelope
