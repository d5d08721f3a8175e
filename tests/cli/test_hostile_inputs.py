"""Hostile or mistaken input to every command: a clear error naming the file and the reason,
never a traceback, never a confident wrong answer, and the good inputs beside it still
answered (exit 1 at the end).

One table of hostile files runs through ``classify``, ``decode`` and the stream protocol; then
each command's own hostile arguments (output paths, data files, server settings, checkpoints).
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body25, body_sequence
from conftest import REPO
from helpers import write_tiny_pyskl
from restcn_cli.infer import app

runner = CliRunner()
THROW = REPO / "examples" / "nw_ucla_throw.npy"


class Bomb:
    """Unpickles to an uninitialised 120-million-element array (see test_reader_memory)."""

    def __reduce__(self):
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:
            from numpy.core.multiarray import _reconstruct
        return _reconstruct, (np.ndarray, (10, 1000, 1000, 3), b"b")


class Custom:
    """A Python object a checkpoint must not hold."""


class Shell:
    def __reduce__(self):
        import os
        return os.system, ("echo pwned",)


def npy_claiming(shape) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def throw(scale=1.0, axes=(1.0, 1.0, 1.0)) -> np.ndarray:
    return np.load(THROW) * np.float32(scale) * np.float32(axes)


def pixels() -> np.ndarray:
    seq = throw()
    return np.concatenate([seq[..., :2] * 400 + 500, np.full(seq.shape[:-1] + (1,), 0.9,
                                                             np.float32)], -1)


def openpose25() -> np.ndarray:
    """An OpenPose BODY_25-like skeleton (nose, neck, arms ...) that 25 joints make look like
    ntu25; mapped into the kinect20 model its bones do not fit."""
    return body25(body_sequence(40, "ntu25"))


#: name -> (file name, bytes, words the error names)
HOSTILE_FILES = {
    "npy header claims 1e9 frames": ("claim.npy", npy_claiming((1, 10**9, 20, 3)),
                                     "more than the limit"),
    "npy object array": ("obj.npy", None, "numeric"),
    "json nested 100k deep": ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested"),
    "json 5000-digit integer": ("digits.json", b'{"frames": [[[' + b"9" * 5000 + b", 1, 2]]]}",
                                "5,000 digits"),
    "json NaN": ("nan.json", b'{"frames": [[[NaN, 1, 2]]]}', "NaN is not a JSON number"),
    "json bad layout field": ("layout.json", json.dumps(
        {"layout": "ntu25", "frames": body_sequence(3)[0].tolist()}).encode(), "ntu25"),
    "pickle bomb": ("bomb.pkl", pickle.dumps({"frame_dir": "x", "label": 0, "keypoint": Bomb()},
                                             protocol=2), "does not hold"),
    "pickle with code": ("code.pkl", pickle.dumps(Shell()), "refusing to load global"),
    "ntu empty frames": ("empty.skeleton", b"5000000\n" + b"0\n" * 5_000_000, "frameCount"),
    "ntu garbage": ("garbage.skeleton", b"\x00\xff" * 100, "frameCount"),
    "centimetres": ("cm.npy", throw(100), "--units cm"),
    "millimetres": ("mm.npy", throw(1000), "--units mm"),
    "y down": ("ydown.npy", throw(1, (1, -1, 1)), "--flip-y"),
    "pixels": ("pixels.npy", pixels(), "2-D image keypoints"),
    "3e37": ("huge.npy", throw(3e37), "not a body"),
    "openpose as ntu25": ("openpose.npy", openpose25(), "--layout"),
    "empty frames": ("zeros.npy", np.zeros((1, 30, 20, 3), np.float32), "all are empty"),
    "13 joints": ("j13.npy", np.ones((1, 5, 13, 3), np.float32), "13 joints"),
    "unknown suffix": ("clip.mp4", b"\x00", "unknown file type"),
}


def write_hostile(tmp_path, case: str):
    name, content, _ = HOSTILE_FILES[case]
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([[[None] * 3]] * 2, dtype=object), allow_pickle=True)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "throw.npy"
    np.save(path, throw())
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_classify_reports_a_hostile_file_and_answers_the_good_one(tmp_path, good, case):
    bad = write_hostile(tmp_path, case)
    result = runner.invoke(app, ["classify", str(bad), str(good), "--json", "--device", "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [answer] = json.loads(result.stdout)  # strict JSON: the good file, answered
    assert answer["file"] == str(good) and answer["top"][0]["name"] == "throw"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(bad) in errors[0], result.stderr
    assert HOSTILE_FILES[case][2] in errors[0], errors[0]


@pytest.mark.parametrize("case", ["pickle bomb", "centimetres", "json nested 100k deep",
                                  "openpose as ntu25", "3e37"])
def test_decode_refuses_a_hostile_file_and_writes_nothing(tmp_path, case):
    bad = write_hostile(tmp_path, case)
    out = tmp_path / "out.npz"
    result = runner.invoke(app, ["decode", str(bad), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert HOSTILE_FILES[case][2] in result.stderr and not out.exists()


def test_stream_cli_answers_hostile_lines_and_always_summarises():
    frames = body_sequence(8)[0]
    lines = [json.dumps({"stream": "s", "joints": f.tolist()}).encode() for f in frames]
    hostile = [b"[" * 60_000 + b"]" * 60_000, b'{"stream": "s", "joints": [[' + b"9" * 5000
               + b", 1, 2]]}", b'{"stream": "s", "t": ' + b"9" * 400 + b', "joints": [[1,2,3]]}',
               b'{"stream": "\xff", "joints": [[1, 2, 3]]}',
               json.dumps({"stream": "mm", "joints": (frames[0] * 1000).tolist()}).encode()]
    data = b"\n".join(lines[:4] + hostile + lines[4:]) + b"\n"
    result = runner.invoke(app, ["stream", "--device", "cpu", "--hop", "4"], input=data)
    assert result.exit_code == 0 and "Traceback" not in result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records if "error" in r and "line" in r] == [5, 6, 7, 8]
    assert [r["frame"] for r in records if "top" in r] == [4, 8]
    [refused] = [r for r in records if r.get("stream") == "mm"]  # never due: refused at the end
    assert "--units mm" in refused["error"] and refused["frame"] == 1
    summary = records[-1]["summary"]
    assert (summary["rejected"], summary["frames"], summary["window_errors"]) == (4, 9, 1)


@pytest.mark.parametrize("args, code, words", [
    (["--window", "1000000000"], 2, "less than or equal to 10000"),
    (["--layout", "no-such-layout"], 1, "unknown joint layout"),
    (["--units", "furlong"], 2, "furlong"),
])
def test_stream_cli_refuses_bad_options_before_reading(args, code, words):
    result = runner.invoke(app, ["stream", "--device", "cpu", *args], input="")
    assert result.exit_code == code and "Traceback" not in result.output
    assert words in result.output


# -- output paths: checked before the work ----------------------------------------------------

def test_decode_checks_out_before_loading_the_model(tmp_path, good):
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path, "is a directory"), (tmp_path / "afile" / "d.npz", "afile"),
                       (tmp_path / "d.txt", "must end in .npz")):
        result = runner.invoke(app, ["decode", str(good), "--out", str(out), "--model",
                                     "missing.onnx"])
        assert result.exit_code == 1 and words in result.stderr, result.output
        assert "no such model" not in result.stderr  # refused before any work
    result = runner.invoke(app, ["decode", str(good), "--out", str(tmp_path / "d.npz"),
                                 "--render", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 2 and ".gif or .png" in result.output


# -- data sets, models, servers ------------------------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda tmp: tmp / "a.skeleton", "raw NTU .skeleton file"),
    (lambda tmp: tmp / "missing.pkl", "no such file"),
    (lambda tmp: (tmp / "bomb.pkl").write_bytes(pickle.dumps(
        {"split": {}, "annotations": [{"frame_dir": "x", "label": 0, "keypoint": Bomb()}]},
        protocol=2)) and tmp / "bomb.pkl", "does not hold"),
])
def test_evaluate_names_a_bad_data_set(tmp_path, make, words):
    data = make(tmp_path)
    if data.suffix == ".skeleton":
        data.write_text("1\n")
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--split", "val", "--device",
                                 "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert words in result.stderr


def test_info_refuses_a_damaged_model(tmp_path):
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\x08\x07" + b"\xff" * 100)
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error: " in result.stderr


@pytest.mark.parametrize("args, code, words", [
    (["--host", "0.0.0.0"], 1, "pass --token"),
    (["--host", "0.0.0.0", "--token", "short"], 1, "at least 16 characters"),
    (["--keyfile", "{file}"], 1, "--keyfile needs --certfile"),
    (["--certfile", "{file}"], 1, "cannot use the TLS certificate"),
    (["--certfile", "missing.pem"], 2, "missing.pem"),
    (["--max-clients", "0"], 2, "max-clients"),
])
def test_serve_refuses_unsafe_or_unusable_settings(tmp_path, monkeypatch, args, code, words):
    monkeypatch.delenv("RESTCN_SERVE_TOKEN", raising=False)
    file = tmp_path / "not-a-cert.pem"
    file.write_text("x")
    args = [a.replace("{file}", str(file)) for a in args]
    result = runner.invoke(app, ["serve", *args, "--model", "missing.onnx"])
    assert result.exit_code == code and "Traceback" not in result.output, result.output
    assert words in result.output


# -- training and export (item 8: refuse early, name the mistake, no unsafe advice) -----------

def test_train_refuses_an_unwritable_out_before_reading_the_data(tmp_path):
    from restcn_cli.train import app as train_app

    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile", "exists and is a file"),
                       (tmp_path / "afile" / "run", "cannot create the folder")):
        result = runner.invoke(train_app, ["--data", str(tmp_path / "missing.pkl"), "--out",
                                           str(out), "--device", "cpu"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert words in result.output and "missing.pkl" not in result.output


def test_train_refuses_labels_outside_the_class_names(tmp_path):
    pytest.importorskip("torch")
    from restcn_cli.train import app as train_app

    data = write_tiny_pyskl(tmp_path / "tiny.pkl", classes=3)
    (tmp_path / "label_map.txt").write_text("a\nb\n")  # names 2 of the 3 labels
    result = runner.invoke(train_app, ["--data", str(data), "--out", str(tmp_path / "run"),
                                       "--device", "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "labels go up to 2" in result.output and "names only 2 classes" in result.output


def test_export_names_last_pt_and_gives_no_unsafe_advice(tmp_path):
    torch = pytest.importorskip("torch")
    from restcn_cli.export import app as export_app

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"kind": "resume", "format": 2}, run / "last.pt")
    result = runner.invoke(export_app, [str(run / "last.pt"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "resume state (last.pt)" in result.output
    assert "checkpoint.pt" in result.output
    unfinished = runner.invoke(export_app, [str(run), "--out", str(tmp_path / "m.onnx")])
    assert unfinished.exit_code == 1 and "unfinished" in unfinished.output

    torch.save({"x": Custom()}, tmp_path / "custom.pt")
    result = runner.invoke(export_app, [str(tmp_path / "custom.pt"), "--out",
                                        str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "objects other than tensors" in result.output
    assert "weights_only" not in result.output  # never the advice to load unsafely


def test_export_checks_out_before_the_work(tmp_path):
    pytest.importorskip("torch")
    from restcn_cli.export import app as export_app

    result = runner.invoke(export_app, [str(tmp_path / "missing.pt"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "is a directory" in result.output


def test_a_cpu_training_run_prints_no_cuda_line(tmp_path):
    pytest.importorskip("torch")
    from restcn_cli.train import app as train_app

    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=4)
    result = runner.invoke(train_app, ["--data", str(data), "--out", str(tmp_path / "run"),
                                       "--device", "auto", "--epochs", "1", "--window", "16",
                                       "--channels", "8,8,8,8,8,8,8,8,8", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    import torch

    if not torch.cuda.is_available():  # nothing asked for CUDA, nothing failed: nothing to say
        assert "CUDA" not in result.output


def test_a_one_frame_file_is_answered_with_a_warning(tmp_path):
    """Benchmarks hold one-frame samples, so it is answered, but never silently."""
    still = tmp_path / "still.npy"
    np.save(still, throw()[:, 5:6])
    result = runner.invoke(app, ["classify", str(still), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"warning: {still}: only 1 frame with a body: a still pose" in result.stderr
    np.save(still, throw()[:, 5:7])
    again = runner.invoke(app, ["classify", str(still), "--json", "--device", "cpu"])
    assert "still pose" not in again.stderr
