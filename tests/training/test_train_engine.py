"""The training engine end to end on tiny data: run directory, metrics, checkpoint, both models."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from helpers import write_tiny_pyskl
from restcn_infer.spec import InputSpec
from restcn_training.augment import Augmentation
from restcn_training.checkpoint import Checkpoint
from restcn_training.config import TrainConfig
from restcn_training.data import WindowedDataset, load_training_data, mean_skeleton
from restcn_training.engine import Trainer, train
from restcn_training.registry import model_names
from restcn_training.run_state import HISTORY_FIELDS

TINY = (4, 4, 4, 8, 8, 8, 8, 8, 8)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("model", model_names())
def test_run_directory(tmp_path, model):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl")
    (tmp_path / "label_map.txt").write_text("slow\nmedium\nfast\n")
    out = tmp_path / "run"
    cfg = TrainConfig(data=str(data), train_split="train", val_split="val", model=model,
                      window=16, epochs=3, batch_size=4, channels=TINY, device="cpu",
                      augmentation=Augmentation(rotate=20, crop=0.9), out=str(out),
                      command="restcn-train ...")
    metrics = train(cfg)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "history.csv", "last.pt", "metrics.json"]

    rows = list(csv.DictReader((out / "history.csv").open()))
    assert tuple(rows[0]) == HISTORY_FIELDS and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_acc"]) == pytest.approx(metrics["final_val_accuracy"], abs=1e-6)

    written = json.loads((out / "metrics.json").read_text())
    assert written["final_val_accuracy"] == metrics["final_val_accuracy"]
    assert written["best_val_accuracy"] == pytest.approx(max(float(r["val_acc"]) for r in rows),
                                                         abs=1e-6)
    assert list(written["per_class_accuracy"]) == ["slow", "medium", "fast"]
    confusion = np.array(written["confusion_matrix"])
    assert confusion.shape == (3, 3) and confusion.sum() == 12
    assert np.trace(confusion) / 12 == pytest.approx(written["final_val_accuracy"])
    assert written["epochs"] == 3 and written["train_samples_per_second"] > 0

    ckpt = Checkpoint.load(out / "checkpoint.pt")
    spec = ckpt.spec
    assert spec.architecture == model and spec.classes == ("slow", "medium", "fast")
    assert spec.input == InputSpec(layout=spec.input.layout, bodies=1, window=16,
                                   policy="resample")
    assert spec.input.layout.name == "kinect20"
    assert spec.training["command"] == "restcn-train ..." and spec.training["seed"] == 0
    assert spec.training["recipe"]["augmentation"]["rotate"] == 20
    assert spec.metrics["final_val_accuracy"] == metrics["final_val_accuracy"]
    assert spec.target_joints == ((6, 7, 10, 11) if model == "ms-res-tcn" else ())  # "hands"
    assert "mean" not in ckpt.state_dict  # the mean skeleton is stored once, in the spec
    d = load_training_data(data, "train", "val")
    expected_mean = mean_skeleton(d.train, spec.input)
    np.testing.assert_array_equal(spec.mean_array, expected_mean)

    rebuilt = ckpt.build_model()
    np.testing.assert_array_equal(rebuilt.mean.numpy(), expected_mean)
    x = torch.stack([WindowedDataset(d.val, spec.input)[i][0] for i in range(12)])
    with torch.no_grad():
        predicted = rebuilt(x).argmax(1).numpy()
    assert (predicted == d.val.labels).mean() == pytest.approx(metrics["final_val_accuracy"])


def test_it_learns_the_tiny_task(tmp_path):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=12)
    cfg = TrainConfig(data=str(data), train_split="train", val_split="val", window=16,
                      epochs=20, batch_size=6, lr=0.05, schedule="cosine", channels=TINY,
                      augmentation=Augmentation(), device="cpu", out=str(tmp_path / "run"))
    metrics = train(cfg)
    history = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    assert float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
    assert metrics["best_val_accuracy"] > 0.5  # chance is 1/3


def test_ema_is_the_hand_computed_average_of_the_steps(tmp_path):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl")  # 12 training samples: 2 steps of 6
    decay = 0.75
    cfg = TrainConfig(data=str(data), train_split="train", val_split="val", window=16, epochs=1,
                      batch_size=6, lr=0.1, channels=TINY, ema=decay, device="cpu",
                      out=str(tmp_path / "run"))
    trainer = Trainer(cfg)
    steps = []  # the raw weights (parameters and buffers) after each optimizer step
    update = trainer.ema.update_parameters

    def record(model):
        steps.append({k: v.clone() for k, v in model.state_dict().items()})
        update(model)

    trainer.ema.update_parameters = record
    metrics = trainer.fit()

    assert len(steps) == 2
    first, second = steps
    expected = {k: decay * first[k] + (1 - decay) * second[k] for k in second
                if second[k].is_floating_point()}
    saved = Checkpoint.load(tmp_path / "run" / "checkpoint.pt").state_dict
    assert saved.keys() == second.keys()  # a plain model state dict
    for name, tensor in expected.items():
        torch.testing.assert_close(saved[name], tensor, rtol=1e-6, atol=1e-7, msg=name)
    assert any(not torch.equal(saved[k], second[k]) for k in expected if "running_" not in k)
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    for name, tensor in second.items():  # last.pt keeps the raw weights beside the average
        assert torch.equal(last["model"][name], tensor), name
    assert last["ema"]["n_averaged"].item() == 2
    d = trainer.data  # evaluation used the average too
    x, _ = trainer.val_data.batch(torch.arange(len(d.val)))
    with torch.no_grad():
        logits = Checkpoint.load(tmp_path / "run" / "checkpoint.pt").build_model()(x)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(d.val.labels)).item()
    assert metrics["final_val_loss"] == pytest.approx(loss, rel=1e-5)


def test_a_ctrgcn_npz_trains(tmp_path):
    """``--data NTU60_CS.npz``: CTR-GCN's packed arrays (N, T, 150) are a training source."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 20, 150)).astype(np.float32)
    x[:, 15:] = 0.0  # zero-padded tails, as CTR-GCN stores short sequences
    labels = np.arange(12) % 3
    np.savez(tmp_path / "NTU60_CS.npz", x_train=x, y_train=np.eye(3)[labels],
             x_test=x[:6], y_test=labels[:6])
    cfg = TrainConfig(data=str(tmp_path / "NTU60_CS.npz"), train_split="train",
                      val_split="test", window=16, epochs=1, batch_size=4, channels=TINY,
                      device="cpu", out=str(tmp_path / "run"))
    metrics = train(cfg)
    spec = Checkpoint.load(tmp_path / "run" / "checkpoint.pt").spec
    assert spec.input.layout.name == "ntu25" and spec.input.bodies == 2 and spec.input.D == 150
    assert metrics["val_samples"] == 6 and metrics["train_samples"] == 12


def test_a_holdout_replaces_the_validation_split_which_is_never_read(tmp_path, monkeypatch):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=10)
    cfg = TrainConfig(data=str(data), val_split="no-such-split", holdout_fraction=0.25,
                      window=16, epochs=1, batch_size=6, channels=TINY, device="cpu",
                      out=str(tmp_path / "run"))
    metrics = train(cfg)  # the named validation split does not exist: it is not read
    spec = Checkpoint.load(tmp_path / "run").spec
    assert metrics["val_samples"] == 3 and metrics["train_samples"] == 12  # 1 of 5 per class
    assert spec.training["val_split"] == "holdout of train (fraction 0.25, seed 0)"
