"""Plain helpers shared by the tests: tiny data sets, tiny checkpoints, a numpy stand-in
classifier. Fixtures that build on them live in ``conftest.py``."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.layouts import KINECT20, get_layout
from restcn_infer.metadata import ModelMetadata
from restcn_infer.spec import InputSpec, ModelSpec

CLASSES = ["wave", "clap", "sit", "jump"]
#: Classes of the tiny streaming model (window 16, decoder layers 1,4,7,10).
STREAM_CLASSES = tuple(f"action{i}" for i in range(10))
WINDOW = 32
TINY_CHANNELS = (8, 8, 8, 12, 12, 12, 16, 16, 16)


def write_tiny_pyskl(path: Path, *, per_class: int = 8, classes: int = 3, joints: int = 20,
                     bodies: int = 1, splits: dict[str, list[int]] | None = None,
                     seed: int = 0, coords: int = 3) -> Path:
    """A small learnable PYSKL pickle: class c waves the joints at frequency c + 1.

    ``splits`` maps a split name to the classes it holds (default: train and val, all classes);
    ``train`` gets the even samples of a class, ``val`` the odd ones, any other split all.
    ``coords=2``: PYSKL's 2-D form, x and y with a ``keypoint_score`` of ones.
    """
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.3, (bodies, 1, joints, 3)).astype(np.float32)
    pose[..., 2] += 3.0  # metres from the sensor, like Kinect data
    annotations, names = [], []
    for c in range(classes):
        for i in range(per_class):
            t = int(rng.integers(10, 21))
            phase = np.linspace(0, 2 * np.pi * (c + 1), t, dtype=np.float32)[None, :, None]
            base = pose + rng.normal(0, 0.05, pose.shape)
            kp = base + 0.2 * np.sin(phase)[..., None] + rng.normal(0, 0.01, (bodies, t, joints, 3))
            name = f"c{c}_s{i}"
            ann = {"frame_dir": name, "label": c, "total_frames": t,
                   "keypoint": kp[..., :coords].astype(np.float32)}
            if coords == 2:
                ann["keypoint_score"] = np.ones(kp.shape[:-1], np.float32)
            annotations.append(ann)
            names.append((name, c, i))
    splits = splits or {"train": list(range(classes)), "val": list(range(classes))}
    split_lists: dict[str, list[str]] = {s: [] for s in splits}
    for name, c, i in names:  # even samples train, odd ones val, other splits take all
        for split, held in splits.items():
            if c in held and (split != "train" or i % 2 == 0) and (split != "val" or i % 2 == 1):
                split_lists[split].append(name)
    path.write_bytes(pickle.dumps({"split": split_lists, "annotations": annotations}))
    return path


def write_tiny_packed(root: Path, n: int = 6, joints: int = 25, bodies: int = 2) -> Path:
    """A packed benchmark directory (the ntu_builder format) with splits train/test."""
    rng = np.random.default_rng(1)
    root.mkdir()
    for split in ("train", "test"):
        lengths = rng.integers(5, 12, n)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        x = rng.normal(0, 1, (offsets[-1], bodies, joints, 3)).astype(np.float32)
        np.save(root / f"{split}_x.npy", x)
        np.save(root / f"{split}_offsets.npy", offsets)
        np.save(root / f"{split}_label.npy", np.arange(n, dtype=np.int64) % 3)
        np.save(root / f"{split}_names.npy", np.array([f"S001A{i:03d}" for i in range(n)]))
    (root / "meta.json").write_text(json.dumps({
        "dataset": "ntu60", "benchmark": "xsub", "layout": "ntu25", "bodies": bodies,
        "classes": ["drink", "eat", "wave"], "splits": {"train": n, "test": n}}))
    return root


def write_checkpoint(path: Path, architecture: str = "res-tcn", *, seed: int = 0,
                     window: int = WINDOW, classes: list[str] | None = None,
                     policy: str = "resample") -> Path:
    """A tiny random kinect20, one-body checkpoint with non-trivial BN statistics and mean."""
    import dataclasses

    import torch

    from restcn_training.checkpoint import Checkpoint, untrained_checkpoint

    spec_input = InputSpec(layout=KINECT20, bodies=1, window=window, policy=policy)
    torch.manual_seed(seed)
    mean = torch.randn(spec_input.D) * 0.3
    ckpt = untrained_checkpoint(architecture, spec_input, classes or CLASSES, seed=seed,
                                mean=mean, channels=TINY_CHANNELS)
    model = ckpt.build_model()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    spec = dataclasses.replace(ckpt.spec, training={"command": "restcn-train --data tiny.pkl",
                                                    "data": "tiny"},
                               metrics={"final_val_accuracy": 0.25})
    return Checkpoint.from_model(model, spec).save(path)


def tiny_metadata(*, layout: str = "kinect20", bodies: int = 1, window: int = 16,
                  policy: str = "resample", num_classes: int = 5,
                  decoder_layers: tuple[int, ...] = (1, 4)) -> ModelMetadata:
    """Metadata of a model without a graph (zero mean), for numpy stand-ins."""
    spec_input = InputSpec(layout=get_layout(layout), bodies=bodies, window=window, policy=policy)
    spec = ModelSpec(architecture="res-tcn", input=spec_input,
                     classes=tuple(f"c{i}" for i in range(num_classes)),
                     mean=(0.0,) * spec_input.D)
    return ModelMetadata(spec=spec, decoder_layers=decoder_layers)


@dataclass(frozen=True)
class FakePrediction:
    label: int
    name: str
    probability: float


class FakeClassifier:
    """numpy stand-in for ``Classifier``: logits = time-mean of the input @ W; records batches.

    Its ``prepare`` is the real one (``InputSpec.prepare``)."""

    def __init__(self, **metadata) -> None:
        self.metadata = tiny_metadata(**metadata)
        self.spec = self.metadata.spec
        d, c = self.spec.input.D, self.spec.num_classes
        self.w = np.random.default_rng(0).normal(size=(d, c)).astype(np.float32)
        self.batches: list[int] = []

    def prepare(self, seq, *, source_layout=None, source=None):
        return self.spec.input.prepare(seq, layout=source_layout, source=source)

    def run(self, batch, *, decode=False):
        self.batches.append(batch.shape[0])
        logits = batch.mean(axis=1) @ self.w  # (B, T, D) -> (B, C)
        decoded = None
        if decode:
            decoded = np.stack([batch * layer for layer in self.metadata.decoder_layers], axis=1)
        return logits, decoded

    def predict(self, logits, top_k=5):
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        order = np.argsort(-p, axis=1)[:, :top_k]
        return [[FakePrediction(int(c), self.spec.classes[c], float(row[c])) for c in idx]
                for row, idx in zip(p, order)]


def assert_same_top(got, want) -> None:
    """Two rankings agree: same labels in order, probabilities within 1e-5."""
    assert [p.label for p in got] == [p.label for p in want]
    np.testing.assert_allclose([p.probability for p in got], [p.probability for p in want],
                               atol=1e-5, rtol=0)


def nw_ucla_sequence(shared_data: Path) -> np.ndarray:
    """A real NW-UCLA validation sequence (1, T, 20, 3) longer than the test windows."""
    from restcn_infer.readers.pyskl import read_pyskl

    dataset = read_pyskl(shared_data / "nw_ucla" / "nw_ucla.pkl")
    return next(a.keypoint for a in dataset.split("val") if a.keypoint.shape[1] >= 40)
