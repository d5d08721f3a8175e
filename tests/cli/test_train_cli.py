"""``restcn-train``: arguments reach the engine; bad arguments fail before training, clearly."""

from __future__ import annotations

import pickle

import pytest
from typer.testing import CliRunner

from helpers import write_tiny_pyskl
from restcn_cli.train import app

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
    aug = cfg.augmentation
    assert (aug.rotate, aug.scale, aug.crop) == (20, 0.1, 0.8)
    assert cfg.target_joints == "arms" and cfg.channels == (8, 8, 8, 16, 16, 16, 32, 32, 32)
    assert cfg.command.startswith("restcn-train")
    assert "final val accuracy 0.5000 (best 0.7500 at epoch 2)" in result.output


def _no_annotations(tmp_path):
    path = tmp_path / "none.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": []}, "annotations": []}))
    return path


def _tiny(splits=None):
    return lambda tmp_path: write_tiny_pyskl(tmp_path / "tiny.pkl", splits=splits)


#: case: (data writer, extra arguments, message). Each case differs from a good run in one thing.
BAD_RUNS = {
    "unknown_split": (_tiny(), ["--val-split", "test"], "available: train, val"),
    "wrong_layout": (_tiny(), ["--layout", "ntu25"], "layout ntu25 has 25 joints, the data has 20"),
    "unknown_layout": (_tiny(), ["--layout", "coco"], "unknown joint layout 'coco'"),
    "empty_split": (_tiny({"train": [0, 1], "val": []}), [], "split 'val' is empty"),
    "no_annotations": (_no_annotations, [], "non-empty list of annotations"),
    "one_class": (_tiny({"train": [1], "val": [0, 1]}), [], "single class"),
    "missing_file": (lambda tmp_path: tmp_path / "nope.pkl", [], "no such file or directory"),
    "targets_without_ms": (_tiny(), ["--target-joints", "hands"],
                           "--target-joints only applies to --model ms-res-tcn"),
    "bad_target": (_tiny(), ["--model", "ms-res-tcn", "--target-joints", "toes"],
                   "unknown joint group 'toes'"),
    "skeleton_file": (lambda tmp_path: tmp_path / "a.skeleton", [],
                      "raw NTU .skeleton file: pack a folder of them with restcn-build-ntu"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_arguments_exit_1_before_training(tmp_path, case):
    write, extra, message = BAD_RUNS[case]
    data = write(tmp_path)
    if data.suffix == ".skeleton":
        data.write_text("1\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["--data", str(data), "--out", str(out), "--device", "cpu",
                                 *extra])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
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


def test_the_cli_defaults_are_the_library_defaults(tiny, tmp_path, monkeypatch):
    """Only --data and --out given: every other field is TrainConfig's own default."""
    import dataclasses

    from restcn_training.config import TrainConfig

    received = {}
    monkeypatch.setattr("restcn_training.engine.train",
                        lambda cfg, reporter=None: received.setdefault("cfg", cfg) and {
                            "final_val_accuracy": 0.5, "best_val_accuracy": 0.5,
                            "best_epoch": 1, "train_samples_per_second": 1.0})
    result = runner.invoke(app, ["--data", str(tiny), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    want = TrainConfig(data=str(tiny), out=str(tmp_path / "r"))
    got = received["cfg"]
    differ = {f.name for f in dataclasses.fields(TrainConfig)
              if getattr(got, f.name) != getattr(want, f.name)}
    assert differ <= {"command"}, differ


def test_a_bug_is_a_traceback_not_an_error_line(tiny, tmp_path, monkeypatch):
    """Only domain errors (RestcnError) become 'error: ...' and exit 1; anything else is a
    bug worth reporting and keeps its traceback."""
    def broken(cfg, reporter=None):
        raise KeyError("a bug")

    monkeypatch.setattr("restcn_training.engine.train", broken)
    result = runner.invoke(app, ["--data", str(tiny), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and isinstance(result.exception, KeyError)
    assert "error: " not in result.output
