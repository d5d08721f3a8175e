"""Walking an ONNX graph backwards: which nodes a set of tensors depends on. Shared by the
decoder gate (what only the gated outputs need) and the Triton export (what a pruned graph
keeps)."""

from __future__ import annotations

import onnx


def node_inputs(node: onnx.NodeProto) -> list[str]:
    """The tensors ``node`` reads, including outer-scope values read by an If/Loop/Scan body."""
    names = [n for n in node.input if n]
    for attr in node.attribute:
        for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
            for inner in sub.node:
                names.extend(node_inputs(inner))
    return names


def ancestors(graph: onnx.GraphProto, names: list[str]) -> set[int]:
    """Indices of the nodes of ``graph`` that the tensors ``names`` depend on."""
    producers = {out: i for i, node in enumerate(graph.node) for out in node.output}
    seen: set[int] = set()
    stack = [producers[n] for n in names if n in producers]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        stack.extend(producers[n] for n in node_inputs(graph.node[i]) if n in producers)
    return seen
