"""What a reader of pose-estimator output returns: :class:`Keypoints`, coordinates and
confidence kept apart.

Pose estimators give per joint ``x, y`` (2-D, image) or ``x, y, z`` (3-D) plus a confidence
(MMPose ``keypoint_scores``, OpenPose ``c``, MediaPipe ``visibility``). The confidence is never
a coordinate: :attr:`Keypoints.coords` is ``(M, T, V, C)`` with ``C = 2`` or ``3``, and
:attr:`Keypoints.confidence` a separate ``(M, T, V)``. :meth:`Keypoints.masked` zeroes the
joints below a confidence threshold, zero being what every restcn stage reads as *absent*
(absent bodies are all zeros too).

The sequence contract, float32 ``(M, T, V, C)`` with the coordinates a model reads (3 by
default, 2 for a 2-D model), is :meth:`Keypoints.sequence` (what
:func:`restcn_infer.readers.load_sequence` returns): keypoints of the other kind are refused
there, never projected or padded.

People become bodies by :func:`assemble_bodies`: by track id where the format tracks people
(one body per track, the tracks seen in most frames first), else by their order in each frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from restcn_infer.bounded_json import JsonInputError, loads_bounded
from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import JointLayout
from restcn_infer.limits import (
    MAX_ABS_COORDINATE,
    MAX_BODIES,
    MAX_FRAMES,
    MAX_JOINTS,
    MAX_JSON_FILE_BYTES,
    check_sequence_shape,
    read_file_limited,
)

#: Joints scored below this are zeroed by :meth:`Keypoints.masked` (MMPose's own drawing
#: threshold ``kpt_thr``; OpenPose marks undetected joints with 0).
DEFAULT_MIN_CONFIDENCE = 0.3
#: What the coordinates measure: metres, image pixels, or image fractions (MediaPipe).
UNITS = ("m", "px", "normalised")


@dataclass(frozen=True)
class Keypoints:
    """One recording's skeletons as a reader found them.

    Attributes:
        coords: float32 ``(M, T, V, C)``, ``C`` = 2 (x, y) or 3 (x, y, z); zeros where a body
            or joint is absent.
        confidence: float32 ``(M, T, V)`` in [0, 1], zeros where absent; None when the format
            has none (Kinect files, plain arrays).
        layout: the layout the source declares or implies; None when only the joint count
            says (plain arrays).
        units: one of :data:`UNITS`.
        track_ids: per body, the source's track id, or None where people are untracked.
    """

    coords: np.ndarray
    confidence: np.ndarray | None = None
    layout: JointLayout | None = None
    units: str = "m"
    track_ids: tuple[Hashable | None, ...] = ()

    @property
    def coords_per_joint(self) -> int:
        return int(self.coords.shape[-1])

    def masked(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Keypoints:
        """These keypoints with every joint scored below ``min_confidence`` zeroed (its
        confidence too); unchanged without confidence."""
        if self.confidence is None or min_confidence <= 0:
            return self
        low = self.confidence < min_confidence  # (M, T, V)
        return replace(self, coords=np.where(low[..., None], np.float32(0), self.coords),
                       confidence=np.where(low, np.float32(0), self.confidence))

    def sequence(self, source: object = None, coords: int | None = 3) -> np.ndarray:
        """The coordinates as float32 ``(M, T, V, C)``, C = ``coords`` (None: as they are).

        Raises:
            SkeletonFormatError: the keypoints have the other number of coordinates.
        """
        if coords is not None and self.coords_per_joint != coords:
            layout = f"; {self.layout.name}" if self.layout is not None else ""
            if self.coords_per_joint == 2:
                raise SkeletonFormatError(
                    source, f"holds 2-D keypoints (x, y{layout}, {self.units}), 3-D (x, y, z) "
                            "were asked for; read 2-D keypoints for a 2-D model with "
                            "restcn_infer.readers.read_keypoints or load_sequence(coords=2)")
            raise SkeletonFormatError(
                source, f"holds 3-D keypoints (x, y, z{layout}, {self.units}), 2-D (x, y) "
                        "were asked for; restcn does not project them (which projection a 2-D "
                        "model reads is fixed by its training data): give the image keypoints")
        return self.coords


@dataclass(frozen=True)
class Person:
    """One detected person in one frame: ``coords (V, C)``, ``confidence (V,)`` or None,
    ``track`` the source's id (None: untracked)."""

    frame: int
    coords: np.ndarray
    confidence: np.ndarray | None
    track: Hashable | None = None


