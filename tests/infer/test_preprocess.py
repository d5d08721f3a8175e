"""The one preprocessing path (``InputSpec.prepare`` and its steps): window policies, bodies,
layout mapping, body-major flattening."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import KINECT20, NTU25
from restcn_infer.preprocess import (
    fit_bodies,
    fit_window,
    flatten,
    resample_frames,
    unflatten,
    valid_span,
)
from restcn_infer.spec import InputSpec


def ramp(m=1, t=5, v=2):
    """(M, T, V, 3) whose value at frame t is t+1 everywhere (no empty frames)."""
    frames = np.arange(1, t + 1, dtype=np.float32)[None, :, None, None]
    return np.broadcast_to(frames, (m, t, v, 3)).copy()


def test_resample_keeps_ends_and_interpolates_linearly():
    out = resample_frames(ramp(t=5), 9)
    assert out.shape == (1, 9, 2, 3)
    np.testing.assert_allclose(out[0, :, 0, 0], np.linspace(1, 5, 9), rtol=0, atol=1e-6)


def test_single_frame_is_repeated():
    out = fit_window(ramp(t=1), 4)
    assert out.shape == (1, 4, 2, 3) and np.all(out == 1)


def test_empty_frames_at_the_ends_are_dropped_but_not_inside():
    seq = np.zeros((1, 8, 2, 3), np.float32)
    seq[0, 2] = 1.0
    seq[0, 5] = 2.0  # frames 3, 4 stay empty inside the span
    assert valid_span(seq) == (2, 6)
    out = fit_window(seq, 4, "pad")
    np.testing.assert_array_equal(out[0, :, 0, 0], [1, 0, 0, 2])


def test_pad_policy_zero_pads_at_the_end_and_resamples_long_input():
    out = fit_window(ramp(t=3), 5, "pad")
    np.testing.assert_array_equal(out[0, :, 0, 0], [1, 2, 3, 0, 0])
    long = fit_window(ramp(t=9), 5, "pad")
    np.testing.assert_allclose(long[0, :, 0, 0], [1, 3, 5, 7, 9])


def test_all_empty_sequence_is_a_format_error():
    with pytest.raises(SkeletonFormatError, match="at least one frame"):
        fit_window(np.zeros((1, 4, 2, 3), np.float32), 8)


def test_unknown_policy_and_bad_window():
    with pytest.raises(ValueError, match="policy"):
        fit_window(ramp(), 4, "crop")
    with pytest.raises(ValueError, match="window"):
        fit_window(ramp(), 0)


def test_fit_bodies_pads_with_zero_bodies_and_drops_extra():
    seq = ramp(m=1)
    two = fit_bodies(seq, 2)
    assert two.shape[0] == 2 and np.all(two[1] == 0) and np.array_equal(two[0], seq[0])
    assert fit_bodies(np.concatenate([seq, seq + 1, seq + 2]), 2).shape[0] == 2


def test_flatten_is_body_major():
    seq = np.random.default_rng(0).normal(size=(2, 4, 3, 3)).astype(np.float32)
    flat = flatten(seq)
    assert flat.shape == (4, 18)
    body, frame, joint, coord = 1, 2, 2, 1
    assert flat[frame, body * 9 + joint * 3 + coord] == seq[body, frame, joint, coord]
    np.testing.assert_array_equal(unflatten(flat, 2), seq)


@settings(max_examples=50, deadline=None)
@given(
    t=st.integers(1, 40),
    window=st.integers(1, 70),
    policy=st.sampled_from(["resample", "pad"]),
    m=st.integers(1, 3),
)
def test_any_nonempty_sequence_fits_any_window(t, window, policy, m):
    seq = np.random.default_rng(t).normal(size=(m, t, 20, 3)).astype(np.float32)
    x = InputSpec(layout=KINECT20, bodies=2, window=window, policy=policy).prepare(seq)
    assert x.shape == (window, 2 * 20 * 3) and x.dtype == np.float32
    assert np.isfinite(x).all()


def test_ntu_input_for_a_kinect20_model_maps_joints_by_name():
    seq = np.zeros((1, 2, 25, 3), np.float32)
    seq[0, :, :, 0] = np.arange(25)  # x coordinate = NTU joint index
    x = InputSpec(layout=KINECT20, bodies=1, window=2).prepare(seq, layout=NTU25)
    assert x.shape == (2, 60)
    # kinect20 joint 2 (ShoulderCenter) is NTU joint 20 (SpineShoulder).
    assert x[0, 2 * 3] == 20 and x[0, 7 * 3] == 7


def test_a_declared_layout_must_have_the_input_joint_count():
    spec = InputSpec(layout=KINECT20, bodies=1, window=4)
    with pytest.raises(SkeletonFormatError,
                       match="layout kinect20 has 20 joints, the input has 25"):
        spec.prepare(np.ones((1, 4, 25, 3), np.float32), layout=KINECT20, source="a.npy")


def test_an_unknown_joint_count_names_the_file_and_the_model_layout():
    spec = InputSpec(layout=KINECT20, bodies=1, window=4)
    with pytest.raises(SkeletonFormatError,
                       match=r"a\.npy: no joint layout has 13 joints.*kinect20"):
        spec.prepare(np.ones((1, 4, 13, 3), np.float32), source="a.npy")


def test_derived_joints_are_computed_for_the_model_layout():
    """A hip centre the input lacks is the mean of its hips present in each frame."""
    from restcn_infer.layouts import COCO17, OPENPOSE18, layout_mapping

    rng = np.random.default_rng(0)
    seq = rng.normal(size=(1, 3, 17, 3)).astype(np.float32)
    seq[0, 1, 5] = 0  # frame 1: the left shoulder is missing
    seq[0, 2, [5, 6]] = 0  # frame 2: both shoulders are missing
    out = InputSpec(layout=OPENPOSE18, bodies=1, window=3).prepare(seq, layout=COCO17)
    out = out.reshape(3, 18, 3)
    neck = OPENPOSE18.joint_names.index("Neck")  # SpineShoulder: mean of the two shoulders
    np.testing.assert_allclose(out[0, neck], seq[0, 0, [5, 6]].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(out[1, neck], seq[0, 1, 6])  # the one present
    assert not out[2, neck].any()  # none present: absent
    np.testing.assert_array_equal(out, layout_mapping(COCO17, OPENPOSE18).apply(seq)[0])


def test_a_mapping_without_derived_joints_is_the_plain_reorder():
    from restcn_infer.layouts import joint_map

    seq = np.random.default_rng(1).normal(size=(2, 4, 25, 3)).astype(np.float32)
    x = InputSpec(layout=KINECT20, bodies=2, window=4).prepare(seq, layout=NTU25)
    np.testing.assert_array_equal(x, flatten(seq[:, :, joint_map(NTU25, KINECT20)]))
