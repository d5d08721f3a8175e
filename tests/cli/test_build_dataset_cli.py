"""``restcn-build-dataset``: options reach the library; a real build prints its splits and the
recordings it left out; domain errors exit 1 with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from restcn_cli.build_dataset import app

POSE = Path(__file__).resolve().parents[1] / "data" / "pose"
runner = CliRunner()


def test_options_reach_the_builder(tmp_path, monkeypatch):
    received = {}

    def fake_build(folder, labels, out, **kwargs):
        received.update(folder=folder, labels=labels, out=out, **kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("restcn_cli.build_dataset.build_dataset", fake_build)
    (tmp_path / "classes.txt").write_text("a\n\nb\n")
    result = runner.invoke(app, [
        str(tmp_path), "--labels", "l.csv", "--out", "d.pkl", "--layout", "coco17",
        "--source-layout", "openpose25", "--format", "openpose", "--split-by", "subject",
        "--val", "2, 4", "--classes", str(tmp_path / "classes.txt"), "--bodies", "3",
        "--min-confidence", "0.5"])
    assert result.exit_code == 0, result.output
    assert received["folder"] == tmp_path and str(received["out"]) == "d.pkl"
    assert received["layout"] == "coco17" and received["source_layout"] == "openpose25"
    assert received["format"] == "openpose" and received["split_by"] == "subject"
    assert received["val"] == ["2", "4"] and received["classes"] == ["a", "b"]
    assert received["bodies"] == 3 and received["min_confidence"] == 0.5


def test_a_real_build_lists_splits_and_what_it_left_out(tmp_path):
    shutil.copy(POSE / "mmpose_demo.json", tmp_path / "demo.json")
    shutil.copy(POSE / "mmpose_image.json", tmp_path / "image.json")
    (tmp_path / "labels.csv").write_text("file,label,split\ndemo.json,wave,train\n"
                                         "image.json,clap,val\nnope.json,clap,val\n")
    out = tmp_path / "out" / "d.pkl"
    result = runner.invoke(app, [str(tmp_path), "--labels", str(tmp_path / "labels.csv"),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / "label_map.txt").read_text() == "wave\nclap\n"
    assert "coco17, 2-D" in result.output and "left out 1 recordings" in result.output
    assert "line 4:" in result.output and "nope.json: no such file" in result.output


def test_domain_errors_exit_1_with_one_line(tmp_path):
    (tmp_path / "labels.csv").write_text("file\n")
    result = runner.invoke(app, [str(tmp_path), "--labels", str(tmp_path / "labels.csv"),
                                 "--out", str(tmp_path / "d.pkl")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "lacks the columns" in result.output
    result = runner.invoke(app, [str(tmp_path), "--labels", "x.csv", "--out", "d.pkl",
                                 "--format", "yolo"])
    assert result.exit_code == 2  # a usage error: not one of the formats
