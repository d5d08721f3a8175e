"""restcn-export --ensemble: members of different modalities in one graph, the documented
fusion rules, decoded from the joint member, refusals of members that do not fit together."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from helpers import CLASSES, WINDOW, write_checkpoint  # noqa: E402
from restcn_export.onnx_export import export_onnx  # noqa: E402
from restcn_infer.classifier import Classifier  # noqa: E402
from restcn_training.checkpoint import Checkpoint, untrained_checkpoint  # noqa: E402
from restcn_training.ensemble import EnsembleError, ensemble_checkpoint  # noqa: E402

D = 60


def member(tmp_path, name: str, modality: str, seed: int, **changes):
    """A tiny member checkpoint of one modality (the helper's kinect20 input)."""
    base = Checkpoint.load(write_checkpoint(tmp_path / f"{name}_base.pt", seed=seed))
    ckpt = untrained_checkpoint("res-tcn", base.spec.input, list(base.spec.classes), seed=seed,
                                mean=torch.randn(D) * 0.1, channels=(8, 8, 8, 12, 12, 12, 16,
                                                                     16, 16),
                                modality=modality)
    spec = dataclasses.replace(ckpt.spec, metrics={"final_val_accuracy": 0.5 + seed / 10},
                               **changes)
    return Checkpoint(spec, ckpt.state_dict).save(tmp_path / f"{name}.pt")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [member(root, "joint", "joint", 1), member(root, "bone", "bone", 2),
            member(root, "motion", "motion", 3)]


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def member_logits(members, x):
    out = []
    for path in members:
        model = Checkpoint.load(path).build_model()
        with torch.no_grad():
            out.append(model(torch.from_numpy(x)).numpy())
    return np.stack(out)  # (K, B, C)


@pytest.mark.parametrize("fusion", ["logprob", "prob", "logit"])
def test_each_fusion_rule_is_the_documented_formula(members, fusion):
    weights = [2.0, 1.0, 1.0]
    x = np.random.default_rng(0).normal(1.0, 0.5, (3, WINDOW, D)).astype(np.float32)
    z, w = member_logits(members, x), np.array(weights)[:, None, None] / 4.0
    want = {"logit": (w * z).sum(0),
            "prob": np.log((w * softmax(z)).sum(0)),
            "logprob": (w * np.log(softmax(z))).sum(0)}[fusion]
    model = ensemble_checkpoint(members, weights, fusion).build_model()
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), want, atol=1e-5)


def test_the_ensemble_graph_takes_raw_input_and_decodes_the_joint_member(tmp_path, members):
    report = export_onnx(ensemble_checkpoint(members, [2.0, 1.0, 1.0]), tmp_path / "e.onnx")
    assert max(report.max_abs_diff.values()) < 1e-4  # the export's own parity check
    x = np.random.default_rng(0).normal(1.0, 0.5, (3, WINDOW, D)).astype(np.float32)
    z = member_logits(members, x)
    want = (np.array([0.5, 0.25, 0.25])[:, None, None] * np.log(softmax(z))).sum(0)
    clf = Classifier(report.path, device="cpu")
    logits, decoded = clf.run(x, decode=True)
    np.testing.assert_allclose(logits, want, atol=1e-4)
    joint = Checkpoint.load(members[0]).build_model()
    from restcn_training.decoder import decode_layers

    np.testing.assert_allclose(decoded, decode_layers(joint, torch.from_numpy(x),
                                                      [1, 4, 7, 10]).numpy(), atol=1e-4)
    meta = clf.metadata
    assert meta.spec.architecture == "ensemble" and meta.decoder_layers == (1, 4, 7, 10)
    assert [m["config"]["modality"] for m in meta.spec.config["members"]] == [
        "joint", "bone", "motion"]
    assert [m["final_val_accuracy"] for m in meta.spec.metrics["members"]] == [0.6, 0.7, 0.8]
    assert list(meta.spec.classes) == CLASSES
    np.testing.assert_array_equal(meta.spec.mean_array, Checkpoint.load(members[0]).spec.mean_array)


def test_an_ensemble_without_a_joint_member_has_no_decoder(members):
    from restcn_export.onnx_export import make_decoder

    model = ensemble_checkpoint(members[1:]).build_model()
    assert model.decoded_modality is None and make_decoder(model, None) is None


def test_members_that_do_not_fit_together_are_refused(tmp_path, members):
    other_window = member(tmp_path, "w", "joint", 4)
    ckpt = Checkpoint.load(other_window)
    spec = dataclasses.replace(ckpt.spec, input=dataclasses.replace(ckpt.spec.input, window=48))
    Checkpoint(spec, ckpt.state_dict).save(other_window)
    with pytest.raises(EnsembleError, match="window 48 resample"):
        ensemble_checkpoint([members[0], other_window])
    swapped = member(tmp_path, "c", "joint", 5, classes=tuple(reversed(CLASSES)))
    with pytest.raises(EnsembleError, match="classes differ"):
        ensemble_checkpoint([members[0], swapped])
    with pytest.raises(EnsembleError, match="at least 2 members"):
        ensemble_checkpoint(members[:1])
    with pytest.raises(EnsembleError, match="weights"):
        ensemble_checkpoint(members, weights=[1.0, -1.0, 1.0])


def test_cli_ensemble_and_its_usage_errors(tmp_path, members):
    from typer.testing import CliRunner

    from restcn_cli.export import app

    runner = CliRunner()
    out = tmp_path / "e.onnx"
    result = runner.invoke(app, ["--ensemble", *map(str, members[1:]), "--weights", "1,2",
                                 "--fusion", "prob", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = Classifier(out, device="cpu").metadata.spec.config
    assert config["weights"] == [1.0, 2.0] and config["fusion"] == "prob"
    two = runner.invoke(app, [*map(str, members[:2]), "--out", str(out)])
    assert two.exit_code == 2 and "--ensemble" in two.output
    bad = runner.invoke(app, ["--ensemble", *map(str, members), "--weights", "1,x",
                              "--out", str(out)])
    assert bad.exit_code == 2
