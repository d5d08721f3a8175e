"""restcn_training.diagnose and ``restcn-diagnose primitives / responses``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import WINDOW, write_checkpoint
from restcn_cli.diagnose import app
from restcn_infer.errors import DataError, RestcnError
from restcn_infer.layouts import KINECT20
from restcn_training.diagnose import (
    DiagnoseError,
    class_sequences,
    filter_responses,
    load_run,
    motion_primitives,
    write_primitives,
)

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory holding a tiny kinect20 checkpoint, as restcn-train writes it."""
    root = tmp_path_factory.mktemp("run")
    write_checkpoint(root / "checkpoint.pt")
    return root


def test_primitives_are_filter_taps_plus_mean(run_dir):
    _, model = load_run(run_dir)
    prims, scale = motion_primitives(model, scale=1.0)
    w = model.trunk.conv1.weight.detach().numpy()  # (N, D, f)
    assert scale == 1.0 and prims.shape == (w.shape[0], w.shape[2], w.shape[1])
    np.testing.assert_allclose(prims[5, 3], model.mean.numpy() + w[5, :, 3], rtol=1e-6)


def test_auto_scale_makes_largest_offset_a_quarter_of_the_height(run_dir):
    _, model = load_run(run_dir)
    prims, scale = motion_primitives(model)
    mu = model.mean.numpy()
    offsets = (prims - mu).reshape(*prims.shape[:2], -1, 3)  # (N, f, V, 3)
    height = np.ptp(mu.reshape(-1, 3)[:, 1])
    assert np.linalg.norm(offsets, axis=-1).max() == pytest.approx(0.25 * height, rel=1e-4)
    assert scale > 0


def test_responses_are_conv1_without_bias(run_dir):
    ckpt, model = load_run(run_dir)
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(1, WINDOW, 20, 3)).astype(np.float32)
    resp = filter_responses(ckpt, model, [seq], KINECT20)
    assert resp.shape == (1, model.trunk.conv1.out_channels, WINDOW)
    with torch.no_grad():
        x = torch.from_numpy(seq[0].reshape(1, WINDOW, -1)) - model.mean
        expected = model.trunk.conv1(x.transpose(1, 2))
        expected = (expected - model.trunk.conv1.bias[:, None]).abs().numpy()
    np.testing.assert_allclose(resp, expected, rtol=1e-5, atol=1e-5)
    still = np.broadcast_to(model.mean.numpy().reshape(1, 1, 20, 3), (1, 9, 20, 3))
    np.testing.assert_allclose(filter_responses(ckpt, model, [still], KINECT20), 0, atol=1e-5)


def test_class_sequences_of_real_data(shared_data):
    pkl = shared_data / "nw_ucla" / "nw_ucla.pkl"
    seqs, layout = class_sequences(pkl, "val", "sit down", 3)
    assert len(seqs) == 3 and layout.name == "kinect20"
    assert all(s.ndim == 4 and s.shape[2:] == (20, 3) for s in seqs)
    with pytest.raises(DiagnoseError, match="classes: pick up with one hand"):
        class_sequences(pkl, "val", "juggling", 3)
    with pytest.raises(DataError, match="unknown split 'nope'"):
        class_sequences(pkl, "nope", "sit down", 3)


def test_load_run_errors(tmp_path):
    with pytest.raises(RestcnError, match="no checkpoint.pt in this directory"):
        load_run(tmp_path)
    with pytest.raises(RestcnError, match="no such checkpoint"):
        load_run(tmp_path / "c.pt")


def test_cli_primitives_writes_png(run_dir, tmp_path):
    result = runner.invoke(app, ["primitives", str(run_dir), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "primitives.png").read_bytes()[:8] == PNG


def test_primitives_top_picks_the_largest_filters(run_dir, tmp_path, monkeypatch):
    import restcn_infer.render as render

    seen = {}
    monkeypatch.setattr(render, "render_primitives",
                        lambda prims, layout, out, labels, **kw: seen.update(prims=prims,
                                                                             labels=labels))
    _, model = load_run(run_dir)
    norms = model.trunk.conv1.weight.detach().flatten(1).norm(dim=1).numpy()
    write_primitives(run_dir, tmp_path, scale=1.0, top=3)
    assert seen["prims"].shape[:2] == (3, model.trunk.conv1.kernel_size[0])
    assert [int(label.split()[0][1:]) for label in seen["labels"]] == list(np.argsort(-norms)[:3])


def test_cli_responses_on_real_data(run_dir, shared_data, tmp_path):
    out = tmp_path / "r.png"
    result = runner.invoke(app, ["responses", str(run_dir), "--data",
                                 str(shared_data / "nw_ucla" / "nw_ucla.pkl"), "--split", "val",
                                 "--class", "throw", "--samples", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG


def test_cli_errors(run_dir, tmp_path, monkeypatch):
    missing = runner.invoke(app, ["primitives", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no such checkpoint" in missing.stderr
    usage = runner.invoke(app, ["responses", str(run_dir), "--out", str(tmp_path / "r.png")])
    assert usage.exit_code == 2
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these now raises ImportError
    no_viz = runner.invoke(app, ["primitives", str(run_dir), "--out", str(tmp_path)])
    assert no_viz.exit_code == 1 and "pip install 'restcn[viz]'" in no_viz.stderr


def test_cli_primitives_of_an_exported_model_equal_its_checkpoints(run_dir, tmp_path,
                                                                   tiny_export):
    from restcn_infer.classifier import Classifier
    from restcn_infer.primitives import motion_primitives as from_filters

    onnx_path = tiny_export()  # the same tiny checkpoint as run_dir (helpers.write_checkpoint)
    result = runner.invoke(app, ["primitives", str(onnx_path), "--out", str(tmp_path / "p"),
                                 "--top", "4"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "primitives.png").read_bytes()[:8] == PNG
    _, model = load_run(run_dir)
    clf = Classifier(onnx_path, device="cpu")
    from restcn_infer.diagnosis import run_outputs

    (filters,) = run_outputs(clf, np.broadcast_to(clf.spec.mean_array, (1, 8, 60)), ["filters"])
    np.testing.assert_allclose(from_filters(filters, clf.spec.mean_array)[0],
                               motion_primitives(model)[0], atol=1e-6)
    old = runner.invoke(app, ["primitives", "ms-res-tcn", "--out", str(tmp_path / "q")])
    assert old.exit_code == 1 and "re-export it" in old.output
