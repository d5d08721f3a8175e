"""Make the diagnosis heads of an exported graph (``decoded``, ``responses``) cost nothing unless
they are asked for.

onnxruntime executes every node of a graph whatever outputs the caller fetches, so a graph with
the Feature Map Decoder spends ~25% more time per classification (T=300, D=150) even when only
``logits`` is fetched (``benchmarks/decoder_cost.py``). This pass moves the nodes that only those
outputs need into the ``then`` branch of one ``If`` node, driven by a new optional graph input::

    decode: bool scalar, default true (an initializer: callers may leave it out)
    decoded, responses = If(decode, then: <their nodes>,
                            else: zeros (batch, L, 0, D), zeros (batch, N, 0))

Callers that feed only ``skeleton`` get exactly the graph of DESIGN section 6; the runtime feeds
``decode=False`` when it wants logits only. The decoder nodes read the trunk's activations from
the outer scope, which ONNX subgraphs may do.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from restcn_export.passes.graph_walk import ancestors

DECODE_INPUT = "decode"


def gate_decoder(proto: onnx.ModelProto, outputs: tuple[str, ...] = ("decoded",)) -> None:
    """Move the nodes only ``outputs`` need under one ``If(decode)``, in place (see module docs).

    Each gated output's skipped form keeps its static dims and has 0 where the graph's shape is
    dynamic (time), e.g. ``decoded (batch, L, 0, D)``, ``responses (batch, N, 0)``. A graph
    that already has the ``decode`` input is left as it is.
    """
    graph = proto.graph
    if any(i.name == DECODE_INPUT for i in graph.input):
        return
    by_name = {o.name: o for o in graph.output}
    gated = [name for name in outputs if name in by_name]
    others = [name for name in by_name if name not in gated]
    trunk = ancestors(graph, others)
    head = sorted(ancestors(graph, gated) - trunk)  # graph order is topological
    head_nodes = [graph.node[i] for i in head]
    moved = {out for node in head_nodes for out in node.output}

    inner = {name: f"{name}__full" for name in gated}
    for node in head_nodes:
        node.output[:] = [inner.get(o, o) for o in node.output]
    then_branch = helper.make_graph(
        head_nodes, "diagnosis_heads", [],
        [helper.make_tensor_value_info(inner[name], TensorProto.FLOAT, None) for name in gated],
        value_info=[v for v in graph.value_info if v.name in moved])
    skeleton = graph.input[0].name
    empty_nodes, empty_outputs, rests = [
        helper.make_node("Shape", [skeleton], ["skip__batch"], start=0, end=1)], [], []
    for name in gated:
        dims = by_name[name].type.tensor_type.shape.dim  # (batch, ...)
        rest = [d.dim_value if d.HasField("dim_value") else 0 for d in dims[1:]]
        rests.append(numpy_helper.from_array(np.array(rest, np.int64), f"skip__{name}_rest"))
        empty_nodes += [
            helper.make_node("Concat", ["skip__batch", f"skip__{name}_rest"],
                             [f"skip__{name}_shape"], axis=0),
            helper.make_node("ConstantOfShape", [f"skip__{name}_shape"], [f"{name}__empty"],
                             value=numpy_helper.from_array(np.zeros(1, np.float32))),
        ]
        empty_outputs.append(helper.make_tensor_value_info(f"{name}__empty", TensorProto.FLOAT,
                                                           None))
    else_branch = helper.make_graph(empty_nodes, "diagnosis_skipped", [], empty_outputs,
                                    initializer=rests)

    keep = [node for i, node in enumerate(graph.node) if i not in set(head)]
    gate = helper.make_node("If", [DECODE_INPUT], gated, name="decoder_gate",
                            then_branch=then_branch, else_branch=else_branch)
    del graph.node[:]
    graph.node.extend([*keep, gate])
    kept_info = [v for v in graph.value_info if v.name not in moved]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    for name in gated:  # the time axis: its length when computed, 0 when skipped
        for i, dim in enumerate(by_name[name].type.tensor_type.shape.dim[1:], start=1):
            if not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_param = f"{name}_dim{i}"
    graph.input.append(helper.make_tensor_value_info(DECODE_INPUT, TensorProto.BOOL, []))
    graph.initializer.append(numpy_helper.from_array(np.array(True), DECODE_INPUT))
