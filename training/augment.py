"""Training-time augmentation of raw skeleton sequences ``(M, T, V, 3)``, before windowing.

Everything here keeps the paper's principle of raw coordinates: nothing is normalised, the
augmentations only show the network more of what raw data can look like.

- ``crop``: keep a random contiguous part of the valid frames (a fraction ~ U(crop, 1)); the
  window policy then resamples or pads it as at inference, so a crop also varies the speed.
- ``rotate``: turn the whole sequence by an angle ~ U(-rotate, rotate) degrees about the
  vertical (y) axis through its centroid, i.e. see the same action from another viewpoint.
- ``tilt``: then tip it forward/back by ~ U(-tilt, tilt) degrees about the horizontal (x) axis,
  as a camera mounted higher or lower would see it.
- ``scale``: scale it by ~ U(1 - scale, 1 + scale) about the same centroid (body size).
- ``shift``: move it by ~ U(-shift, shift) metres along each axis (where the sensor stands).

Absent joints and bodies (all-zero) stay exactly zero.
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

    @property
    def moves(self) -> bool:
        """Whether the coordinates change (rotate, tilt, scale or shift), not only the frames."""
        return self.rotate > 0.0 or self.tilt > 0.0 or self.scale > 0.0 or self.shift > 0.0

    @property
    def enabled(self) -> bool:
        return self.crop < 1.0 or self.moves

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(M, T, V, 3)`` -> ``(M, T', V, 3)`` float32, T' <= T (leading/trailing empties cut)."""
        start, stop = valid_span(seq)
        seq = seq[:, start:stop]
        t = seq.shape[1]
        if self.crop < 1.0 and t > 1:
            keep = max(1, round(t * rng.uniform(self.crop, 1.0)))
            first = int(rng.integers(0, t - keep + 1))
            seq = seq[:, first:first + keep]
        if not self.moves:
            return seq.astype(np.float32, copy=False)
        angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate))
        factor = rng.uniform(1.0 - self.scale, 1.0 + self.scale)
        offset = rng.uniform(-self.shift, self.shift, 3)  # (3,)
        c, s = np.cos(angle), np.sin(angle)
        rotation = factor * np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # (3, 3)
        if self.tilt > 0.0:  # drawn last, so runs without tilt keep their random streams
            a = np.deg2rad(rng.uniform(-self.tilt, self.tilt))
            ca, sa = np.cos(a), np.sin(a)
            rotation = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]]) @ rotation
        seq = seq.astype(np.float32, copy=False)
        points = seq.reshape(-1, 3)  # (M*T'*V, 3)
        # numpy's reductions over a length-3 last axis are slow: compare columns, sum by BLAS
        present = (points[:, 0] != 0) | (points[:, 1] != 0) | (points[:, 2] != 0)  # (N,)
        count = np.count_nonzero(present)
        if count == 0:
            return seq
        # absent joints are all-zero, so the sum over all points is the sum over the present
        center = np.ones(len(points), np.float32) @ points / np.float32(count)  # (3,)
        moved = (points - center) @ rotation.T.astype(np.float32)  # (N, 3)
        moved += (center + offset).astype(np.float32)
        moved *= present[:, None]  # absent joints stay exactly zero
        return moved.reshape(seq.shape)  # (M, T', V, 3)
