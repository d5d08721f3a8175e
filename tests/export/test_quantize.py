"""Lower-precision export: int8 (onnxruntime static QDQ) and bf16 (OpenVINO) models within their
documented tolerances of float32, the accuracy gate refusing a bad calibration and writing
nothing, clear errors without calibration data, and the export facts in the metadata."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from helpers import write_checkpoint, write_tiny_pyskl  # noqa: E402
from restcn_export import calibration as calibration_module  # noqa: E402
from restcn_export.calibration import GateData, gate_data  # noqa: E402
from restcn_export.errors import ExportError  # noqa: E402
from restcn_export.low_precision import lower_precision  # noqa: E402
from restcn_export.onnx_export import export_onnx  # noqa: E402
from restcn_export.parity import relative_rms  # noqa: E402
from restcn_export.precision_gate import DECODED_TOLERANCE, LOGITS_TOLERANCE  # noqa: E402
from restcn_export.quantize import quantize_int8  # noqa: E402
from restcn_infer.classifier import Classifier  # noqa: E402
from restcn_infer.metadata import ModelMetadata  # noqa: E402
from restcn_training.checkpoint import Checkpoint  # noqa: E402
from restcn_training.registry import model_names  # noqa: E402

TINY_CLASSES = ["class_0", "class_1", "class_2"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_pyskl(tmp_path_factory.mktemp("calib") / "tiny.pkl", per_class=30)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", classes=TINY_CLASSES)


@pytest.fixture(scope="module")
def int8_report(tmp_path_factory, tiny_ckpt, tiny_data):
    return export_onnx(tiny_ckpt, tmp_path_factory.mktemp("int8") / "tiny_int8.onnx",
                       precision="int8", calibration=tiny_data)


def session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_int8_export_stays_within_its_tolerances_and_says_how_it_was_made(int8_report,
                                                                           tiny_data):
    gate = int8_report.gate
    assert gate["logits_relative_error"] <= LOGITS_TOLERANCE
    assert gate["decoded_relative_error"] <= DECODED_TOLERANCE
    assert set(gate["accuracy"]) == {"fp32", "int8"}
    export = ModelMetadata.from_props(
        session(int8_report.path).get_modelmeta().custom_metadata_map).export
    assert export["precision"] == "int8"
    assert export["calibration"]["data"] == str(tiny_data)
    assert export["calibration"]["split"] == "train" and export["calibration"]["windows"] > 0
    assert "holdout of train" in export["calibration"]["validation"]
    assert export["quantization"]["format"] == "QDQ"
    assert export["gate"]["accuracy"] == gate["accuracy"]
    assert export["gate"]["max_accuracy_drop"] == 0.005


def test_int8_graph_is_integer_and_serves_through_the_classifier(int8_report):
    graph = onnx.load(str(int8_report.path)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") > 10 and "BatchNormalization" not in ops
    assert "Squeeze" not in ops  # the trunk is in one 4-D layout; the decoder's are in the If
    clf = Classifier(int8_report.path, device="cpu")
    assert clf.weights_verified
    x = np.broadcast_to(clf.spec.mean_array, (2, clf.spec.input.window, clf.spec.input.D))
    logits, decoded = clf.run(x + 0.1, decode=True)
    assert logits.shape == (2, len(TINY_CLASSES)) and decoded.shape[:2] == (2, 4)


@pytest.mark.parametrize("architecture", model_names())
def test_every_architecture_quantizes_within_tolerance(tmp_path, architecture, tiny_data):
    ckpt = write_checkpoint(tmp_path / "tiny.pt", architecture, classes=TINY_CLASSES)
    fp32 = export_onnx(ckpt, tmp_path / "fp32.onnx").path
    data = gate_data(Checkpoint.load(ckpt).spec, tiny_data)
    proto = quantize_int8(fp32, data.calibration)
    onnx.save_model(proto, str(tmp_path / "int8.onnx"))
    feed = {"skeleton": data.validation, "decode": np.array(False)}
    want = session(fp32).run(["logits"], feed)[0]
    got = session(tmp_path / "int8.onnx").run(["logits"], feed)[0]
    assert relative_rms(got, want) <= LOGITS_TOLERANCE


def test_the_gate_refuses_a_bad_calibration_and_writes_nothing(tmp_path, tiny_ckpt, tiny_data,
                                                               monkeypatch):
    spec = Checkpoint.load(tiny_ckpt).spec
    good = gate_data(spec, tiny_data)
    fp32 = export_onnx(tiny_ckpt, tmp_path / "fp32.onnx").path
    # Labels = float32's own answers: float32 scores 1.0, so any damage shows.
    labels = session(fp32).run(["logits"], {"skeleton": good.validation,
                                            "decode": np.array(False)})[0].argmax(1)
    bad = GateData(calibration=good.calibration * 1e-3, validation=good.validation,
                   labels=labels, facts=good.facts)  # ranges 1000x too small: saturation
    monkeypatch.setattr(calibration_module, "gate_data", lambda *args, **kwargs: bad)
    out = tmp_path / "int8.onnx"
    with pytest.raises(ExportError, match=r"int8 accuracy 0\.\d+ is more than 0\.5 points "
                                          r"below fp32 1\.0000"):
        export_onnx(tiny_ckpt, out, precision="int8")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx"]


def test_without_calibration_data_the_error_says_what_to_pass(tmp_path, tiny_ckpt):
    # The tiny checkpoint names its training data "tiny", which does not exist here.
    with pytest.raises(ExportError, match="pass --calibration"):
        export_onnx(tiny_ckpt, tmp_path / "m.onnx", precision="int8")
    ckpt = Checkpoint.load(tiny_ckpt)
    anonymous = Checkpoint(dataclasses.replace(ckpt.spec, training={}), ckpt.state_dict)
    with pytest.raises(ExportError, match="does not name its training data"):
        export_onnx(anonymous, tmp_path / "m.onnx", precision="int8")
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_calibration_split_lists_the_splits(tiny_ckpt, tiny_data):
    with pytest.raises(ExportError, match="available: train, val"):
        gate_data(Checkpoint.load(tiny_ckpt).spec, tiny_data, "nope")


def test_a_run_trained_with_a_holdout_is_validated_on_that_holdout(tiny_ckpt, tiny_data):
    spec = Checkpoint.load(tiny_ckpt).spec
    spec = dataclasses.replace(spec, training={
        "data": str(tiny_data), "train_split": "train", "val_split": "holdout of train",
        "recipe": {"holdout_match": "^c[01]_s0$", "holdout_fraction": 0.0}})
    data = gate_data(spec)
    assert data.facts["validation"].startswith("the run's validation holdout")
    assert data.facts["validation_sequences"] == 2  # c0_s0 and c1_s0
    assert data.facts["split"] == "train" and data.facts["data"] == str(tiny_data)


def test_bf16_export_is_gated_through_openvino(tmp_path, tiny_ckpt, tiny_data):
    pytest.importorskip("openvino")
    report = export_onnx(tiny_ckpt, tmp_path / "bf16.onnx", precision="bf16",
                         calibration=tiny_data)
    export = report.metadata.export
    assert export["precision"] == "bf16" and "OpenVINO" in export["compute"]
    assert report.gate["logits_relative_error"] <= LOGITS_TOLERANCE
    assert report.gate["decoded_relative_error"] <= DECODED_TOLERANCE
    # The file is the float32 graph: onnxruntime runs it as exactly as the fp32 export.
    assert "QuantizeLinear" not in {n.op_type for n in onnx.load(str(report.path)).graph.node}


def test_lower_precision_refuses_other_precisions(tmp_path, tiny_ckpt, tiny_data):
    fp32 = export_onnx(tiny_ckpt, tmp_path / "fp32.onnx")
    data = gate_data(Checkpoint.load(tiny_ckpt).spec, tiny_data)
    with pytest.raises(ExportError, match="not lowered"):
        lower_precision(fp32.path, "fp16", fp32.metadata, data)
