"""Modalities: the numpy definition (restcn_infer.modality), its torch twin inside the network,
and a bone or motion model trained, exported and served from raw coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import write_tiny_pyskl
from restcn_infer.errors import ModelError
from restcn_infer.layouts import COCO17, KINECT20, NTU25
from restcn_infer.modality import MODALITIES, bone_parents, modality_features
from restcn_training.modality import ModalityFeatures


def skeletons(rng, bodies: int, frames: int, joints: int, coords: int = 3) -> np.ndarray:
    """Flat ``(T, D)`` raw input with an absent body, absent joints and padding frames."""
    x = rng.normal(size=(frames, bodies, joints, coords)).astype(np.float32)
    if bodies > 1:
        x[:, -1] = 0.0  # an absent body
    x[:, 0, rng.integers(0, joints)] = 0.0  # a joint never tracked
    x[frames - 2:] = 0.0  # padding at the end
    return x.reshape(frames, -1)


def test_2d_definitions_by_hand():
    """2-D keypoints: the same definitions per coordinate (x, y), D = V * 2."""
    parents = bone_parents(COCO17)  # the nose is the root, the left eye hangs from it
    x = np.zeros((2, 34), np.float32)
    x[:, 0:2] = [[10, 20], [12, 20]]  # nose
    x[:, 2:4] = [[11, 18], [13, 19]]  # left eye
    bone = modality_features(x, "bone", parents, coords=2)
    np.testing.assert_allclose(bone[:, 2:4], [[1, -2], [1, -1]])
    assert np.all(bone[:, 0:2] == 0)  # the root
    motion = modality_features(x, "bone-motion", parents, coords=2)
    np.testing.assert_allclose(motion[1, 2:4], [0, 1])
    with pytest.raises(ModelError, match="multiple of 2 coordinates"):
        modality_features(np.zeros((2, 35), np.float32), "motion", coords=2)


def test_definitions_by_hand():
    parents = bone_parents(KINECT20)
    assert parents[0] == -1 and parents[1] == 0 and parents[3] == 2 and parents[19] == 18
    x = np.zeros((3, 60), np.float32)
    x[:, 3 * 1:3 * 2] = [[1, 2, 3], [2, 2, 3], [2, 2, 3]]  # Spine
    x[:, 0:3] = [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 0]]  # HipCenter, gone in frame 3
    bone = modality_features(x, "bone", parents)
    np.testing.assert_allclose(bone[:2, 3:6], [[0.5, 1.5, 2.5], [1.5, 1.5, 2.5]])
    assert np.all(bone[2, 3:6] == 0)  # the parent is absent: no bone
    assert np.all(bone[:, 0:3] == 0)  # the root has no bone
    motion = modality_features(x, "motion")
    assert np.all(motion[0] == 0)  # the first frame's motion is defined as zero
    np.testing.assert_allclose(motion[1, 3:6], [1, 0, 0])
    assert np.all(motion[2, 0:3] == 0)  # the joint vanished: no motion
    np.testing.assert_array_equal(modality_features(x, "joint"), x)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), modality=st.sampled_from(MODALITIES),
       layout=st.sampled_from([KINECT20, NTU25, COCO17]), bodies=st.integers(1, 2),
       frames=st.integers(3, 12), coords=st.sampled_from([2, 3]))
def test_the_torch_twin_equals_the_numpy_definition(seed, modality, layout, bodies, frames,
                                                    coords):
    rng = np.random.default_rng(seed)
    x = np.stack([skeletons(rng, bodies, frames, layout.num_joints, coords)
                  for _ in range(2)])  # (B, T, D)
    parents = bone_parents(layout)
    want = modality_features(x, modality, parents, coords)
    got = ModalityFeatures(modality, parents, x.shape[-1], coords)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, want)
    absent = np.all(x.reshape(2, frames, bodies, -1) == 0, axis=-1)  # (B, T, M): absent bodies
    assert np.all(want.reshape(2, frames, bodies, -1)[absent] == 0)  # stay exactly zero


@pytest.mark.parametrize("modality, parents, d, match", [
    ("skeleton", (), 60, "unknown modality"),
    ("bone", (), 60, "needs a parent per joint"),
    ("bone", (-1, 5), 6, "outside -1..1"),
    ("motion", (), 61, "multiple of 3"),
])
def test_impossible_modalities_are_refused(modality, parents, d, match):
    with pytest.raises(ModelError, match=match):
        ModalityFeatures(modality, parents, d)


@pytest.mark.parametrize("modality", ["bone", "motion"])
def test_a_modality_model_trains_exports_and_serves_raw_coordinates(tmp_path, modality,
                                                                    one_thread):
    from restcn_export.onnx_export import ExportError, export_onnx
    from restcn_infer.classifier import Classifier
    from restcn_infer.datasets import open_dataset
    from restcn_training.checkpoint import Checkpoint
    from restcn_training.config import TrainConfig
    from restcn_training.engine import train

    data = write_tiny_pyskl(tmp_path / "tiny.pkl")
    cfg = TrainConfig(data=str(data), modality=modality, window=16, epochs=2, batch_size=6,
                      channels=(4, 4, 4, 8, 8, 8, 8, 8, 8), device="cpu", out=str(tmp_path / "r"))
    train(cfg)
    ckpt = Checkpoint.load(tmp_path / "r")
    assert ckpt.spec.config["modality"] == modality
    split = open_dataset(data).split("train")
    feats = np.stack([modality_features(ckpt.spec.input.prepare(split.sequence(i)), modality,
                                        bone_parents(KINECT20)) for i in range(len(split))])
    np.testing.assert_allclose(ckpt.spec.mean_array, feats.mean(axis=(0, 1)), rtol=1e-5,
                               atol=1e-6)  # the mean of the features, not of the skeleton
    with pytest.raises(ExportError, match="decoder layers need the joint modality"):
        export_onnx(tmp_path / "r", tmp_path / "m.onnx", decoder_layers=(1,))
    report = export_onnx(tmp_path / "r", tmp_path / "m.onnx")  # no decoder by default
    assert report.decoder_layers == ()
    clf = Classifier(report.path, device="cpu")
    seq = split.sequence(0)
    logits, _ = clf.run(clf.prepare(seq)[None])  # raw coordinates in
    with torch.no_grad():
        want = ckpt.build_model()(torch.from_numpy(ckpt.spec.input.prepare(seq)[None])).numpy()
    np.testing.assert_allclose(logits, want, atol=1e-4)
