"""2-D augmentation: the image-plane projection of the 3-D transform (restcn_training.augment)."""

from __future__ import annotations

import numpy as np
import pytest

from restcn_training.augment import Augmentation, Draws


def flat_body(rng) -> np.ndarray:
    """``(1, T, V, 3)``: keypoints at one depth (z = 4), so projecting them loses nothing."""
    seq = rng.normal(size=(1, 6, 17, 3)).astype(np.float32)
    seq[..., 2] = 4.0
    seq[0, 2, 5] = 0.0  # an absent joint
    return seq


@pytest.mark.parametrize("draws", [
    Draws(6, 0, angle=0.7, factor=1.0, offset=np.array([0.1, -0.2, 0.3])),
    Draws(6, 0, angle=-0.3, factor=1.2, offset=np.zeros(3), tilt=0.4, roll=0.9),
])
def test_2d_keypoints_move_as_the_projection_of_the_3d_transform(draws):
    """x, y of a depth-less body transformed in 3-D are what the 2-D transform gives."""
    seq = flat_body(np.random.default_rng(0))
    augment = Augmentation(rotate=45, scale=0.2, shift=0.3, tilt=30, roll=60)
    moved3 = augment.apply(seq, draws)
    moved2 = augment.apply(np.ascontiguousarray(seq[..., :2]), draws)
    assert moved2.shape == (1, 6, 17, 2)
    np.testing.assert_allclose(moved2, moved3[..., :2], atol=2e-5)
    assert not moved2[0, 2, 5].any()  # absent stays absent


def test_a_viewpoint_turn_narrows_a_2d_body_horizontally():
    seq = np.zeros((1, 1, 2, 2), np.float32)
    seq[0, 0] = [[-1.0, 0.0], [1.0, 2.0]]  # centroid (0, 1)
    out = Augmentation(rotate=60).apply(seq, Draws(1, 0, angle=np.pi / 3, factor=1.0,
                                                   offset=np.zeros(3)))
    np.testing.assert_allclose(out[0, 0], [[-0.5, 0.0], [0.5, 2.0]], atol=1e-6)  # cos 60 = 0.5
