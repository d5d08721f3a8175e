"""restcn_infer.decode / render and ``restcn-infer decode``: layout, layer choice, files, exit
codes."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body_sequence
from helpers import CLASSES, WINDOW
from restcn_cli.infer import app
from restcn_infer.classifier import Classifier
from restcn_infer.decode import decode_sequence, save_decoded, select_layers
from restcn_infer.errors import ModelError
from restcn_infer.layouts import KINECT20
from restcn_infer.preprocess import flatten

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tiny_export):
    return tiny_export()  # decoder layers 1,4,7,10


@pytest.fixture(scope="module")
def clf(model_path):
    return Classifier(model_path, device="cpu", threads=1)


@pytest.fixture
def seq_file(tmp_path):
    seq = body_sequence(45)
    path = tmp_path / "seq.npy"
    np.save(path, seq)
    return path


def test_decode_sequence_unflattens_the_graph_output(clf, seq_file):
    seq = np.load(seq_file)
    result = decode_sequence(clf, seq, layers=[10, 1])
    assert result.layers == [10, 1]
    assert result.input.shape == (1, WINDOW, 20, 3)
    assert result.decoded.shape == (2, 1, WINDOW, 20, 3)
    x = clf.prepare(seq)  # (window, D)
    np.testing.assert_array_equal(flatten(result.input), x)
    logits, decoded = clf.run(x[None], decode=True)  # (1, 4, window, D), layers 1,4,7,10
    np.testing.assert_array_equal(flatten(result.decoded[0]), decoded[0, 3])
    np.testing.assert_array_equal(flatten(result.decoded[1]), decoded[0, 0])
    assert result.predicted == CLASSES[int(np.argmax(logits[0]))]


@pytest.mark.parametrize("available, layers, expected", [
    ([1, 4, 7, 10], None, [0, 1, 2, 3]),
    ([1, 4, 7, 10], [7, 1], [2, 0]),
])
def test_select_layers(available, layers, expected):
    assert select_layers(available, layers) == expected


@pytest.mark.parametrize("available, layers, match", [
    ([1, 4, 7, 10], [5], "decodes layers 1,4,7,10"),
    ([1, 4, 7, 10], [], "decodes layers 1,4,7,10"),
    ([], None, "without a decoder head"),
])
def test_select_layers_refuses(available, layers, match):
    with pytest.raises(ModelError, match=match):
        select_layers(available, layers)


def test_npz_holds_the_documented_arrays_without_pickle(clf, seq_file, tmp_path):
    result = decode_sequence(clf, np.load(seq_file))
    path = save_decoded(result, tmp_path / "sub" / "out.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["bones", "classes", "decoded", "input", "joint_names",
                                     "layers", "logits"]
        np.testing.assert_array_equal(npz["decoded"], result.decoded)
        np.testing.assert_array_equal(npz["input"], result.input)
        assert npz["layers"].tolist() == [1, 4, 7, 10]
        assert npz["joint_names"].tolist() == list(KINECT20.joint_names)
        assert [tuple(b) for b in npz["bones"].tolist()] == list(KINECT20.bones)
        assert npz["classes"].tolist() == CLASSES
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left


def decode(*args):
    return runner.invoke(app, ["decode", *map(str, args), "--device", "cpu"])


def test_cli_writes_npz_and_png(model_path, seq_file, tmp_path):
    out, png = tmp_path / "d.npz", tmp_path / "d.png"
    result = decode(seq_file, "--model", model_path, "--layers", "1,10", "--out", out,
                    "--render", png)
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as npz:
        assert npz["layers"].tolist() == [1, 10]
        assert npz["decoded"].shape == (2, 1, WINDOW, 20, 3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_renders_an_animated_gif(model_path, seq_file, tmp_path):
    from PIL import Image

    gif = tmp_path / "d.gif"
    result = decode(seq_file, "--model", model_path, "--layers", "4", "--out",
                    tmp_path / "d.npz", "--render", gif)
    assert result.exit_code == 0, result.output
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == WINDOW


@pytest.mark.parametrize("args, match", [
    (["--layers", "5"], "1,4,7,10"),
    (["--layers", "one"], "comma-separated"),
    (["--render", "x.svg"], ".gif or .png"),
])
def test_cli_usage_errors_exit_2(model_path, seq_file, tmp_path, args, match):
    result = decode(seq_file, "--model", model_path, "--out", tmp_path / "d.npz", *args)
    assert result.exit_code == 2
    assert match in result.output
    assert not (tmp_path / "d.npz").exists()


def test_cli_file_and_model_errors_exit_1(model_path, tmp_path, tiny_export):
    np.save(tmp_path / "joints.npy", np.ones((1, 3, 13, 3), np.float32))
    result = decode(tmp_path / "joints.npy", "--model", model_path, "--out", tmp_path / "d.npz")
    assert result.exit_code == 1
    assert str(tmp_path / "joints.npy") in result.stderr and "13 joints" in result.stderr
    np.save(tmp_path / "ok.npy", body_sequence(3))
    plain = tiny_export(precision="fp16", decoder_layers=())
    result = decode(tmp_path / "ok.npy", "--model", plain, "--out", tmp_path / "d.npz")
    assert result.exit_code == 1 and "without a decoder head" in result.stderr


def test_cli_without_matplotlib_says_how_to_install(model_path, seq_file, tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these now raises ImportError
    result = decode(seq_file, "--model", model_path, "--out", tmp_path / "d.npz",
                    "--render", tmp_path / "d.png")
    assert result.exit_code == 1
    assert "pip install 'restcn[viz]'" in result.stderr
    assert (tmp_path / "d.npz").is_file() and not (tmp_path / "d.png").exists()
