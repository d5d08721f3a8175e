"""Checkpoints: one type, every registered model round trips, format-1 files still load, bad
files are refused clearly (and never with advice to load them unsafely)."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from conftest import FORMAT_V1
from helpers import write_checkpoint
from restcn_infer.layouts import KINECT20
from restcn_infer.spec import InputSpec, ModelSpec
from restcn_training.checkpoint import CHECKPOINT_FORMAT, Checkpoint, CheckpointError
from restcn_training.registry import (
    UnknownModelError,
    create_model,
    model_names,
    register_model,
)
from restcn_training.res_tcn import ResTCN, ResTCNConfig


@pytest.mark.parametrize("architecture", model_names())
def test_round_trip_rebuilds_an_identical_model(tmp_path, architecture):
    path = write_checkpoint(tmp_path / "c.pt", architecture, seed=1)
    ckpt = Checkpoint.load(path)
    assert ckpt.spec.architecture == architecture
    assert Checkpoint.from_dict(ckpt.to_dict()) == ckpt
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"format", "spec", "state_dict"} and raw["format"] == CHECKPOINT_FORMAT
    model = ckpt.build_model()
    again = Checkpoint.from_model(model, ckpt.spec)
    assert again.state_dict.keys() == ckpt.state_dict.keys()
    x = torch.randn(2, 16, 60)
    with torch.no_grad():
        torch.testing.assert_close(again.build_model()(x), model(x), rtol=0, atol=0)
    np.testing.assert_array_equal(model.mean.numpy(), ckpt.spec.mean_array)


def test_a_run_directory_reads_as_its_checkpoint(tmp_path):
    write_checkpoint(tmp_path / "checkpoint.pt")
    assert Checkpoint.load(tmp_path) == Checkpoint.load(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("name, targets", [("res_tcn", ()), ("ms_res_tcn", (6, 7, 10, 11))])
def test_format1_checkpoints_load_and_compute_what_they_did(name, targets):
    ckpt = Checkpoint.load(FORMAT_V1 / f"{name}.pt")
    expected = np.load(FORMAT_V1 / "expected.npz")
    assert ckpt.spec.input == InputSpec(layout=KINECT20, bodies=1, window=32)
    assert ckpt.spec.classes == ("wave", "clap", "sit", "jump")
    assert ckpt.spec.training["command"] == "restcn-train --data tiny.pkl"
    assert ckpt.spec.target_joints == targets
    with torch.no_grad():
        logits = ckpt.build_model()(torch.from_numpy(expected["input"])).numpy()
    # Float sums reorder with the thread count other tests leave behind: equal to 1e-5,
    # where a single wrongly mapped weight moves logits by > 1e-2.
    np.testing.assert_allclose(logits, expected[f"{name}_logits"], rtol=1e-5, atol=1e-6)


def test_a_resume_state_is_named_as_such(tmp_path):
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "resume", "model": {}}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"resume state \(last\.pt\).*checkpoint\.pt"):
        Checkpoint.load(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="unfinished"):
        Checkpoint.load(tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _torch_saved(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("content, match", [
    (b"", "not a loadable checkpoint"),
    (b"not a zip or pickle at all", "not a loadable checkpoint"),
    (pickle.dumps(_Evil()), "not a loadable checkpoint"),
    (_torch_saved({"state_dict": _Evil()}), r"objects other than tensors .*print"),
], ids=["empty", "garbage", "raw-pickle", "unsafe-object"])
def test_bad_files_are_refused_without_unsafe_advice(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        Checkpoint.load(path)
    assert "weights_only" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("edit, match", [
    (lambda raw: raw.pop("spec"), "spec must be a JSON object"),
    (lambda raw: raw["spec"].update(classes=5),
     "'classes' must be a list of non-empty strings, got 5"),
    (lambda raw: raw["spec"]["input"].update(window="64"), "'window' must be an integer"),
    (lambda raw: raw["spec"].update(mean=[0.0] * 3), "mean has 3 values, expected D = 60"),
    (lambda raw: raw.update(format=9), "format 9 is not one this restcn reads"),
    (lambda raw: raw.update(state_dict={"w": "not a tensor"}), "state_dict of tensors"),
])
def test_typed_validation_names_the_field(tmp_path, edit, match):
    raw = torch.load(write_checkpoint(tmp_path / "c.pt"), weights_only=True)
    edit(raw)
    with pytest.raises(CheckpointError, match=match):
        Checkpoint.from_dict(raw, "c.pt")


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path):
    ckpt = Checkpoint.load(write_checkpoint(tmp_path / "c.pt"))
    wrong = dataclasses.replace(ckpt.spec, architecture="ms-res-tcn")
    with pytest.raises(CheckpointError, match="does not fit"):
        Checkpoint(wrong, ckpt.state_dict).build_model()


def test_the_registry_refuses_duplicates_and_keeps_the_builtins():
    class Mine(ResTCN):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_model("res-tcn", Mine, ResTCNConfig)
    register_model("test-mine", Mine, ResTCNConfig)
    try:
        assert {"res-tcn", "ms-res-tcn", "test-mine"} <= set(model_names())
        assert type(create_model("test-mine", {"in_channels": 6, "num_classes": 2})) is Mine
        assert type(create_model("res-tcn", {"in_channels": 6, "num_classes": 2})) is ResTCN
    finally:
        from restcn_training import registry

        del registry._MODELS["test-mine"]
    with pytest.raises(UnknownModelError, match="unknown model 'resnet'"):
        create_model("resnet", {})
    with pytest.raises(UnknownModelError, match="does not fit"):
        create_model("res-tcn", {"in_channels": 6})


def test_spec_refuses_inconsistent_descriptions():
    spec_input = InputSpec(layout=KINECT20, bodies=1, window=8)
    good = ModelSpec("res-tcn", spec_input, ("a", "b"), (0.0,) * 60)
    assert ModelSpec.from_dict(good.to_dict()) == good
    for changes, match in [({"classes": ("a",)}, "at least 2"), ({"classes": ("a", "a")}, "repeat"),
                           ({"mean": (float("nan"),) * 60}, "NaN")]:
        with pytest.raises(Exception, match=match):
            dataclasses.replace(good, **changes)
