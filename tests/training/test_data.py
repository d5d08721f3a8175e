"""Training data: PYSKL and packed sources, the shared preprocessing path, augmentation, mean."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import write_tiny_packed, write_tiny_pyskl
from restcn_infer.spec import InputSpec
from restcn_training.augment import Augmentation
from restcn_training.data import DataError, WindowedDataset, load_training_data, mean_skeleton


def test_pyskl_source(tmp_path):
    path = write_tiny_pyskl(tmp_path / "tiny.pkl")
    data = load_training_data(path, "train", "val")
    assert data.layout.name == "kinect20" and data.bodies == 1
    assert data.classes == ["class_0", "class_1", "class_2"]
    assert len(data.train) == 12 and len(data.val) == 12
    assert set(data.train.labels.tolist()) == {0, 1, 2}
    (tmp_path / "label_map.txt").write_text("drink\neat\nwave\n")
    assert load_training_data(path, "train", "val").classes == ["drink", "eat", "wave"]


def test_packed_source(tmp_path):
    root = write_tiny_packed(tmp_path / "ntu60_xsub")
    data = load_training_data(root, "train", "test")
    assert data.layout.name == "ntu25" and data.bodies == 2
    assert data.classes == ["drink", "eat", "wave"]
    offsets = np.load(root / "train_offsets.npy")
    x = np.load(root / "train_x.npy")
    seq = data.train.sequence(2)
    assert seq.shape == (2, offsets[3] - offsets[2], 25, 3)
    np.testing.assert_array_equal(seq[1], x[offsets[2]:offsets[3], 1])


@pytest.mark.parametrize(("splits", "message"), [
    (("train", "nope"), "available: train, val"),
    (("nope", "val"), "unknown split 'nope'"),
])
def test_unknown_split_lists_the_available_ones(tmp_path, splits, message):
    path = write_tiny_pyskl(tmp_path / "tiny.pkl")
    with pytest.raises(DataError, match=message):
        load_training_data(path, *splits)


def test_layout_override_must_fit(tmp_path):
    path = write_tiny_pyskl(tmp_path / "tiny.pkl")
    with pytest.raises(DataError, match="ntu25 has 25 joints"):
        load_training_data(path, "train", "val", layout="ntu25")
    with pytest.raises(DataError, match="unknown joint layout"):
        load_training_data(path, "train", "val", layout="h36m17")


def test_windowed_dataset_is_the_inference_path(tmp_path):
    data = load_training_data(write_tiny_pyskl(tmp_path / "tiny.pkl"), "train", "val")
    for policy in ("resample", "pad"):
        spec = InputSpec(layout=data.layout, bodies=data.bodies, window=16, policy=policy)
        ds = WindowedDataset(data.train, spec)
        x, label = ds[3]
        expected = spec.prepare(data.train.sequence(3))
        np.testing.assert_array_equal(x.numpy(), expected)
        assert label == int(data.train.labels[3])


def test_mean_skeleton_is_the_mean_of_the_windowed_split(tmp_path):
    data = load_training_data(write_tiny_pyskl(tmp_path / "tiny.pkl"), "train", "val")
    spec = InputSpec(layout=data.layout, bodies=data.bodies, window=16, policy="pad")
    ds = WindowedDataset(data.train, spec)
    stacked = np.stack([ds[i][0].numpy() for i in range(len(ds))])  # (N, 16, D)
    mean = mean_skeleton(data.train, spec)
    np.testing.assert_allclose(mean, stacked.mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)


def test_augmentation_is_seeded_per_epoch_and_sample(tmp_path):
    data = load_training_data(write_tiny_pyskl(tmp_path / "tiny.pkl"), "train", "val")
    aug = Augmentation(crop=0.7, rotate=30, scale=0.2)
    ds = WindowedDataset(data.train, InputSpec(layout=data.layout, bodies=1, window=16), aug,
                         seed=5)
    a = ds[1][0]
    assert np.array_equal(a, ds[1][0])  # same (seed, epoch, index): same input
    ds.set_epoch(1)
    assert not np.array_equal(a, ds[1][0])


def test_rotation_and_scale_are_rigid_about_the_centroid_and_keep_absent_joints_zero():
    rng = np.random.default_rng(0)
    seq = rng.normal(0, 1, (2, 9, 20, 3)).astype(np.float32)
    seq[1] = 0.0  # absent second body
    seq[0, :, 4] = 0.0  # a joint never tracked
    out = Augmentation(rotate=90)(seq, np.random.default_rng(1))
    assert out.shape == seq.shape and out.dtype == np.float32
    assert np.all(out[1] == 0) and np.all(out[0, :, 4] == 0)
    np.testing.assert_allclose(out[0, :, :, 1], seq[0, :, :, 1], atol=1e-6)  # y is the axis
    d_in = np.linalg.norm(seq[0, :, 0] - seq[0, :, 7], axis=-1)
    d_out = np.linalg.norm(out[0, :, 0] - out[0, :, 7], axis=-1)
    np.testing.assert_allclose(d_out, d_in, rtol=1e-5)  # rotation keeps bone lengths
    scaled = Augmentation(scale=0.5)(seq, np.random.default_rng(2))
    ratio = np.linalg.norm(scaled[0, :, 0] - scaled[0, :, 7], axis=-1) / d_in
    assert np.allclose(ratio, ratio[0]) and 0.5 <= ratio[0] <= 1.5 and ratio[0] != 1.0


def test_crop_keeps_a_contiguous_part():
    frames = np.arange(1, 21, dtype=np.float32)[None, :, None, None]
    seq = frames * np.ones((1, 20, 2, 3), np.float32)
    out = Augmentation(crop=0.5)(seq, np.random.default_rng(3))
    frames = out[0, :, 0, 0]
    assert 10 <= len(frames) <= 20
    np.testing.assert_array_equal(np.diff(frames), 1.0)


def test_real_nw_ucla_loads(shared_data):
    data = load_training_data(shared_data / "nw_ucla" / "nw_ucla.pkl", "train", "val")
    assert (len(data.train), len(data.val)) == (1020, 464)
    assert data.layout.name == "kinect20" and data.bodies == 1
    assert data.classes[0] == "pick up with one hand" and len(data.classes) == 10


def test_shift_moves_every_present_joint_by_one_offset():
    rng = np.random.default_rng(4)
    seq = rng.normal(0, 1, (1, 6, 20, 3)).astype(np.float32)
    seq[0, :, 3] = 0.0
    out = Augmentation(shift=0.5)(seq, np.random.default_rng(5))
    moved = (out - seq)[0, :, [0, 1, 2, 5]].reshape(-1, 3)
    np.testing.assert_allclose(moved, np.broadcast_to(moved[0], moved.shape), atol=1e-6)
    assert np.all(np.abs(moved[0]) <= 0.5) and np.any(moved[0] != 0)
    assert np.all(out[0, :, 3] == 0)


def test_tilt_turns_about_the_horizontal_axis_only():
    rng = np.random.default_rng(0)
    seq = rng.normal(0, 1, (1, 9, 20, 3)).astype(np.float32)
    seq[0, :, 4] = 0.0  # a joint never tracked
    out = Augmentation(tilt=30)(seq, np.random.default_rng(1))
    assert np.all(out[0, :, 4] == 0)
    present = np.ones(20, bool)
    present[4] = False
    center = seq[0][:, present].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(out[0][:, present, 0], seq[0][:, present, 0], atol=1e-5)  # x stays
    d_in = seq[0][:, present, 1:] - center[1:]  # (y, z) about the centroid
    d_out = out[0][:, present, 1:] - center[1:]
    np.testing.assert_allclose(np.linalg.norm(d_out, axis=-1), np.linalg.norm(d_in, axis=-1),
                               rtol=1e-4, atol=1e-5)
    angle = np.arctan2(d_out[..., 1], d_out[..., 0]) - np.arctan2(d_in[..., 1], d_in[..., 0])
    angle = np.rad2deg((angle + np.pi) % (2 * np.pi) - np.pi)
    assert np.allclose(angle, angle.flat[0], atol=1e-2) and 0 < abs(angle.flat[0]) <= 30
