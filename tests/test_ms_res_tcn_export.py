"""MS-Res-TCN through restcn-export: parity with torch (dynamic batch and time), metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from restcn_export.onnx_export import export_onnx  # noqa: E402
from restcn_infer.layouts import KINECT20  # noqa: E402
from restcn_infer.metadata import METADATA_KEY  # noqa: E402
from restcn_training.checkpoint import atomic_torch_save  # noqa: E402
from restcn_training.decoder import decode_layers  # noqa: E402
from restcn_training.ms_res_tcn import MSResTCN, MSResTCNConfig  # noqa: E402

BODIES = 2
D = BODIES * KINECT20.num_joints * 3
HANDS = list(KINECT20.groups["hands"])
LAYERS = [1, 4, 7, 10]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny random MS-Res-TCN checkpoint, exported with the decoder head; (onnx path, model)."""
    torch.manual_seed(0)
    config = MSResTCNConfig(in_channels=D, num_classes=4, conv1_channels=8,
                            unit_channels=(8, 8, 8, 12, 12, 12, 16, 16, 16),
                            num_joints=KINECT20.num_joints, bodies=BODIES, target_joints=HANDS)
    model = MSResTCN(config)
    model.set_mean(torch.randn(D))
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)):
        bn.running_mean.uniform_(-0.5, 0.5)  # a trained-looking head, not the identity
        bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    root = tmp_path_factory.mktemp("ms")
    atomic_torch_save({
        "format": 1, "architecture": "ms-res-tcn", "config": config.to_dict(),
        "state_dict": model.state_dict(), "mean": model.mean.clone(),
        "classes": ["a", "b", "c", "d"], "layout": "kinect20", "bodies": BODIES, "window": 24,
        "window_policy": "resample", "target_joints": HANDS, "training": {}, "metrics": {},
    }, root / "ms.pt")
    report = export_onnx(root / "ms.pt", root / "ms.onnx", decoder_layers=LAYERS)
    assert max(report.max_abs_diff.values()) < 1e-4
    return report.path, model


@pytest.mark.parametrize("batch,T", [(1, 9), (3, 24), (2, 57)])
def test_onnx_matches_torch_any_batch_and_length(exported, batch, T):
    path, model = exported
    x = np.random.default_rng(T).standard_normal((batch, T, D)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, decoded = sess.run(["logits", "decoded"], {"skeleton": x})
    with torch.no_grad():
        expected_logits = model(torch.from_numpy(x)).numpy()
        # The decoder head decodes the MAIN stream (its layers include the pipes' input).
        expected_decoded = decode_layers(model, torch.from_numpy(x), LAYERS).numpy()
    assert logits.shape == (batch, 4) and decoded.shape == (batch, len(LAYERS), T, D)
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(decoded, expected_decoded, rtol=1e-4, atol=1e-4)


def test_metadata_names_architecture_and_targeted_joints(exported):
    import onnx

    proto = onnx.load(str(exported[0]))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert meta["architecture"] == "ms-res-tcn"
    assert meta["target_joints"] == HANDS
    assert meta["decoder_layers"] == LAYERS
