"""restcn_export: every registered model exports with parity on dynamic batch and time, the
decoder head inside the graph, self-describing metadata, and refusals that write nothing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from helpers import CLASSES, WINDOW, write_checkpoint  # noqa: E402
from restcn_export import onnx_export  # noqa: E402
from restcn_export.onnx_export import ExportError, ExportWrapper, export_onnx  # noqa: E402
from restcn_infer.metadata import ModelMetadata  # noqa: E402
from restcn_training.checkpoint import Checkpoint  # noqa: E402
from restcn_training.decoder import FeatureMapDecoder, decode_layers  # noqa: E402
from restcn_training.registry import model_names  # noqa: E402

D = 60  # kinect20, one body
LAYERS = (1, 4, 7, 10)


@pytest.fixture(scope="module", params=model_names())
def architecture(request):
    return request.param


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory, architecture):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", architecture)


@pytest.fixture(scope="module")
def onnx_path(tiny_export, architecture):
    return tiny_export(architecture)  # the same seed and config as ckpt_path


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def torch_outputs(ckpt_path, x: np.ndarray, layers=LAYERS):
    model = Checkpoint.load(ckpt_path).build_model()
    wrapper = ExportWrapper(model, FeatureMapDecoder(model, layers) if layers else None).eval()
    with torch.no_grad():
        out = wrapper(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("batch, time", [(1, 17), (3, 64), (2, 300), (5, 1), (2, 31)])
def test_onnx_matches_torch_for_any_batch_and_length(ckpt_path, onnx_path, batch, time):
    x = np.random.default_rng(time).normal(size=(batch, time, D)).astype(np.float32)
    logits, decoded = session(onnx_path).run(["logits", "decoded"], {"skeleton": x})
    want_logits, want_decoded, *_ = torch_outputs(ckpt_path, x)
    assert logits.shape == (batch, len(CLASSES)) and decoded.shape == (batch, 4, time, D)
    np.testing.assert_allclose(logits, want_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(decoded, want_decoded, atol=1e-4, rtol=0)
    # The head decodes the main stream (MS-Res-TCN: its layers include the pipes' input).
    model = Checkpoint.load(ckpt_path).build_model()
    np.testing.assert_allclose(decoded, decode_layers(model, torch.from_numpy(x), LAYERS).numpy(),
                               atol=1e-4, rtol=0)


def test_graph_inputs_and_outputs_are_named_and_dynamic(onnx_path, architecture):
    model = onnx.load(str(onnx_path))
    inp, decode = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "skeleton"
    assert [bool(d.dim_param) for d in dims] == [True, True, False]
    assert dims[2].dim_value == D
    assert [o.name for o in model.graph.output] == ["logits", "decoded", "responses", "filters"]
    assert decode.name == "decode"  # optional: an initializer holds its default, true
    assert "decode" in {i.name for i in model.graph.initializer}
    weights = {i.name: len(i.dims) for i in model.graph.initializer}
    convs = [weights[n.input[1]] for n in model.graph.node if n.op_type == "Conv"]
    streams = 2 if architecture == "ms-res-tcn" else 1
    pipes = 9 if architecture == "ms-res-tcn" else 0
    assert len(convs) == streams * (1 + 9 + 2) + pipes
    assert set(convs) == {4}  # run as 2-D: onnxruntime's fast path


def test_upsampling_exports_as_resize(onnx_path):
    """One ``Resize`` per block step (layer 7: one, layer 10: two), no gather decomposition."""
    graph = onnx.load(str(onnx_path)).graph
    # The decoder head sits inside the If node that the optional 'decode' input drives.
    subgraph_ops = [inner.op_type for node in graph.node for attr in node.attribute
                    if attr.type == onnx.AttributeProto.GRAPH for inner in attr.g.node]
    ops = [node.op_type for node in graph.node] + subgraph_ops
    assert ops.count("Resize") == 3
    assert "GatherND" not in ops


def test_conv1_responses_and_filters_are_outputs(ckpt_path, onnx_path):
    """The diagnosis reads conv1 from the deployed model: its response without bias (Figure 8)
    and its weights (the motion primitives, Figure 3)."""
    x = np.random.default_rng(3).normal(size=(2, 23, D)).astype(np.float32)
    responses, filters = session(onnx_path).run(["responses", "filters"], {"skeleton": x})
    model = Checkpoint.load(ckpt_path).build_model()
    conv1 = model.decoded_trunk.conv1
    with torch.no_grad():
        features = model.input_features(torch.from_numpy(x)).transpose(1, 2)  # (B, D, T)
        want = (conv1(features) - conv1.bias[:, None]).abs().numpy()
    assert responses.shape == (2, conv1.out_channels, 23)
    np.testing.assert_allclose(responses, want, atol=1e-5)
    np.testing.assert_array_equal(filters, conv1.weight.detach().numpy())


def test_decode_false_skips_the_decoder_head(onnx_path):
    x = np.random.default_rng(2).normal(size=(2, 40, D)).astype(np.float32)
    names = ["logits", "decoded", "responses"]
    logits, decoded, responses = session(onnx_path).run(names, {"skeleton": x})
    fast, empty, none = session(onnx_path).run(names, {"skeleton": x,
                                                       "decode": np.array(False)})
    np.testing.assert_array_equal(fast, logits)
    assert decoded.shape == (2, 4, 40, D) and empty.shape == (2, 4, 0, D)
    assert responses.shape[::2] == (2, 40) and none.shape == (2, responses.shape[1], 0)
    kernels = profiled_kernels(onnx_path, x)
    assert kernels["decode"] > kernels["skip"] + 10  # the head's nodes did not run


def profiled_kernels(path, x) -> dict[str, int]:
    """Node kernels onnxruntime executed with decode on / off (from its profiler)."""
    import json

    counts = {}
    for name, flag in (("decode", True), ("skip", False)):
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(path.parent / f"profile_{name}")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        sess.run(["logits"], {"skeleton": x, "decode": np.array(flag)})
        with open(sess.end_profiling()) as fh:
            events = json.load(fh)
        counts[name] = sum(e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                           for e in events)
    return counts


def test_metadata_is_the_checkpoint_spec_plus_export_facts(ckpt_path, onnx_path, architecture):
    meta = ModelMetadata.from_props(session(onnx_path).get_modelmeta().custom_metadata_map)
    spec = Checkpoint.load(ckpt_path).spec
    assert meta.spec == spec  # one description, from training to serving
    assert meta.spec.architecture == architecture and meta.spec.input.window == WINDOW
    assert meta.decoder_layers == LAYERS
    assert meta.export["precision"] == "fp32" and meta.export["exporter"] in ("dynamo",
                                                                              "torchscript")
    assert meta.spec.target_joints == ((6, 7, 10, 11) if architecture == "ms-res-tcn" else ())
    assert ModelMetadata.from_json(meta.to_json()) == meta


def test_fp16_storage_without_decoder_halves_weights_and_keeps_parity(tiny_export, ckpt_path,
                                                                      architecture):
    path = tiny_export(architecture, precision="fp16", decoder_layers=())
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == ["logits"]
    big = [i for i in model.graph.initializer if np.prod(i.dims) >= 256]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    x = np.random.default_rng(1).normal(size=(2, WINDOW, D)).astype(np.float32)
    (logits,) = session(path).run(None, {"skeleton": x})
    (want,) = torch_outputs(ckpt_path, x, layers=())  # no decoder: logits only
    assert np.abs(logits - want).max() < 0.05  # fp16-rounded weights: close, not equal
    assert logits.argmax(1).tolist() == want.argmax(1).tolist()


def test_refuses_a_graph_that_disagrees_with_torch_and_writes_nothing(
        tmp_path, ckpt_path, onnx_path, monkeypatch):
    def corrupted_graph(wrapper, example, opset):
        proto = onnx.load(str(onnx_path))
        init = max(proto.graph.initializer, key=lambda i: np.prod(i.dims))
        value = onnx.numpy_helper.to_array(init) + 0.01
        init.CopyFrom(onnx.numpy_helper.from_array(value.astype(np.float32), init.name))
        return proto, "dynamo"

    monkeypatch.setattr(onnx_export, "_export_graph", corrupted_graph)
    with pytest.raises(ExportError, match="disagrees with torch"):
        export_onnx(ckpt_path, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the model nor a temp file


def test_parity_on_real_input(tmp_path, ckpt_path, onnx_path, monkeypatch, shared_data):
    monkeypatch.setattr(onnx_export, "_export_graph",
                        lambda wrapper, example, opset: (onnx.load(str(onnx_path)), "dynamo"))
    report = export_onnx(ckpt_path, tmp_path / "m.onnx",
                         check_data=shared_data / "ntu" / "S001C001P001R001A001.skeleton")
    assert set(report.max_abs_diff) == {"random", "random_short", "real"}
    assert max(report.max_abs_diff.values()) < onnx_export.PARITY_TOLERANCE
    data = export_onnx(ckpt_path, tmp_path / "d.onnx",
                       check_data=shared_data / "nw_ucla" / "nw_ucla.pkl")  # a data set
    assert data.max_abs_diff["real"] < onnx_export.PARITY_TOLERANCE


@pytest.mark.parametrize("kwargs, out, match", [
    ({"precision": "int3"}, "m.onnx", "unknown precision"),
    ({"decoder_layers": (0, 11)}, "m.onnx", "1..10"),
    ({}, "m.txt", "must end in .onnx"),
    ({}, ".", "is a directory"),
])
def test_bad_export_options_are_refused_before_any_work(tmp_path, ckpt_path, kwargs, out, match):
    with pytest.raises(ExportError, match=match):
        export_onnx(ckpt_path, tmp_path / out, **kwargs)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.txt").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_decoder_keeps_time_dynamic_with_torchscript_exporter(ckpt_path, tmp_path):
    """The export falls back to the TorchScript exporter; the decoder must stay dynamic there too
    (it upsamples with ``F.interpolate`` under tracing: ``restcn_training.decoder.upsample``)."""
    model = Checkpoint.load(ckpt_path).build_model()

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.decoder = model, FeatureMapDecoder(model, [1, 6, 10])

        def forward(self, x):
            return self.decoder(self.model.forward_layers(x), x.shape[1])

    path = tmp_path / "head.onnx"
    with torch.no_grad():
        torch.onnx.export(Head().eval(), (torch.randn(2, 32, D),), str(path),
                          input_names=["skeleton"], output_names=["decoded"], dynamo=False,
                          dynamic_axes={"skeleton": {0: "batch", 1: "time"}})
    for t in (9, 45):
        x = np.random.default_rng(t).standard_normal((2, t, D)).astype(np.float32)
        (decoded,) = session(path).run(None, {"skeleton": x})
        expected = decode_layers(model, torch.from_numpy(x), [1, 6, 10]).numpy()
        np.testing.assert_allclose(decoded, expected, rtol=1e-4, atol=1e-4)


def test_cli_exports_and_prints_parity(tmp_path, ckpt_path, onnx_path, monkeypatch):
    from typer.testing import CliRunner

    from restcn_cli.export import app

    monkeypatch.setattr(onnx_export, "_export_graph",
                        lambda wrapper, example, opset: (onnx.load(str(onnx_path)), "dynamo"))
    result = CliRunner().invoke(app, [str(ckpt_path), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output and (tmp_path / "m.onnx").is_file()
    result = CliRunner().invoke(app, [str(tmp_path / "missing.pt"), "--out",
                                      str(tmp_path / "x.onnx")])
    assert result.exit_code == 1
    assert "no such checkpoint" in result.output
