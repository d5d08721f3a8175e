"""The whole trunk in one 4-D layout: activations ``(B, C, T)`` carried as ``(B, C, 1, T)`` from
the first convolution to the pooling, with no per-conv ``Unsqueeze``/``Squeeze``.

:mod:`.conv_layout` runs each 1-D conv as a 2-D one and wraps it in ``Unsqueeze -> Conv ->
Squeeze``; the BatchNorm, ReLU and Add between two convs then run on 3-D tensors, and
onnxruntime leaves its blocked NCHWc layout after every conv and re-enters it before the next
(``ReorderOutput``/``ReorderInput`` kernels, ~8 % of the time at T=300). This pass gives every
tensor between a conv's ``Squeeze`` and the next ``Unsqueeze`` a 4-D twin, computed by the same
op on the 4-D inputs, for the ops that do not care about the extra axis of size 1:

- ``BatchNormalization`` (channel axis 1, per-channel parameters), ``Relu``, ``Identity``;
- ``Add``/``Sub``/``Mul`` of two twinned tensors, or of one and a constant of rank <= 1 (which
  broadcasts over time in both forms);
- ``Concat`` of twinned tensors along the channels (MS-Res-TCN's two streams before the head);
- ``ReduceMean`` over time (axis 2 or -1, ``keepdims=0``), which becomes a mean over axes 2, 3.

An ``Unsqueeze`` of a twinned tensor reads the twin instead. A 3-D tensor that something else
still reads (a graph output, an op not listed, the decoder head inside the ``If`` of
:mod:`.decoder_gate`) is made from its twin by one ``Squeeze``; a ``Squeeze`` that only the
decoder head needs is placed inside that branch, so it costs nothing when ``decode`` is false.
Every twin computes the same values in the same order: the pass is exact (export's parity
check covers it).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Ops whose 4-D twin is the same op on the twinned inputs (data inputs listed per op).
_ELEMENTWISE = {"Relu": (0,), "Identity": (0,), "BatchNormalization": (0,),
                "Add": (0, 1), "Sub": (0, 1), "Mul": (0, 1)}
#: Suffix of a 4-D twin's name (``add_36`` -> ``add_36__4d``).
TWIN_SUFFIX = "__4d"
_TIME_AXES = "trunk4d__time_axes"


def _const_ints(graph: onnx.GraphProto, name: str) -> list[int] | None:
    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).ravel()]
    return None


def _axes(graph: onnx.GraphProto, node: onnx.NodeProto) -> list[int] | None:
    """A ``Squeeze``/``Unsqueeze``/``ReduceMean`` node's constant axes (input or attribute)."""
    for attr in node.attribute:
        if attr.name == "axes":
            return list(attr.ints)
    return _const_ints(graph, node.input[1]) if len(node.input) > 1 and node.input[1] else None


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    return [g for attr in node.attribute
            for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs)]


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads from its enclosing scopes."""
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    reads: set[str] = set()
    for node in graph.node:
        reads.update(n for n in node.input if n and n not in defined)
        for sub in _subgraphs(node):
            reads.update(n for n in _outer_reads(sub) if n not in defined)
        defined.update(node.output)
    return reads


def _rename_reads(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        for sub in _subgraphs(node):
            _rename_reads(sub, renames)


def trunk_in_4d(proto: onnx.ModelProto) -> int:
    """Carry the trunk in 4-D (see the module docstring), in place; returns the number of
    ``Squeeze``/``Unsqueeze`` pairs removed. Run it after :func:`.conv_layout.conv1d_as_conv2d`.
    """
    graph = proto.graph
    ranks = {init.name: len(init.dims) for init in graph.initializer}
    twin: dict[str, str] = {}  # 3-D tensor -> its 4-D twin
    plan: list[tuple[str, onnx.NodeProto, onnx.NodeProto | None]] = []  # (kind, node, new)
    unsqueezed: dict[str, str] = {}  # an Unsqueeze's output -> the twin it reads instead
    for node in graph.node:
        op = node.op_type
        if op == "Squeeze" and _axes(graph, node) == [2]:
            twin[node.output[0]] = node.input[0]
            plan.append(("seed", node, None))
        elif op == "Unsqueeze" and node.input[0] in twin and _axes(graph, node) == [2]:
            unsqueezed[node.output[0]] = twin[node.input[0]]
            plan.append(("drop", node, None))
        elif op in _ELEMENTWISE and _twinnable(node, twin, ranks) or (
                op == "Concat" and _attr(node, "axis", 0) == 1
                and all(n in twin for n in node.input)):
            new = onnx.NodeProto()
            new.CopyFrom(node)
            data = _ELEMENTWISE.get(op, range(len(node.input)))
            new.input[:] = [twin.get(n, n) if i in data else n for i, n in enumerate(node.input)]
            new.output[:] = [f"{node.output[0]}{TWIN_SUFFIX}"]  # Dropout-like extras: none
            twin[node.output[0]] = new.output[0]
            plan.append(("twin", node, new))
        elif (op == "ReduceMean" and node.input[0] in twin and _attr(node, "keepdims", 1) == 0
              and _axes(graph, node) in ([2], [-1])):
            new = helper.make_node("ReduceMean", [twin[node.input[0]], _TIME_AXES],
                                   list(node.output), name=node.name, keepdims=0)
            plan.append(("keep", node, new))
        else:
            plan.append(("keep", node, None))
    if not unsqueezed:
        return 0

    # Who still reads each twinned 3-D tensor after the rewrite.
    kept = [new or node for kind, node, new in plan if kind == "keep"]
    main_reads = {n for node in kept for n in node.input}
    main_reads |= {o.name for o in graph.output}
    branch_reads = {n for node in kept for sub in _subgraphs(node) for n in _outer_reads(sub)}
    axes = _TIME_AXES + "__squeeze"

    def squeeze(name: str) -> onnx.NodeProto:
        return helper.make_node("Squeeze", [twin[name], axes], [name], name=f"{name}__squeeze")

    nodes: list[onnx.NodeProto] = []
    for kind, node, new in plan:
        if kind == "drop":
            continue
        if kind == "keep":
            nodes.append(new or node)
            continue
        if kind == "twin":
            nodes.append(new)
        if node.output[0] in main_reads:
            nodes.append(squeeze(node.output[0]))
    branch_only = sorted(n for n in branch_reads if n in twin and n not in main_reads)
    for node in nodes:  # the decoder head's Squeezes go inside the branch that reads them
        for sub in _subgraphs(node):
            needed = [n for n in branch_only if n in _outer_reads(sub)]
            if needed:
                body = [squeeze(n) for n in needed] + list(sub.node)
                del sub.node[:]
                sub.node.extend(body)
    del graph.node[:]
    graph.node.extend(nodes)
    _rename_reads(graph, unsqueezed)
    graph.initializer.extend([numpy_helper.from_array(np.array([2, 3], np.int64), _TIME_AXES),
                              numpy_helper.from_array(np.array([2], np.int64), axes)])
    # Shapes recorded for the 3-D tensors (and the 3-D weights conv_layout made 4-D) are stale.
    stale = set(twin) | {name for name in ranks}
    info = [v for v in graph.value_info if v.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(info)
    _drop_unused_initializers(graph)
    return len(unsqueezed)


def _twinnable(node: onnx.NodeProto, twin: dict[str, str], ranks: dict[str, int]) -> bool:
    """Whether every data input of ``node`` is twinned, or a constant of rank <= 1 beside one
    that is (a rank-1 constant broadcasts over the last axis, time, in both layouts)."""
    data = [node.input[i] for i in _ELEMENTWISE[node.op_type] if i < len(node.input)]
    if len(node.output) != 1 or not any(n in twin for n in data):
        return False
    return all(n in twin or ranks.get(n, 99) <= 1 for n in data)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {n for node in graph.node for n in node.input}
    used |= {n for node in graph.node for sub in _subgraphs(node) for n in _outer_reads(sub)}
    used |= {o.name for o in graph.output} | {i.name for i in graph.input}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
