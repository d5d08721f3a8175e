"""restcn_export.triton: the Triton model repository, its config.pbtxt parsed with Triton's own
``ModelConfig`` protobuf (from the ``tritonclient`` package) and checked against the served
graphs; the served graphs compute what the export computes; the client helpers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
text_format = pytest.importorskip("google.protobuf.text_format")
json_format = pytest.importorskip("google.protobuf.json_format")

from bodies import body_sequence  # noqa: E402
from helpers import tiny_metadata  # noqa: E402
from restcn_export.errors import ExportError  # noqa: E402
from restcn_export.triton import write_triton_repository  # noqa: E402
from restcn_infer.checked_input import NonFiniteScoresError  # noqa: E402
from restcn_infer.client import (  # noqa: E402
    metadata_from_triton_config,
    prepare_batch,
    rank_logits,
)
from restcn_infer.errors import ModelError  # noqa: E402
from restcn_infer.input_options import InputOptions  # noqa: E402
from restcn_infer.layouts import NTU25  # noqa: E402
from restcn_infer.metadata import METADATA_KEY, ModelMetadata  # noqa: E402
from restcn_infer.plausibility import ImplausibleInputError  # noqa: E402
from restcn_infer.readers.keypoints import Keypoints  # noqa: E402

ORT_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(bool)": "TYPE_BOOL",
             "tensor(int64)": "TYPE_INT64"}


@pytest.fixture(scope="module")
def pb2():
    """Triton's ``model_config_pb2``. ``tritonclient.grpc``'s package needs grpcio, which
    parsing a config does not: the module is loaded from its file when that import fails."""
    try:
        from tritonclient.grpc import model_config_pb2
        return model_config_pb2
    except (ImportError, RuntimeError):
        pass
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tritonclient is not installed (pip install tritonclient)")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def parse(path: Path, pb2):
    return text_format.Parse(path.read_text(encoding="utf-8"), pb2.ModelConfig())


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export()  # decoder layers 1,4,7,10


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    repo = tmp_path_factory.mktemp("triton")
    return {m.name: m for m in write_triton_repository(exported, repo, "tiny")}


def dims(shape) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape[1:]]  # the batch axis is Triton's


def test_the_repository_layout(served):
    assert sorted(served) == ["tiny", "tiny_decoded"]
    for model in served.values():
        assert model.config == model.folder / "config.pbtxt"
        assert model.model == model.folder / "1" / "model.onnx" and model.model.is_file()
        assert model.labels == model.folder / "labels.txt"


@pytest.mark.parametrize("name", ["tiny", "tiny_decoded"])
def test_config_parses_with_tritons_protobuf_and_matches_the_graph(served, pb2, name):
    model = served[name]
    cfg = parse(model.config, pb2)
    assert cfg.name == name and cfg.backend == "onnxruntime"
    assert cfg.max_batch_size == 64 and cfg.HasField("dynamic_batching")
    sess = ort.InferenceSession(str(model.model), providers=["CPUExecutionProvider"])
    assert sess.get_overridable_initializers() == []  # nothing Triton could not feed
    graph_inputs = [(i.name, ORT_TYPES[i.type], dims(i.shape)) for i in sess.get_inputs()]
    config_inputs = [(i.name, pb2.DataType.Name(i.data_type), list(i.dims)) for i in cfg.input]
    assert config_inputs == graph_inputs == [("skeleton", "TYPE_FP32", [-1, 60])]
    assert not any(i.optional for i in cfg.input)
    graph_outputs = [(o.name, ORT_TYPES[o.type], dims(o.shape)) for o in sess.get_outputs()]
    config_outputs = [(o.name, pb2.DataType.Name(o.data_type), list(o.dims)) for o in cfg.output]
    assert config_outputs == graph_outputs
    want = [("logits", "TYPE_FP32", [4])] + ([("decoded", "TYPE_FP32", [4, -1, 60])]
                                             if name == "tiny_decoded" else [])
    assert config_outputs == want
    logits = next(o for o in cfg.output if o.name == "logits")
    assert logits.label_filename == "labels.txt"
    meta = ModelMetadata.from_json(cfg.parameters[METADATA_KEY].string_value)
    assert model.labels.read_text().splitlines() == list(meta.spec.classes)
    assert meta.decoder_layers == ((1, 4, 7, 10) if name == "tiny_decoded" else ())


def test_served_graphs_compute_what_the_export_computes(exported, served):
    x = np.random.default_rng(0).normal(size=(3, 32, 60)).astype(np.float32)
    full = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    logits, decoded = full.run(["logits", "decoded"], {"skeleton": x})
    plain = ort.InferenceSession(str(served["tiny"].model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(plain.run(None, {"skeleton": x})[0], logits, rtol=0, atol=1e-5)
    with_head = ort.InferenceSession(str(served["tiny_decoded"].model),
                                     providers=["CPUExecutionProvider"])
    got_logits, got_decoded = with_head.run(["logits", "decoded"], {"skeleton": x})
    np.testing.assert_allclose(got_logits, logits, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_decoded, decoded, rtol=0, atol=1e-5)
    ops = {node.op_type for node in onnx.load(str(served["tiny"].model)).graph.node}
    assert "If" not in ops  # the decoder head is gone, not just skipped


def test_client_helpers_read_the_config_and_prepare_input(served, pb2):
    cfg = parse(served["tiny"].config, pb2)
    http_style = json_format.MessageToDict(cfg, preserving_proto_field_name=True)
    grpc_style = {"config": json_format.MessageToDict(cfg)}  # camelCase keys
    meta = metadata_from_triton_config(http_style)
    assert metadata_from_triton_config(grpc_style).spec == meta.spec
    kinect = body_sequence(50, "kinect20")
    ntu = Keypoints(body_sequence(9, "ntu25", bodies=2), layout=NTU25)
    batch = prepare_batch(meta, [kinect, ntu], sources=["a.npy", "b.skeleton"])
    assert batch.shape == (2, 32, 60) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], meta.spec.input.prepare(kinect))
    np.testing.assert_array_equal(batch[1], meta.spec.input.prepare(ntu.coords, layout=NTU25))
    assert prepare_batch(meta.spec, []).shape == (0, 32, 60)


def test_the_client_refuses_what_classify_refuses_and_ranks_row_by_row(served, pb2):
    """A Triton client gets the classifier's checks: millimetres are refused with the option
    that fixes them, and a NaN row of logits costs only itself."""
    meta = metadata_from_triton_config(json_format.MessageToDict(
        parse(served["tiny"].config, pb2), preserving_proto_field_name=True))
    kinect = body_sequence(50, "kinect20")
    with pytest.raises(ImplausibleInputError, match="--units mm") as refused:
        prepare_batch(meta, [kinect * 1000], sources=["clip.npy"])
    assert "clip.npy" in str(refused.value)
    fixed = prepare_batch(meta, [kinect * 1000], options=InputOptions(units="mm"))
    np.testing.assert_allclose(fixed, prepare_batch(meta, [kinect]), atol=1e-5)
    c = len(meta.spec.classes)
    logits = np.zeros((2, c), np.float32)
    logits[0] = np.arange(c)  # the last class most likely
    logits[1, 0] = np.nan
    good, bad = rank_logits(meta, logits, top_k=2, sources=["a", "b"])
    assert [p.label for p in good] == [c - 1, c - 2] and good[0].probability > 0.5
    assert isinstance(bad, NonFiniteScoresError) and "b" in str(bad)
    with pytest.raises(TypeError, match="ModelMetadata or ModelSpec"):
        prepare_batch(meta.spec.input, [kinect])
    with pytest.raises(ModelError, match="no 'restcn' parameter"):
        metadata_from_triton_config({"name": "other", "parameters": {}})


def handmade_model(path: Path, meta: ModelMetadata | None, batch: str | int = "batch") -> Path:
    """skeleton (batch, time, 60) -> mean over time @ W -> logits (batch, C): no decoder."""
    from onnx import TensorProto, helper, numpy_helper

    classes = len(meta.spec.classes) if meta else 4
    w = numpy_helper.from_array(np.ones((60, classes), np.float32), "w")
    nodes = [helper.make_node("ReduceMean", ["skeleton"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["pooled", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes, "handmade",
        [helper.make_tensor_value_info("skeleton", TensorProto.FLOAT, [batch, "time", 60])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if meta is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta.to_json()
    onnx.save(proto, str(path))
    return path


def test_a_model_without_decoder_and_names_that_need_escaping(tmp_path, pb2):
    import dataclasses

    meta = tiny_metadata(num_classes=4, decoder_layers=())
    spec = dataclasses.replace(meta.spec, classes=('say "hi"', "back\\slash", "café", "x"))
    meta = dataclasses.replace(meta, spec=spec)
    path = handmade_model(tmp_path / "plain.onnx", meta)
    (model,) = write_triton_repository(path, tmp_path / "repo", max_batch_size=8,
                                       queue_delay_us=500)
    assert model.name == "plain"
    cfg = parse(model.config, pb2)
    assert cfg.max_batch_size == 8
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert json.loads(cfg.parameters[METADATA_KEY].string_value) == json.loads(meta.to_json())
    assert model.labels.read_text(encoding="utf-8").splitlines() == list(spec.classes)


@pytest.mark.parametrize(("make", "kwargs", "match"), [
    (lambda p: handmade_model(p, tiny_metadata(decoder_layers=())), {"name": "a b"},
     "Triton model name 'a b'"),
    (lambda p: handmade_model(p, None), {}, "no 'restcn' metadata"),
    (lambda p: handmade_model(p, tiny_metadata(decoder_layers=()), batch=1), {},
     "dynamic batch axis"),
    (lambda p: p.write_bytes(b"\x08\xffgarbage") and p, {}, "cannot read the ONNX model"),
    (lambda p: handmade_model(p, tiny_metadata(decoder_layers=())), {"max_batch_size": 0},
     "max_batch_size must be >= 1"),
])
def test_refusals(tmp_path, make, kwargs, match):
    path = make(tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=match):
        write_triton_repository(path, tmp_path / "repo", **kwargs)
    assert not (tmp_path / "repo").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="not a folder"):
        write_triton_repository(path, tmp_path / "file")


def test_export_cli_writes_the_repository_after_the_export(tmp_path, monkeypatch):
    from restcn_cli.export import app

    calls = {}

    class Report:
        path, size_bytes, precision, opset = tmp_path / "m.onnx", 1e6, "fp32", 18
        exporter, decoder_layers, max_abs_diff = "dynamo", (1,), {"random": 1e-7}

    def fake_export(source, out, **kwargs):
        calls["export"] = out
        return Report

    def fake_write(model, repo, name):
        calls["triton"] = (model, repo, name)
        return []

    monkeypatch.setattr("restcn_export.onnx_export.export_onnx", fake_export)
    monkeypatch.setattr("restcn_export.triton.write_triton_repository", fake_write)
    runner = CliRunner()
    args = ["ck.pt", "--out", str(tmp_path / "m.onnx"), "--triton-repo", str(tmp_path / "r")]
    result = runner.invoke(app, args + ["--triton-name", "nw-ucla"])
    assert result.exit_code == 0, result.output
    assert calls["triton"] == (tmp_path / "m.onnx", tmp_path / "r", "nw-ucla")
    calls.clear()
    result = runner.invoke(app, args + ["--triton-name", "no good"])
    assert result.exit_code == 1 and "Triton model name 'no good'" in result.output
    assert calls == {}  # refused before the export ran
    result = runner.invoke(app, ["ck.pt", "--out", "m.onnx", "--triton-name", "x"])
    assert result.exit_code == 2
