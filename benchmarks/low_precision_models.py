"""Random-weight int8 and bf16 models for the benchmarks, made by the export's own passes,
quantizer and sealing, without its accuracy gate (random weights have no accuracy to keep, and
the cost does not depend on the weights). Calibration: the mean skeleton plus unit noise."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx

from restcn_export.onnx_export import seal
from restcn_export.passes.bn_as_conv import batchnorm_as_depthwise_conv
from restcn_export.quantize import quantize_int8
from restcn_infer.metadata import METADATA_KEY, ModelMetadata


def _metadata(proto: onnx.ModelProto) -> ModelMetadata:
    props = {p.key: p.value for p in proto.metadata_props}
    return ModelMetadata.from_json(props[METADATA_KEY])


def lowered_model(fp32_path: Path, precision: str, out: Path, windows: int = 32) -> Path:
    """``fp32_path`` (an fp32 export) as a sealed ``int8`` or ``bf16`` model at ``out``."""
    proto = onnx.load(str(fp32_path))
    meta = _metadata(proto)
    if precision == "int8":
        batchnorm_as_depthwise_conv(proto)
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save_model(proto, str(Path(tmp) / "bn.onnx"))
            spec = meta.spec
            rng = np.random.default_rng(0)
            calibration = (spec.mean_array + rng.standard_normal(
                (windows, spec.input.window, spec.input.D))).astype(np.float32)
            proto = quantize_int8(Path(tmp) / "bn.onnx", calibration)
    elif precision != "bf16":
        raise ValueError(f"precision {precision!r}: expected int8 or bf16")
    seal(proto, dataclasses.replace(meta, export={**meta.export, "precision": precision,
                                                  "benchmark": "random weights, ungated"}))
    onnx.save_model(proto, str(out))
    return out
