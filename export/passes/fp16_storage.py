"""float16 weight storage (half the file), float32 compute.

The torch weights are rounded to float16 *before* export (:func:`round_to_fp16`), so the graph
holds exactly the values the float16 file stores and the parity check stays exact;
:func:`store_fp16` then stores those initializers as float16 with a ``Cast`` back, which
onnxruntime folds when it loads the model.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn


def round_to_fp16(model: nn.Module) -> None:
    """Round every float parameter and buffer to the nearest float16 value (kept as float32)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def store_fp16(proto: onnx.ModelProto) -> int:
    """Store float32 initializers as float16 + a ``Cast`` back where that loses nothing (and
    the tensor is not tiny); returns how many were converted."""
    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.size < 16 or not np.array_equal(half.astype(np.float32), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}__cast"))
    nodes = casts + list(graph.node)  # casts first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)
