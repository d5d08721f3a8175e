"""``restcn-train``: arguments reach the engine; bad arguments fail before training, clearly."""

from __future__ import annotations

import pickle

import pytest
from typer.testing import CliRunner

from restcn_cli.train import app
from test_data import write_tiny_pyskl

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_pyskl(tmp_path / "tiny.pkl")


def test_options_reach_the_engine(tiny, tmp_path, monkeypatch):
    received = {}

    def fake_train(cfg, reporter=None):
        received["cfg"] = cfg
        return {"final_val_accuracy": 0.5, "best_val_accuracy": 0.75, "best_epoch": 2,
                "train_samples_per_second": 100.0}

    monkeypatch.setattr("restcn_training.engine.train", fake_train)
    result = runner.invoke(app, [
        "--data", str(tiny), "--train-split", "train", "--val-split", "val", "--model",
        "ms-res-tcn", "--window", "32", "--window-policy", "pad", "--epochs", "3",
        "--batch-size", "16", "--lr", "0.05", "--rotate", "20", "--scale", "0.1", "--crop", "0.8",
        "--target-joints", "arms", "--seed", "4", "--device", "cpu", "--out", str(tmp_path / "r"),
        "--channels", "8,8,8,16,16,16,32,32,32", "--schedule", "cosine",
    ])
    assert result.exit_code == 0, result.output
    cfg = received["cfg"]
    assert (cfg.model, cfg.window, cfg.window_policy, cfg.epochs) == ("ms-res-tcn", 32, "pad", 3)
    assert (cfg.batch_size, cfg.lr, cfg.seed, cfg.device) == (16, 0.05, 4, "cpu")
    assert (cfg.augmentation.rotate, cfg.augmentation.scale, cfg.augmentation.crop) == (20, 0.1, 0.8)
    assert cfg.target_joints == "arms" and cfg.channels == (8, 8, 8, 16, 16, 16, 32, 32, 32)
    assert cfg.command.startswith("restcn-train")
    assert "final val accuracy 0.5000 (best 0.7500 at epoch 2)" in result.output


def _bad(tmp_path, name, splits):
    return write_tiny_pyskl(tmp_path / f"{name}.pkl", splits=splits)


@pytest.mark.parametrize(("case", "message"), [
    ("unknown_split", "available: train, val"),
    ("wrong_layout", "layout ntu25 has 25 joints, the data has 20"),
    ("unknown_layout", "unknown joint layout 'coco'"),
    ("empty_split", "split 'val' is empty"),
    ("no_annotations", "non-empty list of annotations"),
    ("one_class", "single class"),
    ("missing_file", "no such file or directory"),
    ("targets_without_ms", "--target-joints only applies to --model ms-res-tcn"),
    ("bad_target", "unknown joint group 'toes'"),
])
def test_bad_arguments_exit_1_before_training(tmp_path, case, message):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl")
    extra: list[str] = []
    split = "val"
    if case == "unknown_split":
        split = "test"
    elif case == "wrong_layout":
        extra = ["--layout", "ntu25"]
    elif case == "unknown_layout":
        extra = ["--layout", "coco"]
    elif case == "empty_split":
        data = _bad(tmp_path, "empty", {"train": [0, 1], "val": []})
    elif case == "no_annotations":
        data = tmp_path / "none.pkl"
        data.write_bytes(pickle.dumps({"split": {"train": []}, "annotations": []}))
    elif case == "one_class":
        data = _bad(tmp_path, "one", {"train": [1], "val": [0, 1]})
    elif case == "missing_file":
        data = tmp_path / "nope.pkl"
    elif case == "targets_without_ms":
        extra = ["--target-joints", "hands"]
    elif case == "bad_target":
        extra = ["--model", "ms-res-tcn", "--target-joints", "toes"]
    out = tmp_path / "run"
    result = runner.invoke(app, ["--data", str(data), "--val-split", split, "--out", str(out),
                                 "--device", "cpu", *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not (out / "last.pt").exists()


@pytest.mark.parametrize("args", [["--window", "0"], ["--model", "resnet"],
                                  ["--window-policy", "crop"], ["--epochs", "0"]])
def test_usage_errors_exit_2(tiny, tmp_path, args):
    result = runner.invoke(app, ["--data", str(tiny), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output


def test_an_existing_run_is_not_overwritten(tiny, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"")
    result = runner.invoke(app, ["--data", str(tiny), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 1 and "--resume" in result.output
