"""restcn_export.onnx_export: parity with torch on dynamic batch and time, metadata, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from restcn_export import onnx_export  # noqa: E402
from restcn_export.onnx_export import ExportError, ExportWrapper, export_onnx  # noqa: E402
from restcn_infer.metadata import METADATA_KEY, ModelMetadata  # noqa: E402
from restcn_training.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from tiny_models import CLASSES, WINDOW, exported_model, write_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return exported_model(tmp_path_factory)


def torch_outputs(ckpt_path, x: np.ndarray, layers=(1, 4, 7, 10)):
    from restcn_training.decoder import FeatureMapDecoder

    model = model_from_checkpoint(load_checkpoint(ckpt_path))
    wrapper = ExportWrapper(model, FeatureMapDecoder(model, layers) if layers else None).eval()
    with torch.no_grad():
        out = wrapper(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("batch, time", [(1, 17), (3, 64), (2, 300), (5, 1)])
def test_onnx_matches_torch_for_any_batch_and_length(ckpt_path, onnx_path, batch, time):
    x = np.random.default_rng(time).normal(size=(batch, time, 60)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits, decoded = session.run(["logits", "decoded"], {"skeleton": x})
    want_logits, want_decoded = torch_outputs(ckpt_path, x)
    assert logits.shape == (batch, len(CLASSES))
    assert decoded.shape == (batch, 4, time, 60)
    np.testing.assert_allclose(logits, want_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(decoded, want_decoded, atol=1e-4, rtol=0)


def test_graph_inputs_and_outputs_are_named_and_dynamic(onnx_path):
    model = onnx.load(str(onnx_path))
    inp, decode = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "skeleton"
    assert [bool(d.dim_param) for d in dims] == [True, True, False]
    assert dims[2].dim_value == 60
    assert [o.name for o in model.graph.output] == ["logits", "decoded"]
    assert decode.name == "decode"  # optional: an initializer holds its default, true
    assert "decode" in {i.name for i in model.graph.initializer}
    weights = {i.name: len(i.dims) for i in model.graph.initializer}
    convs = [weights[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 1 + 9 + 2 and set(convs) == {4}  # run as 2-D: onnxruntime's fast path


def test_decode_false_skips_the_decoder_head(onnx_path):
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).normal(size=(2, 40, 60)).astype(np.float32)
    logits, decoded = session.run(None, {"skeleton": x})
    fast, empty = session.run(None, {"skeleton": x, "decode": np.array(False)})
    np.testing.assert_array_equal(fast, logits)
    assert decoded.shape == (2, 4, 40, 60) and empty.shape == (2, 4, 0, 60)
    kernels = profiled_kernels(onnx_path, x)
    assert kernels["decode"] > kernels["skip"] + 10  # the head's nodes did not run


def profiled_kernels(path, x) -> dict[str, int]:
    """Node kernels onnxruntime executed with decode on / off (from its profiler)."""
    counts = {}
    for name, flag in (("decode", True), ("skip", False)):
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(path.parent / f"profile_{name}")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(["logits"], {"skeleton": x, "decode": np.array(flag)})
        with open(session.end_profiling()) as fh:
            events = json.load(fh)
        counts[name] = sum(e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                           for e in events)
    return counts


def test_metadata_round_trips_from_the_checkpoint(ckpt_path, onnx_path):
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    meta = ModelMetadata.from_json(props[METADATA_KEY])
    ckpt = load_checkpoint(ckpt_path)
    assert meta.architecture == "res-tcn" and meta.layout == "kinect20"
    assert (meta.bodies, meta.D, meta.window) == (1, 60, WINDOW)
    assert meta.classes == CLASSES
    assert meta.decoder_layers == [1, 4, 7, 10]
    np.testing.assert_allclose(meta.mean_array(), ckpt["mean"].numpy(), rtol=0, atol=0)
    assert meta.training["command"] == ckpt["training"]["command"]
    assert meta.metrics == ckpt["metrics"]
    assert ModelMetadata.from_json(meta.to_json()) == meta
    assert json.loads(props[onnx_export.EXPORT_KEY])["precision"] == "fp32"


def test_fp16_storage_without_decoder_halves_weights_and_keeps_parity(tmp_path_factory,
                                                                      ckpt_path, onnx_path):
    path = exported_model(tmp_path_factory, precision="fp16", decoder_layers=())
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == ["logits"]
    big = [i for i in model.graph.initializer if np.prod(i.dims) >= 256]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    x = np.random.default_rng(1).normal(size=(2, WINDOW, 60)).astype(np.float32)
    (logits,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"skeleton": x})
    (want,) = torch_outputs(ckpt_path, x, layers=())
    assert np.abs(logits - want).max() < 0.05  # fp16-rounded weights: close, not equal
    assert logits.argmax(1).tolist() == want.argmax(1).tolist()


def test_refuses_a_graph_that_disagrees_with_torch_and_writes_nothing(
        tmp_path, ckpt_path, onnx_path, monkeypatch):
    def corrupted_graph(wrapper, meta, opset):
        proto = onnx.load(str(onnx_path))
        init = max(proto.graph.initializer, key=lambda i: np.prod(i.dims))
        value = onnx.numpy_helper.to_array(init) + 0.01
        init.CopyFrom(onnx.numpy_helper.from_array(value.astype(np.float32), init.name))
        return proto, "dynamo"

    monkeypatch.setattr(onnx_export, "_export_graph", corrupted_graph)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="disagrees with torch"):
        export_onnx(ckpt_path, out)
    assert list(tmp_path.iterdir()) == []  # neither the model nor a temp file


def test_parity_on_real_input(tmp_path, ckpt_path, onnx_path, monkeypatch, shared_data):
    monkeypatch.setattr(onnx_export, "_export_graph",
                        lambda wrapper, meta, opset: (onnx.load(str(onnx_path)), "dynamo"))
    report = export_onnx(ckpt_path, tmp_path / "m.onnx",
                         check_data=shared_data / "ntu" / "S001C001P001R001A001.skeleton")
    assert set(report.max_abs_diff) == {"random", "random_short", "real"}
    assert max(report.max_abs_diff.values()) < onnx_export.PARITY_TOLERANCE


@pytest.mark.parametrize("kwargs, match", [
    ({"precision": "int3"}, "unknown precision"),
    ({"decoder_layers": (0, 11)}, "1..10"),
])
def test_bad_export_options_are_refused(tmp_path, ckpt_path, kwargs, match):
    with pytest.raises(ExportError, match=match):
        export_onnx(ckpt_path, tmp_path / "m.onnx", **kwargs)
    assert not (tmp_path / "m.onnx").exists()


def test_cli_exports_and_prints_parity(tmp_path, ckpt_path, onnx_path, monkeypatch):
    from typer.testing import CliRunner

    from restcn_cli.export import app

    monkeypatch.setattr(onnx_export, "_export_graph",
                        lambda wrapper, meta, opset: (onnx.load(str(onnx_path)), "dynamo"))
    result = CliRunner().invoke(app, [str(ckpt_path), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output and (tmp_path / "m.onnx").is_file()
    result = CliRunner().invoke(app, [str(tmp_path / "missing.pt"), "--out", "x.onnx"])
    assert result.exit_code == 1
    assert "no such checkpoint" in result.output