def person_array(values: object, source: object, where: str, coords: Sequence[int] = (2, 3)
                 ) -> np.ndarray:
    """A JSON list of per-joint coordinate lists as float32 ``(V, C)``, checked: C one of
    ``coords``, 1..MAX_JOINTS joints, finite and below the coordinate limit."""
    if not isinstance(values, list) or not 0 < len(values) <= MAX_JOINTS:
        raise SkeletonFormatError(source, f"{where}: expected a list of 1..{MAX_JOINTS} joints")
    try:
        arr = np.array(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise SkeletonFormatError(source, f"{where}: expected every joint to be a list of "
                                          f"{' or '.join(map(str, coords))} numbers") from None
    if arr.ndim != 2 or arr.shape[1] not in coords:
        raise SkeletonFormatError(source, f"{where}: expected joints of "
                                          f"{' or '.join(map(str, coords))} numbers, got array "
                                          f"of shape {arr.shape}")
    return check_values(arr, source, where)


def check_values(arr: np.ndarray, source: object, where: str) -> np.ndarray:
    """``arr`` (float64, as parsed) as float32 if every value is finite and within
    :data:`MAX_ABS_COORDINATE` (checked before the cast, which would overflow)."""
    if not np.all(np.abs(arr) <= MAX_ABS_COORDINATE):  # NaN fails this too
        raise SkeletonFormatError(source, f"{where}: expected finite numbers of magnitude at "
                                          f"most {MAX_ABS_COORDINATE:g}")
    return arr.astype(np.float32)


def score_array(values: object, joints: int, source: object, where: str) -> np.ndarray:
    """A JSON list of ``joints`` confidences as float32 ``(V,)`` clipped to [0, 1]."""
    if not isinstance(values, list) or len(values) != joints:
        raise SkeletonFormatError(source, f"{where}: expected {joints} scores, one per joint")
    try:
        arr = np.array(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise SkeletonFormatError(source, f"{where}: expected numbers") from None
    if arr.ndim != 1:
        raise SkeletonFormatError(source, f"{where}: expected one number per joint")
    return np.clip(check_values(arr, source, where), 0.0, 1.0)  # (V,)


def assemble_bodies(people: Sequence[Person], frames: int, source: object, *,
                    tracked: bool, max_bodies: int = MAX_BODIES
                    ) -> tuple[np.ndarray, np.ndarray | None, tuple[Hashable | None, ...]]:
    """People of ``frames`` frames as bodies: ``coords (M, T, V, C)``, ``confidence (M, T, V)``
    (None when no person has one), and the track id of each body.

    With ``tracked``, body = track, the tracks in most frames first (ties: first seen), a
    track seen twice in one frame keeps its first person; without, body = the person's order
    in its frame. At most ``max_bodies`` bodies are kept. The dense array is sized only after
    its element count passed the limits.

    Raises:
        SkeletonFormatError: no frame or no person, people of different joint counts or
            coordinates, or a sequence beyond the limits.
    """
    if not 0 < frames <= MAX_FRAMES:
        raise SkeletonFormatError(source, f"expected 1..{MAX_FRAMES:,} frames, got {frames:,}")
    shapes = {p.coords.shape for p in people}
    if not shapes:
        raise SkeletonFormatError(source, f"no person in any of the {frames:,} frames")
    if len(shapes) > 1:
        raise SkeletonFormatError(source, f"people have different joint shapes {sorted(shapes)}")
    v, c = shapes.pop()
    if tracked:
        seen = Counter(p.track for p in people)
        first = {}
        for i, p in enumerate(people):
            first.setdefault(p.track, i)
        order = sorted(seen, key=lambda t: (-seen[t], first[t]))[:max_bodies]
        body_of = {track: b for b, track in enumerate(order)}
        slots = [body_of.get(p.track) for p in people]
        track_ids: tuple[Hashable | None, ...] = tuple(order)
    else:
        rank: Counter[int] = Counter()
        slots = []
        for p in people:
            slots.append(rank[p.frame] if rank[p.frame] < max_bodies else None)
            rank[p.frame] += 1
        track_ids = (None,) * min(max_bodies, max(rank.values(), default=1))
    m = max(len(track_ids), 1)
    check_sequence_shape((m, frames, v, c), source)  # before anything is sized from it
    coords = np.zeros((m, frames, v, c), dtype=np.float32)
    scored = any(p.confidence is not None for p in people)
    confidence = np.zeros((m, frames, v), dtype=np.float32) if scored else None
    filled = np.zeros((m, frames), dtype=bool)
    for p, body in zip(people, slots):
        if body is None or filled[body, p.frame]:
            continue
        filled[body, p.frame] = True
        coords[body, p.frame] = p.coords
        if confidence is not None:
            confidence[body, p.frame] = 1.0 if p.confidence is None else p.confidence
    return coords, confidence, track_ids


def read_json(path: object, max_bytes: int = MAX_JSON_FILE_BYTES) -> object:
    """A JSON document from ``path``, bounded (size, nesting, number lengths; no NaN).

    Raises:
        SkeletonFormatError: unreadable, too large, or not JSON (with the line where known).
    """
    data = read_file_limited(path, max_bytes, "a .json file")
    try:
        return loads_bounded(data, max_bytes=max_bytes)
    except JsonInputError as exc:
        raise SkeletonFormatError(path, f"expected JSON: {exc.reason}", line=exc.line) from None
