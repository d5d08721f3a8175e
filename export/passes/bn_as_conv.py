"""BatchNormalization of the 4-D trunk as a depthwise 1x1 ``Conv``, for int8 graphs.

Res-TCN's units are pre-activation (``X_l = X_{l-1} + Conv(ReLU(BN(X_{l-1})))``): every BN reads
a residual sum that the shortcut reads too, so no BN can be folded into a neighbouring conv's
weights exactly. In float32 that costs nothing (onnxruntime runs BN as one fused affine kernel,
~0.3 % of the time). In an int8 graph it does: BN has no integer kernel, so each unit would
dequantize, normalise in float32, and quantize again, with layout transposes around it for the
channels-last int8 convs (15 % of the time measured by ``benchmarks/infer_latency.py``). As a
depthwise conv ``y = a * x + b`` per channel (``a = gamma / sqrt(var + eps)``,
``b = beta - mean * a``) it becomes one more integer conv, and the ReLU after it folds into its
quantized output. In float32 the rewrite changes only rounding (~1e-7 relative): export's parity
check covers it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from restcn_export.passes.trunk_layout import TWIN_SUFFIX


def batchnorm_as_depthwise_conv(proto: onnx.ModelProto) -> int:
    """Rewrite every BatchNormalization of the 4-D trunk (:mod:`.trunk_layout`'s twins) with
    constant parameters, in place; returns how many."""
    graph = proto.graph
    inits = {init.name: init for init in graph.initializer}
    nodes, added, count = [], [], 0
    for node in graph.node:
        params = node.input[1:5]
        if (node.op_type != "BatchNormalization" or not node.output[0].endswith(TWIN_SUFFIX)
                or len(node.output) != 1 or not all(p in inits for p in params)):
            nodes.append(node)
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(inits[p]).astype(np.float64)
                                  for p in params)
        eps = next((attr.f for attr in node.attribute if attr.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)  # (C,)
        shift = beta - mean * scale  # (C,)
        channels = len(scale)
        weight, bias = f"{node.output[0]}__dw_weight", f"{node.output[0]}__dw_bias"
        added += [numpy_helper.from_array(scale.astype(np.float32).reshape(channels, 1, 1, 1),
                                          weight),  # (C, 1, 1, 1): one tap per channel
                  numpy_helper.from_array(shift.astype(np.float32), bias)]
        nodes.append(helper.make_node("Conv", [node.input[0], weight, bias], list(node.output),
                                      name=node.name or f"{node.output[0]}__dw",
                                      group=channels, kernel_shape=[1, 1]))
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(added)
    return count
