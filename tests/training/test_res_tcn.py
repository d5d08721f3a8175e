"""Res-TCN: the original code's numbers (DESIGN section 3), Keras "same" padding, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from restcn_training.layers import SamePadConv1d
from restcn_training.res_tcn import ResTCN, ResTCNConfig

TINY = dict(conv1_channels=8, unit_channels=(8, 8, 8, 16, 16, 16, 32, 32, 32))


def keras_same_pads(t: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras "same": out = ceil(T/s), total = max((out-1)*s + k - T, 0), left = total//2."""
    out = math.ceil(t / stride)
    total = max((out - 1) * stride + kernel - t, 0)
    return total // 2, total - total // 2


def test_parameter_count_matches_the_original():
    model = ResTCN(ResTCNConfig(in_channels=150, num_classes=60))
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(1_874_492, abs=100)  # "about 1.87 M" (DESIGN section 3)


@pytest.mark.parametrize("t", [300, 37, 64, 1])
def test_layer_shapes(t: int):
    model = ResTCN(ResTCNConfig(in_channels=150, num_classes=60)).eval()
    with torch.no_grad():
        layers = model.forward_layers(torch.randn(2, t, 150))
        logits = model(torch.randn(2, t, 150))
    t2 = math.ceil(t / 2)
    t4 = math.ceil(t2 / 2)
    expected = [(64, t)] * 4 + [(128, t2)] * 3 + [(256, t4)] * 3
    assert [tuple(x.shape) for x in layers] == [(2, c, n) for c, n in expected]
    assert logits.shape == (2, 60)


@pytest.mark.parametrize("t", [9, 10, 75, 150, 1, 2])
@pytest.mark.parametrize(("kernel", "stride"), [(8, 1), (8, 2), (1, 1), (1, 2), (4, 2), (3, 1)])
def test_padding_equals_keras_same(kernel: int, stride: int, t: int):
    """Even kernels (and 1x1) at strides 1 and 2, odd kernels at stride 1: the rule's domain."""
    torch.manual_seed(0)
    conv = SamePadConv1d(5, 4, kernel, stride=stride)
    x = torch.randn(3, 5, t)
    left, right = keras_same_pads(t, kernel, stride)
    if stride == 1:
        assert conv.pads == (left, right)  # (3, 4) for k = 8
    reference = F.conv1d(F.pad(x, (left, right)), conv.weight, conv.bias, stride=stride)
    with torch.no_grad():
        ours = conv(x)
    assert ours.shape == (3, 4, math.ceil(t / stride))
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_keras_pads_for_the_original_kernel():
    assert keras_same_pads(300, 8, 1) == (3, 4)
    assert keras_same_pads(300, 8, 2) == (3, 3)  # our (3, 4) reads the extra zero never
    assert keras_same_pads(75, 8, 2) == (3, 4)


@pytest.mark.parametrize("kernel", [3, 5])
def test_odd_strided_kernels_are_refused_not_silently_mispadded(kernel):
    from restcn_training.layers import SamePadConv1d

    with pytest.raises(ValueError, match="even kernels"):
        SamePadConv1d(4, 4, kernel, stride=2)
    assert SamePadConv1d(4, 4, kernel, stride=1).pads == keras_same_pads(10, kernel, 1)
