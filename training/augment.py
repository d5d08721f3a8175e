"""Training-time augmentation of raw skeleton sequences ``(M, T, V, C)``, before windowing.

Everything here keeps the paper's principle of raw coordinates: nothing is normalised, the
augmentations only show the network more of what raw data can look like.

- ``crop``: keep a random contiguous part of the valid frames (a fraction ~ U(crop, 1)); the
  window policy then resamples or pads it as at inference, so a crop also varies the speed.
- ``rotate``: turn the whole sequence by an angle ~ U(-rotate, rotate) degrees about the
  vertical (y) axis through its centroid, i.e. see the same action from another viewpoint.
- ``tilt``: then tip it forward/back by ~ U(-tilt, tilt) degrees about the horizontal (x) axis,
  as a camera mounted higher or lower would see it.
- ``roll``: then turn it by ~ U(-roll, roll) degrees about the depth (z) axis, as a camera
  tilted sideways would see it (with ``rotate`` and ``tilt``: rotation about all three axes).
- ``scale``: scale it by ~ U(1 - scale, 1 + scale) about the same centroid (body size).
- ``shift``: move it by ~ U(-shift, shift) metres along each axis (where the sensor stands).

Absent joints and bodies (all-zero) stay exactly zero.

2-D keypoints (C = 2, image plane) get the orthographic projection of the same transform
applied to a body without depth (every joint at its centroid's depth): the 2 x 2 top-left block
of the 3-D matrix. So ``rotate`` (another viewpoint about the vertical axis) narrows the body
horizontally by cos(angle), ``tilt`` narrows it vertically by cos(tilt), ``roll`` turns it in the
image plane, ``scale`` scales it, and ``shift`` moves it in x and y -- in the data's units
(pixels or image fractions, not metres: set ``shift`` for them). The draws are the same as in
3-D, so a recipe means one thing for both.

:meth:`Augmentation.draw` makes one sequence's random draws and :meth:`Augmentation.apply` applies
them: this numpy version is the per-sample reference that the batched training path
(:mod:`restcn_training.batches`, the same transforms on a whole batch on the device) is pinned to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from restcn_infer.preprocess import valid_span


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms; the defaults change nothing."""

    crop: float = 1.0  # min fraction of the valid frames kept, in (0, 1]
    rotate: float = 0.0  # max |angle| in degrees about the vertical axis
    scale: float = 0.0  # max relative change of size, in [0, 1)
    shift: float = 0.0  # max translation per axis, metres
    tilt: float = 0.0  # max |angle| in degrees about the horizontal (x) axis
    roll: float = 0.0  # max |angle| in degrees about the depth (z) axis

    def __post_init__(self) -> None:
        if not 0.0 < self.crop <= 1.0:
            raise ValueError(f"crop must be in (0, 1], got {self.crop}")
        if not 0.0 <= self.rotate <= 180.0:
            raise ValueError(f"rotate must be in [0, 180] degrees, got {self.rotate}")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError(f"scale must be in [0, 1), got {self.scale}")
        if self.shift < 0.0:
            raise ValueError(f"shift must be >= 0, got {self.shift}")
        if not 0.0 <= self.tilt <= 90.0:
            raise ValueError(f"tilt must be in [0, 90] degrees, got {self.tilt}")
        if not 0.0 <= self.roll <= 90.0:
            raise ValueError(f"roll must be in [0, 90] degrees, got {self.roll}")

    @property
    def moves(self) -> bool:
        """Whether the coordinates change (rotate, tilt, roll, scale, shift), not only frames."""
        return (self.rotate > 0.0 or self.tilt > 0.0 or self.roll > 0.0 or self.scale > 0.0
                or self.shift > 0.0)

    @property
    def enabled(self) -> bool:
        return self.crop < 1.0 or self.moves

    def to_dict(self) -> dict:
        return asdict(self)

    def draw(self, rng: np.random.Generator, frames: int) -> Draws:
        """One sequence's random draws, for ``frames`` valid frames, in a fixed order."""
        keep, first = frames, 0
        if self.crop < 1.0 and frames > 1:
            keep = max(1, round(frames * rng.uniform(self.crop, 1.0)))
            first = int(rng.integers(0, frames - keep + 1))
        if not self.moves:
            return Draws(keep, first)
        angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate))
        factor = rng.uniform(1.0 - self.scale, 1.0 + self.scale)
        offset = rng.uniform(-self.shift, self.shift, 3)  # (3,)
        tilt = np.deg2rad(rng.uniform(-self.tilt, self.tilt)) if self.tilt > 0.0 else 0.0
        roll = np.deg2rad(rng.uniform(-self.roll, self.roll)) if self.roll > 0.0 else 0.0
        return Draws(keep, first, float(angle), float(factor), offset, float(tilt), float(roll))

    def apply(self, seq: np.ndarray, draws: Draws) -> np.ndarray:
        """``(M, T, V, C)`` -> ``(M, T', V, C)`` float32: leading/trailing empty frames cut,
        then the drawn crop, then the drawn rigid transform about the centroid (for C = 2 its
        projection, see the module docstring).

        A crop holding no frame with a body keeps the whole span instead (a sequence with an
        empty stretch inside must not become an empty input).
        """
        start, stop = valid_span(seq)
        seq = seq[:, start:stop]
        cropped = seq[:, draws.first:draws.first + draws.keep]
        if np.any(cropped != 0):
            seq = cropped
        seq = seq.astype(np.float32, copy=False)
        if draws.offset is None:
            return seq
        c = seq.shape[-1]
        points = seq.reshape(-1, c)  # (M*T'*V, C)
        # numpy's reductions over a short last axis are slow: compare columns, sum by BLAS
        present = points[:, 0] != 0  # (N,)
        for k in range(1, c):
            present |= points[:, k] != 0
        count = np.count_nonzero(present)
        if count == 0:
            return seq
        # absent joints are all-zero, so the sum over all points is the sum over the present
        center = np.ones(len(points), np.float32) @ points / np.float32(count)  # (C,)
        rotation = draws.rotation()[:c, :c]  # (C, C): the image-plane block for 2-D
        moved = (points - center) @ rotation.T.astype(np.float32)  # (N, C)
        moved += (center + draws.offset[:c]).astype(np.float32)
        moved *= present[:, None]  # absent joints stay exactly zero
        return moved.reshape(seq.shape)  # (M, T', V, C)

    def __call__(self, seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw and apply: ``(M, T, V, C)`` -> ``(M, T', V, C)`` float32."""
        start, stop = valid_span(seq)
        return self.apply(seq, self.draw(rng, stop - start))


@dataclass(frozen=True)
class Draws:
    """The random draws of one sequence: the crop (``keep`` frames from ``first``, counted in
    the valid span) and, when the augmentation moves coordinates, the transform."""

    keep: int
    first: int
    angle: float = 0.0  # radians about y
    factor: float = 1.0
    offset: np.ndarray | None = None  # (3,) data units (x, y used for 2-D); None: not moved
    tilt: float = 0.0  # radians about x
    roll: float = 0.0  # radians about z

    def rotation(self) -> np.ndarray:
        """``Rz(roll) @ Rx(tilt) @ (factor * Ry(angle))``, float64 ``(3, 3)``."""
        return rotation_matrix(self.angle, self.factor, self.tilt, self.roll)


def rotation_matrix(angle, factor, tilt, roll) -> np.ndarray:
    """``Rz(roll) @ Rx(tilt) @ (factor * Ry(angle))``; array arguments give ``(..., 3, 3)``."""
    angle, factor, tilt, roll = np.broadcast_arrays(*map(np.asarray, (angle, factor, tilt, roll)))
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    c, s = np.cos(angle), np.sin(angle)
    ry = factor[..., None, None] * np.stack([np.stack([c, zero, s], -1),
                                             np.stack([zero, one, zero], -1),
                                             np.stack([-s, zero, c], -1)], -2)
    ca, sa = np.cos(tilt), np.sin(tilt)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, ca, -sa], -1),
                   np.stack([zero, sa, ca], -1)], -2)
    cr, sr = np.cos(roll), np.sin(roll)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry
