"""restcn-infer classify / info through Typer's CliRunner: output formats, exit codes, stderr."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restcn_cli.infer import app

pytest.importorskip("torch")  # to export the tiny model; the CLI itself is torch-free
from tiny_models import CLASSES, exported_model  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return exported_model(tmp_path_factory)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"seq{i}.npy")
        np.save(paths[-1], rng.normal(size=(1, 20 + i, 20, 3)).astype(np.float32))
    return paths


def classify(*args):
    return runner.invoke(app, ["classify", *map(str, args)])


def test_json_output_is_the_documented_list(model_path, files):
    result = classify(*files, "--model", model_path, "--json", "--top-k", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [entry["file"] for entry in doc] == [str(p) for p in files]
    for entry in doc:
        assert [set(t) for t in entry["top"]] == [{"label", "name", "probability"}] * 2
        assert entry["top"][0]["probability"] >= entry["top"][1]["probability"]
        assert all(t["name"] == CLASSES[t["label"]] for t in entry["top"])


def test_small_batches_give_the_same_answers(model_path, files):
    base = ["--model", model_path, "--json", "--device", "cpu"]
    one = classify(*files, *base, "--batch-size", "2")
    assert one.exit_code == 0 and one.stdout == classify(*files, *base).stdout


def test_table_by_default(model_path, files):
    result = classify(files[0], "--model", model_path, "--device", "cpu", "--top-k", "3")
    assert result.exit_code == 0, result.output
    assert "seq0.npy" in result.stdout and "probability" in result.stdout
    assert sum(name in result.stdout for name in CLASSES) == 3


def test_a_bad_file_is_reported_and_the_others_still_classified(model_path, files, tmp_path):
    np.save(tmp_path / "nan.npy", np.full((1, 3, 20, 3), np.nan, np.float32))
    np.save(tmp_path / "joints.npy", np.ones((1, 3, 13, 3), np.float32))
    (tmp_path / "empty.json").write_text('{"frames": []}')
    bad = [tmp_path / "nan.npy", tmp_path / "joints.npy", tmp_path / "empty.json", tmp_path]
    result = classify(files[0], *bad, files[1], "--model", model_path, "--json", "--device", "cpu")
    assert result.exit_code == 1
    assert [e["file"] for e in json.loads(result.stdout)] == [str(files[0]), str(files[1])]
    errors = result.stderr.splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    for path, why in zip(bad, ["finite", "13 joints", "expected frames", "directory"]):
        assert any(str(path) in line and why in line for line in errors), (why, errors)


@pytest.mark.parametrize("model, match", [
    ("missing.onnx", "no such model file"),
    (".", "is a directory"),
    ("seq0.npy", "not a loadable ONNX model"),
])
def test_model_errors_exit_1_with_the_reason(files, model, match):
    result = classify(files[0], "--model", files[0].parent / model, "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and match in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [[], ["--top-k", "0", "x.npy"], ["--device", "tpu", "x.npy"]])
def test_usage_errors_exit_2(args):
    assert runner.invoke(app, ["classify", *args]).exit_code == 2


def test_arguments_reach_the_classifier(monkeypatch, files):
    seen = {}

    class FakeClassifier:
        def __init__(self, model, *, device, threads):
            seen.update(model=model, device=device, threads=threads)

        def classify_files(self, paths, *, top_k, batch_size):
            seen.update(paths=list(paths), top_k=top_k, batch_size=batch_size)
            return iter([])

    monkeypatch.setattr("restcn_infer.classifier.Classifier", FakeClassifier)
    result = classify(*files[:2], "--model", "m.onnx", "--device", "cpu", "--threads", "3",
                      "--top-k", "4", "--batch-size", "7")
    assert result.exit_code == 0, result.output
    assert seen == {"model": Path("m.onnx"), "device": "cpu", "threads": 3, "paths": files[:2],
                    "top_k": 4, "batch_size": 7}


def test_info_shows_metadata(model_path):
    result = runner.invoke(app, ["info", str(model_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["classes"] == CLASSES and doc["decoder_layers"] == [1, 4, 7, 10]
    assert doc["training"]["command"].startswith("restcn-train")
    assert doc["export"]["precision"] == "fp32"
    table = runner.invoke(app, ["info", str(model_path)])
    assert table.exit_code == 0 and "res-tcn" in table.stdout and "kinect20" in table.stdout
    assert "final_val_accuracy=0.25" in table.stdout


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("restcn-infer ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "classify" in result.stdout and "info" in result.stdout
