"""The graph passes behind the fast CPU graphs: the whole trunk in one 4-D layout (exact, no
per-conv Unsqueeze/Squeeze left) and BatchNorm as a depthwise conv (float rounding only), for
every registered model."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from restcn_export.passes.bn_as_conv import batchnorm_as_depthwise_conv  # noqa: E402
from restcn_export.passes.trunk_layout import trunk_in_4d  # noqa: E402
from restcn_training.registry import model_names  # noqa: E402


def run(proto, x, decode=True):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {"skeleton": x, "decode": np.array(decode)})


@pytest.mark.parametrize("architecture", model_names())
def test_the_exported_trunk_has_one_layout_and_valid_shapes(tiny_export, architecture):
    proto = onnx.load(str(tiny_export(architecture)))
    ops = [node.op_type for node in proto.graph.node]
    convs = ops.count("Conv")
    assert "Squeeze" not in ops and ops.count("Unsqueeze") <= 2 < convs  # one per stream input
    onnx.shape_inference.infer_shapes(proto, strict_mode=True)  # no stale 3-D shapes left


@pytest.mark.parametrize("architecture", model_names())
def test_batchnorm_as_depthwise_conv_changes_only_rounding(tiny_export, architecture):
    proto = onnx.load(str(tiny_export(architecture)))
    x = np.random.default_rng(0).normal(size=(2, 23, 60)).astype(np.float32)
    before = run(proto, x)
    assert batchnorm_as_depthwise_conv(proto) > 0
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node if n.output[0]
                                        .endswith("__4d")}
    for got, want in zip(run(proto, x), before):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_a_graph_without_conv_wrappers_is_left_alone():
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    proto = helper.make_model(graph)
    assert trunk_in_4d(proto) == 0 and [n.op_type for n in proto.graph.node] == ["Relu"]
