"""The Feature Map Decoder inside the exported ONNX graph: dynamic time, parity with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from restcn_export.onnx_export import export_onnx  # noqa: E402
from restcn_infer.layouts import KINECT20  # noqa: E402
from restcn_infer.metadata import METADATA_KEY, ModelMetadata  # noqa: E402
from restcn_training.checkpoint import atomic_torch_save  # noqa: E402
from restcn_training.decoder import decode_layers  # noqa: E402
from restcn_training.res_tcn import ResTCN, ResTCNConfig  # noqa: E402

D = KINECT20.num_joints * 3  # one body


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random Res-TCN checkpoint (kinect20, 1 body) and the model it holds."""
    torch.manual_seed(0)
    config = ResTCNConfig(in_channels=D, num_classes=3, conv1_channels=8,
                          unit_channels=(8, 8, 8, 12, 12, 12, 16, 16, 16))
    model = ResTCN(config)
    model.set_mean(torch.randn(D))
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    atomic_torch_save({
        "format": 1, "architecture": "res-tcn", "config": config.to_dict(),
        "state_dict": model.state_dict(), "mean": model.mean.clone(),
        "classes": ["a", "b", "c"], "layout": "kinect20", "bodies": 1, "window": 32,
        "window_policy": "resample", "target_joints": [], "training": {}, "metrics": {},
    }, path)
    return path, model


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    path, _ = checkpoint
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(path, out)  # default decoder layers 1,4,7,10
    return out


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("T", [17, 31, 64, 300])
def test_decoded_matches_torch_at_any_length(checkpoint, exported, T):
    _, model = checkpoint
    x = np.random.default_rng(T).standard_normal((2, T, D)).astype(np.float32)
    (decoded,) = session(exported).run(["decoded"], {"skeleton": x})
    expected = decode_layers(model, torch.from_numpy(x), [1, 4, 7, 10]).numpy()
    assert decoded.shape == (2, 4, T, D)
    np.testing.assert_allclose(decoded, expected, rtol=1e-4, atol=1e-4)


def test_metadata_records_decoder_layers(exported):
    sess = session(exported)
    meta = ModelMetadata.from_json(sess.get_modelmeta().custom_metadata_map.get(METADATA_KEY))
    assert meta.decoder_layers == [1, 4, 7, 10]
    assert [o.name for o in sess.get_outputs()] == ["logits", "decoded"]


def test_upsampling_exports_as_resize(exported):
    """One ``Resize`` per block step (layer 7: one, layer 10: two), no gather decomposition."""
    import onnx

    graph = onnx.load(str(exported)).graph
    # The decoder head sits inside the If node that the optional 'decode' input drives.
    subgraph_ops = [inner.op_type for node in graph.node for attr in node.attribute
                    if attr.type == onnx.AttributeProto.GRAPH for inner in attr.g.node]
    ops = [node.op_type for node in graph.node] + subgraph_ops
    assert ops.count("Resize") == 3
    assert "GatherND" not in ops


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_decoder_keeps_time_dynamic_with_torchscript_exporter(checkpoint, tmp_path):
    """The export falls back to the TorchScript exporter; the decoder must stay dynamic there too
    (it upsamples with ``F.interpolate`` under tracing; see ``restcn_training.decoder.upsample``)."""
    from restcn_training.decoder import FeatureMapDecoder

    _, model = checkpoint

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.decoder = model, FeatureMapDecoder(model, [1, 6, 10])

        def forward(self, x):
            return self.decoder(self.model.forward_layers(x), x.shape[1])

    path = tmp_path / "head.onnx"
    with torch.no_grad():
        torch.onnx.export(Head().eval(), (torch.randn(2, 32, D),), str(path),
                          input_names=["skeleton"], output_names=["decoded"], dynamo=False,
                          dynamic_axes={"skeleton": {0: "batch", 1: "time"}})
    for T in (9, 45):
        x = np.random.default_rng(T).standard_normal((2, T, D)).astype(np.float32)
        (decoded,) = session(path).run(None, {"skeleton": x})
        expected = decode_layers(model, torch.from_numpy(x), [1, 6, 10]).numpy()
        np.testing.assert_allclose(decoded, expected, rtol=1e-4, atol=1e-4)
