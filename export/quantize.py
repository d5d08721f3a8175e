"""int8 graphs: onnxruntime's static quantization (``quantize_static``, QDQ format), no
hand-written quantizer.

What gets quantized (:data:`QUANTIZED_OPS`): every ``Conv`` (the trunk's BatchNorms are
depthwise convs by then, :mod:`.passes.bn_as_conv`), ``Add`` and ``Relu`` — weights int8
per output channel (symmetric), activations uint8 per tensor, ranges from min/max over the
calibration windows (:mod:`.calibration`). So each residual unit is ``QLinearConv (BN+ReLU) ->
QLinearConv -> QLinearAdd`` once onnxruntime has fused the Q/DQ pairs, all integer and
channels-last with no transposes between units. What stays float32: the mean subtraction at the
input, the classifier head after the last unit (BN, ReLU, mean over time, linear: 0.1 % of the
time) and the diagnosis heads inside the decoder ``If``: the Feature Map Decoder reads the
dequantized int8 activations (:func:`dequantize_branch_reads`), so ``decoded`` is the decoder of
exactly the activations the int8 classifier used, computed in float32; ``filters`` stays the
float32 weights.

One exception: an ``Add`` that reads a ``Relu`` (MS-Res-TCN's pipes, ``X + F + ReLU(P X')``)
stays float32, because onnxruntime 1.31 aborts the whole process (a C++ assertion, not an
exception) when it fuses the QDQ form of that pattern. Since an abort cannot be caught, every
int8 graph is loaded once in a child process before it is accepted (:func:`check_loads`).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from restcn_export.errors import ExportError
from restcn_export.passes.decoder_gate import DECODE_INPUT

#: The op types quantize_static quantizes.
QUANTIZED_OPS = ("Conv", "Add", "Relu")
#: Windows per calibration batch.
CALIBRATION_BATCH = 16


def quantize_int8(fp32_path: Path, calibration: np.ndarray) -> onnx.ModelProto:
    """The int8 QDQ graph of the float32 model at ``fp32_path``, calibrated on
    ``calibration (N, window, D)``.

    Raises:
        ExportError: onnxruntime's quantization tooling fails on the graph.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    graph = onnx.load(str(fp32_path)).graph
    has_decode = any(i.name == DECODE_INPUT for i in graph.input)
    produced_by = {out: node.op_type for node in graph.node for out in node.output}
    relu_adds = [node.name for node in graph.node if node.op_type == "Add"
                 and any(produced_by.get(name) == "Relu" for name in node.input)]

    class Windows(CalibrationDataReader):
        def __init__(self) -> None:
            batches = [calibration[i:i + CALIBRATION_BATCH]
                       for i in range(0, len(calibration), CALIBRATION_BATCH)]
            self._feeds = iter([{"skeleton": b, **({DECODE_INPUT: np.array(False)}
                                                    if has_decode else {})} for b in batches])

        def get_next(self):
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory(prefix="restcn-int8-") as tmp, _quiet():
        out = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                str(fp32_path), str(out), Windows(), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=relu_adds,
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
        except Exception as exc:  # the tooling raises many types (onnx, onnxruntime, numpy)
            raise ExportError(f"onnxruntime's static quantization failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        proto = onnx.load(str(out))
        dequantize_branch_reads(proto)
        onnx.save_model(proto, str(out))
        check_loads(out)
    return proto


def check_loads(path: Path) -> None:
    """Create an onnxruntime session (all optimisations, as the runtime does) on ``path`` in a
    child process.

    Raises:
        ExportError: the child failed or was killed (onnxruntime aborted on the graph).
    """
    code = ("import sys, onnxruntime as ort; o = ort.SessionOptions(); o.log_severity_level = 3; "
            "ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ExportError(f"onnxruntime cannot load the int8 graph ({detail[:300]}); nothing "
                          "written")


def dequantize_branch_reads(proto: onnx.ModelProto) -> int:
    """Let the decoder ``If``'s branches read the int8 activations, dequantized inside the
    branch, instead of the float32 tensors before their ``QuantizeLinear``; returns how many.

    A float32 tensor read both by a ``QuantizeLinear`` and from inside a branch keeps its
    producer in float32: onnxruntime cannot fuse ``Conv -> Q`` or ``Add -> Q`` into an integer
    kernel when something else reads the float32 result. With the read moved, every such
    producer fuses, and the dequantization runs only when the branch does (``decode=true``).
    """
    graph = proto.graph
    quantized = {node.input[0]: node for node in graph.node if node.op_type == "QuantizeLinear"}
    count = 0
    for node in graph.node:
        for attr in node.attribute:
            branches = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for branch in branches:
                defined = {o for inner in branch.node for o in inner.output}
                reads = sorted({n for inner in branch.node for n in inner.input
                                if n and n not in defined and n in quantized})
                renames, heads = {}, []
                for name in reads:
                    q = quantized[name]
                    renames[name] = f"{name}__dequantized"
                    heads.append(helper.make_node("DequantizeLinear", [q.output[0], *q.input[1:]],
                                                  [renames[name]], name=f"{name}__branch_dq"))
                for inner in branch.node:
                    inner.input[:] = [renames.get(n, n) for n in inner.input]
                body = heads + list(branch.node)
                del branch.node[:]
                branch.node.extend(body)
                count += len(heads)
    if count:
        _sort_topologically(graph)
    return count


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Order ``graph``'s nodes so each follows the producers of everything it reads, its
    branches' outer-scope reads included (a branch may now read a ``QuantizeLinear`` output
    that the quantizer appended after it)."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}

    def reads(node: onnx.NodeProto) -> set[str]:
        names = {n for n in node.input if n}
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                for inner in sub.node:
                    names |= reads(inner)
        return names

    order, placed, visiting = [], set(), set()

    def place(i: int) -> None:
        if i in placed or i in visiting:
            return
        visiting.add(i)
        for name in reads(graph.node[i]):
            if name in producer and producer[name] != i:
                place(producer[name])
        visiting.discard(i)
        placed.add(i)
        order.append(graph.node[i])

    for i in range(len(graph.node)):
        place(i)
    nodes = [onnx.NodeProto() for _ in order]
    for new, old in zip(nodes, order):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(nodes)


@contextlib.contextmanager
def _quiet():
    """The quantization tooling logs warnings through the root logger ("Please consider
    pre-processing before quantization") and onnxruntime's default logger; a library does not
    print."""
    import onnxruntime as ort

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)  # its calibration sessions warn about the decode input
    try:
        yield
    finally:
        root.setLevel(level)
        ort.set_default_logger_severity(2)
