"""Make the ``decoded`` head of an exported graph cost nothing unless it is asked for.

onnxruntime executes every node of a graph whatever outputs the caller fetches, so a graph with
the Feature Map Decoder spends ~25% more time per classification (T=300, D=150) even when only
``logits`` is fetched (``benchmarks/decoder_cost.py``). This pass moves the nodes that only the
decoder needs into the ``then`` branch of an ``If`` node, driven by a new optional graph input::

    decode: bool scalar, default true (an initializer: callers may leave it out)
    decoded = If(decode, then: <decoder nodes>, else: zeros (batch, L, 0, D))

Callers that feed only ``skeleton`` get exactly the graph of DESIGN section 6; the runtime feeds
``decode=False`` when it wants logits only. The decoder nodes read the trunk's activations from
the outer scope, which ONNX subgraphs may do.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DECODE_INPUT = "decode"


def _producers(graph: onnx.GraphProto) -> dict[str, int]:
    return {out: i for i, node in enumerate(graph.node) for out in node.output}


def _ancestors(graph: onnx.GraphProto, names: list[str]) -> set[int]:
    """Indices of the nodes ``names`` depend on (subgraph outer-scope reads included)."""
    producers = _producers(graph)
    seen: set[int] = set()
    stack = [producers[n] for n in names if n in producers]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for name in _node_inputs(graph.node[i]):
            if name in producers:
                stack.append(producers[name])
    return seen


def _node_inputs(node: onnx.NodeProto) -> list[str]:
    names = [n for n in node.input if n]
    for attr in node.attribute:  # outer-scope values read by an If/Loop/Scan body
        for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
            for inner in sub.node:
                names.extend(_node_inputs(inner))
    return names


def gate_decoder(proto: onnx.ModelProto, output: str = "decoded") -> None:
    """Move the nodes only ``output`` needs under ``If(decode)``, in place (see module docs).

    A graph that already has the ``decode`` input is left as it is.
    """
    graph = proto.graph
    if any(i.name == DECODE_INPUT for i in graph.input):
        return
    outputs = {o.name: o for o in graph.output}
    others = [name for name in outputs if name != output]
    trunk = _ancestors(graph, others)
    head = sorted(_ancestors(graph, [output]) - trunk)  # graph order is topological
    head_nodes = [graph.node[i] for i in head]
    moved = {out for node in head_nodes for out in node.output}

    out_info = outputs[output]
    dims = out_info.type.tensor_type.shape.dim  # (batch, L, time, D)
    layers, d = dims[1].dim_value, dims[3].dim_value
    inner_out = f"{output}__full"
    for node in head_nodes:
        node.output[:] = [inner_out if o == output else o for o in node.output]
    then_branch = helper.make_graph(
        head_nodes, "decoder_head", [],
        [helper.make_tensor_value_info(inner_out, TensorProto.FLOAT, None)],
        value_info=[v for v in graph.value_info if v.name in moved])
    skeleton = graph.input[0].name
    else_branch = helper.make_graph(
        [
            helper.make_node("Shape", [skeleton], ["skip__batch"], start=0, end=1),
            helper.make_node("Concat", ["skip__batch", "skip__rest"], ["skip__shape"], axis=0),
            helper.make_node("ConstantOfShape", ["skip__shape"], [f"{output}__empty"],
                             value=numpy_helper.from_array(np.zeros(1, np.float32))),
        ],
        "decoder_skipped", [],
        [helper.make_tensor_value_info(f"{output}__empty", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array([layers, 0, d], np.int64), "skip__rest")])

    keep = [node for i, node in enumerate(graph.node) if i not in set(head)]
    gate = helper.make_node("If", [DECODE_INPUT], [output], name="decoder_gate",
                            then_branch=then_branch, else_branch=else_branch)
    del graph.node[:]
    graph.node.extend([*keep, gate])
    kept_info = [v for v in graph.value_info if v.name not in moved]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    dims[2].Clear()  # 'time' when decoding, 0 when skipped
    dims[2].dim_param = f"{output}_time"
    graph.input.append(helper.make_tensor_value_info(DECODE_INPUT, TensorProto.BOOL, []))
    graph.initializer.append(numpy_helper.from_array(np.array(True), DECODE_INPUT))
