"""A user layout from a JSON file: restcn-train --layout my.json trains in it, and the model
carries the layout, so the runtime reads it without the file."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from helpers import write_tiny_pyskl

runner = CliRunner()


def test_restcn_train_takes_a_layout_file_and_the_model_carries_it(tmp_path):
    from restcn_cli.train import app as train_app
    from restcn_export.onnx_export import export_onnx
    from restcn_infer.classifier import Classifier
    from restcn_infer.datasets import open_dataset
    from restcn_infer.layouts import KINECT20

    layout = {"name": "my_kinect", "joints": [f"j{i}" for i in range(20)],
              "bones": [list(bone) for bone in KINECT20.bones],
              "groups": {"hands": [6, 7, 10, 11]}}
    layout_file = tmp_path / "my_kinect.json"
    layout_file.write_text(json.dumps(layout))
    data = write_tiny_pyskl(tmp_path / "tiny.pkl")
    torch.set_num_threads(1)
    result = runner.invoke(train_app, [
        "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--window", "8",
        "--batch-size", "6", "--channels", "4,4,4,4,4,4,4,4,4", "--device", "cpu",
        "--layout", str(layout_file)])
    assert result.exit_code == 0, result.output
    model = export_onnx(tmp_path / "run", tmp_path / "m.onnx").path
    layout_file.unlink()  # the model needs no file
    clf = Classifier(model, device="cpu")
    assert clf.spec.input.layout.name == "my_kinect"
    assert clf.spec.input.layout.groups["hands"] == (6, 7, 10, 11)
    seq = open_dataset(data).split("val").sequence(0)
    x = clf.prepare(seq, source_layout=clf.spec.input.layout)
    assert np.isfinite(clf.run(x[None])[0]).all()
    bad = runner.invoke(train_app, ["--data", str(data), "--out", str(tmp_path / "r2"),
                                    "--layout", str(tmp_path / "missing.json")])
    assert bad.exit_code == 1 and "missing.json" in bad.output
