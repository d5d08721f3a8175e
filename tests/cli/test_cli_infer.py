"""restcn-infer classify / info through Typer's CliRunner: output formats, exit codes, stderr."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body_sequence
from helpers import CLASSES
from restcn_cli.infer import app
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import get_layout

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tiny_export):
    return tiny_export()


@pytest.fixture
def files(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"seq{i}.npy")
        np.save(paths[-1], body_sequence(20 + i, seed=i))
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
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
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
        def __init__(self, model, *, device, threads, options):
            seen.update(model=model, device=device, threads=threads, options=options)

        def classify_files(self, paths, *, top_k, batch_size):
            seen.update(paths=list(paths), top_k=top_k, batch_size=batch_size)
            return iter([])

    monkeypatch.setattr("restcn_infer.classifier.Classifier", FakeClassifier)
    result = classify(*files[:2], "--model", "m.onnx", "--device", "cpu", "--threads", "3",
                      "--top-k", "4", "--batch-size", "7", "--layout", "ntu25", "--units", "mm",
                      "--flip-y", "--accept-implausible")
    assert result.exit_code == 0, result.output
    assert seen == {"model": Path("m.onnx"), "device": "cpu", "threads": 3, "paths": files[:2],
                    "top_k": 4, "batch_size": 7,
                    "options": InputOptions(get_layout("ntu25"), "mm", True, True)}


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


def test_file_names_are_printed_as_text_never_as_markup(model_path, tmp_path):
    """``clip[/b].npy`` once ended classify with a rich MarkupError."""
    odd = tmp_path / "clip[/b].npy"  # does not exist: its name goes to stderr
    bad = tmp_path / "[red]bad.npy"
    np.save(bad, np.ones((1, 3, 13, 3), np.float32))
    good = tmp_path / "[bold]good.npy"
    np.save(good, body_sequence(20))
    result = classify(odd, bad, good, "--model", model_path, "--device", "cpu")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "clip[/b].npy: no such file" in result.stderr
    assert "[red]bad.npy" in result.stderr and "13 joints" in result.stderr
    assert "[bold]good.npy" in result.stdout


def test_info_of_a_model_with_mistyped_metadata_is_a_clean_error(model_path, tmp_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(model_path))
    for prop in proto.metadata_props:
        if prop.key == "restcn":
            doc = json.loads(prop.value)
            doc["classes"] = 5
            prop.value = json.dumps(doc)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    result = runner.invoke(app, ["info", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "'classes' must be a list of non-empty strings, got 5" in result.stderr


def test_evaluate_reports_accuracy_per_class_and_confusion(shared_data):
    result = runner.invoke(app, ["evaluate", "res-tcn", "--data",
                                 str(shared_data / "nw_ucla" / "nw_ucla.pkl"), "--split", "val",
                                 "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    confusion = np.array(doc["confusion_matrix"])
    assert doc["samples"] == 464 == confusion.sum() and confusion.shape == (10, 10)
    assert doc["accuracy"] == pytest.approx(np.trace(confusion) / 464)
    assert doc["accuracy"] == pytest.approx(0.9052, abs=5e-4)  # the bundled model's README figure
    assert doc["support"] == confusion.sum(axis=1).tolist()
    other = runner.invoke(app, ["evaluate", "--data", str(shared_data / "utd_mhad" /
                                                           "utd_mhad.pkl"), "--split", "xsub_val"])
    assert other.exit_code == 1 and "not among the model's 10 classes" in other.stderr


def test_evaluate_on_a_holdout_takes_exactly_its_sequences(shared_data):
    """--holdout-match evaluates the part of --split restcn-train --holdout-match validated on."""
    from restcn_infer.datasets import open_dataset

    data = shared_data / "nw_ucla" / "nw_ucla.pkl"
    names = [str(n) for n in open_dataset(data).split("train").names]
    view2 = sum(name.endswith("_v02") for name in names)
    assert 0 < view2 < len(names)
    result = runner.invoke(app, ["evaluate", "res-tcn", "--data", str(data), "--split", "train",
                                 "--holdout-match", "_v02$", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["samples"] == view2 and doc["split"] == "train (holdout)"
    bad = runner.invoke(app, ["evaluate", "res-tcn", "--data", str(data), "--split", "train",
                              "--holdout-match", "no such view"])
    assert bad.exit_code == 1 and "takes 0 of" in bad.stderr
