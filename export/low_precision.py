"""int8 and bf16 exports: the parity-checked float32 graph, lowered and gated.

``int8``: the float32 graph quantized by onnxruntime's tooling (:mod:`.quantize`), run by
onnxruntime. ``bf16``: the float32 graph itself, run by OpenVINO with bf16 arithmetic
(:mod:`restcn_infer.openvino_session`; the file stays float32, so onnxruntime runs it exactly).
Either is written only if the accuracy gate (:mod:`.precision_gate`) passes on the validation
windows (:mod:`.calibration`); what was measured goes into the metadata's export facts::

    "precision": "int8",
    "calibration": {"data", "split", "windows", "validation", "validation_sequences"},
    "quantization": {"tool", "format", "weights", "activations", "method", "ops"},   (int8)
    "compute": "OpenVINO bf16 inference precision",                                  (bf16)
    "gate": {"accuracy": {"fp32", "int8"}, "top1_agreement", "logits_relative_error",
             "decoded_relative_error", "max_accuracy_drop"}
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import onnx

from restcn_export.calibration import GateData
from restcn_export.errors import ExportError
from restcn_export.passes.decoder_gate import DECODE_INPUT
from restcn_export.precision_gate import MAX_ACCURACY_DROP, gate
from restcn_export.quantize import QUANTIZED_OPS, quantize_int8
from restcn_infer.metadata import ModelMetadata

#: Precisions whose arithmetic differs from float32 (gated); fp16 is storage only (exact).
GATED_PRECISIONS = ("int8", "bf16")


def lower_precision(path: Path, precision: str, meta: ModelMetadata,
                    data: GateData) -> tuple[onnx.ModelProto, ModelMetadata, dict[str, Any]]:
    """The ``precision`` model of the float32 model at ``path``, its metadata (not yet sealed)
    and the gate's figures.

    Raises:
        ExportError: the gate refuses the model, or quantization fails.
        MissingDependencyError: ``bf16`` without the openvino package.
    """
    import onnxruntime as ort

    from restcn_infer.openvino_session import OpenVINOSession

    if precision not in GATED_PRECISIONS:
        raise ExportError(f"precision {precision!r} is not lowered; expected one of "
                          f"{GATED_PRECISIONS}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    fp32 = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    export = {**meta.export, "precision": precision, "calibration": data.facts}
    if precision == "int8":
        proto = quantize_int8(path, data.calibration)
        with tempfile.TemporaryDirectory(prefix="restcn-int8-") as tmp:
            onnx.save_model(proto, str(Path(tmp) / "int8.onnx"))
            low = ort.InferenceSession(str(Path(tmp) / "int8.onnx"), options,
                                       providers=["CPUExecutionProvider"])
        export["quantization"] = {
            "tool": f"onnxruntime {ort.__version__} quantize_static", "format": "QDQ",
            "weights": "int8, per output channel, symmetric",
            "activations": "uint8, per tensor", "method": "minmax", "ops": list(QUANTIZED_OPS)}
    else:
        proto = onnx.load(str(path))
        low = OpenVINOSession(path.read_bytes(), fp32, precision="bf16", source=str(path))
        export["compute"] = "OpenVINO bf16 inference precision"
    gated = any(i.name == DECODE_INPUT for i in fp32.get_overridable_initializers())
    facts = gate(fp32, low, data, precision, mean=meta.spec.mean_array,
                 decoder=bool(meta.decoder_layers), gated=gated)
    export["gate"] = {**facts, "max_accuracy_drop": MAX_ACCURACY_DROP}
    return proto, dataclasses.replace(meta, export=export), facts
