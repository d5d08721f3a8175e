"""The torch Feature Map Decoder against a plain numpy computation of DESIGN section 4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restcn_training.decoder import FeatureMapDecoder, decode_layers, transition_layers
from restcn_training.res_tcn import ResTCN, ResTCNConfig

D = 12  # 2 bodies x 2 joints x 3


def tiny_model(seed: int = 0) -> ResTCN:
    torch.manual_seed(seed)
    config = ResTCNConfig(in_channels=D, num_classes=3, conv1_channels=4,
                          unit_channels=(4, 4, 4, 6, 6, 6, 8, 8, 8))
    model = ResTCN(config)
    model.set_mean(torch.randn(D))
    for m in model.modules():  # non-trivial BN statistics, so layers differ from each other
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def np_upsample(x: np.ndarray, n: int) -> np.ndarray:
    """``(T_in, C) -> (n, C)``: linear interpolation, half-pixel centres, edges clamped."""
    t_in = x.shape[0]
    out = np.empty((n, x.shape[1]), dtype=np.float64)
    for i in range(n):
        src = max((i + 0.5) * t_in / n - 0.5, 0.0)
        lo = min(int(np.floor(src)), t_in - 1)
        hi = min(lo + 1, t_in - 1)
        lam = src - lo
        out[i] = (1 - lam) * x[lo] + lam * x[hi]
    return out


def np_compressed(weight: torch.Tensor) -> np.ndarray:
    """Eq. 6 from the raw weight (N, C, f): taps f/2 - 1 and f/2 (0-based)."""
    w = weight.detach().double().numpy()
    f = w.shape[2]
    return w[:, :, 0] if f == 1 else (w[:, :, f // 2 - 1] + w[:, :, f // 2]) / 2


def np_decode(model: ResTCN, acts: list[np.ndarray], layer: int) -> np.ndarray:
    """DESIGN section 4 for one sample: ``acts[l-1]`` is ``X_l`` as ``(T_l, N_l)``; -> (T, D)."""
    w_hat_1 = np_compressed(model.trunk.conv1.weight)  # (64, D)
    mu = model.mean.double().numpy()
    w_hat_5, w_tilde_5 = (np_compressed(model.trunk.units[3].conv.weight),
                          np_compressed(model.trunk.units[3].shortcut.weight))
    w_hat_8, w_tilde_8 = (np_compressed(model.trunk.units[6].conv.weight),
                          np_compressed(model.trunk.units[6].shortcut.weight))
    x_l, x_5, x_8 = acts[layer - 1], acts[4], acts[7]
    t = acts[0].shape[0]
    if layer <= 4:
        x1 = x_l
    elif layer <= 7:
        x1 = np_upsample((x_l - x_5) @ w_hat_5 + x_5 @ w_tilde_5, t)
    else:
        x2 = np_upsample((x_l - x_8) @ w_hat_8 + x_8 @ w_tilde_8, x_5.shape[0])
        x1 = np_upsample((x2 - x_5) @ w_hat_5 + x_5 @ w_tilde_5, t)
    return x1 @ w_hat_1 + mu


def test_compressed_filter_is_mean_of_middle_taps():
    model = tiny_model()
    f = model.trunk.conv1.kernel_size[0]
    w = model.trunk.conv1.weight.detach().numpy()
    expected = (w[:, :, f // 2 - 1] + w[:, :, f // 2]) / 2  # taps 3 and 4 for f = 8
    np.testing.assert_allclose(model.trunk.conv1.compressed_filters().detach().numpy(), expected)
    decoder = FeatureMapDecoder(model, [5])
    np.testing.assert_allclose(decoder.w_hat_1.numpy(), expected)
    np.testing.assert_allclose(decoder.w_hat_5.numpy(),
                               np_compressed(model.trunk.units[3].conv.weight),
                               rtol=1e-6)


def test_transition_layers_of_res_tcn():
    assert transition_layers(tiny_model().trunk) == [5, 8]


@pytest.mark.parametrize("T", [7, 31, 33, 64])
def test_matches_numpy_for_every_layer(T):
    model = tiny_model()
    x = torch.randn(2, T, D)
    with torch.no_grad():
        acts = model.forward_layers(x)
        out = FeatureMapDecoder(model, range(1, 11))(acts, T)
    assert out.shape == (2, 10, T, D)
    assert [a.shape[-1] for a in acts] == [T] * 4 + [-(-T // 2)] * 3 + [-(-T // 4)] * 3
    for b in range(2):
        np_acts = [a[b].double().numpy().T for a in acts]  # (C_l, T_l) -> (T_l, C_l)
        for layer in range(1, 11):
            expected = np_decode(model, np_acts, layer)
            np.testing.assert_allclose(out[b, layer - 1].numpy(), expected, rtol=1e-4, atol=1e-4,
                                       err_msg=f"layer {layer}, T={T}")


def test_block_a_is_one_matrix_product():
    model = tiny_model(1)
    x = torch.randn(1, 9, D)
    with torch.no_grad():
        acts = model.forward_layers(x)
        out = decode_layers(model, x, [1, 3])
    w_hat_1 = np_compressed(model.trunk.conv1.weight)
    for i, layer in enumerate([1, 3]):
        expected = acts[layer - 1][0].double().numpy().T @ w_hat_1 + model.mean.double().numpy()
        np.testing.assert_allclose(out[0, i].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_decoder_is_linear_in_activations():
    model = tiny_model(2)
    decoder = FeatureMapDecoder(model, [1, 4, 6, 7, 9, 10])
    with torch.no_grad():
        acts_a = model.forward_layers(torch.randn(1, 31, D))
        acts_b = model.forward_layers(torch.randn(1, 31, D))
        mix = [2.5 * a - 0.7 * b for a, b in zip(acts_a, acts_b)]
        mu = decoder.mu
        lhs = decoder(mix, 31) - mu
        rhs = 2.5 * (decoder(acts_a, 31) - mu) - 0.7 * (decoder(acts_b, 31) - mu)
    torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-4)


def test_mean_added_back():
    """All-zero activations decode to the mean skeleton at every time step."""
    model = tiny_model(3)
    with torch.no_grad():
        acts = [torch.zeros_like(a) for a in model.forward_layers(torch.randn(1, 13, D))]
        out = FeatureMapDecoder(model, [2, 5, 10])(acts, 13)
    torch.testing.assert_close(out, model.mean.expand(1, 3, 13, D))


def test_layer_order_and_holds_copies():
    model = tiny_model(4)
    x = torch.randn(1, 17, D)
    both = decode_layers(model, x, [10, 2])
    torch.testing.assert_close(both[:, 0], decode_layers(model, x, [10])[:, 0])
    torch.testing.assert_close(both[:, 1], decode_layers(model, x, [2])[:, 0])
    decoder = FeatureMapDecoder(model, [1])
    with torch.no_grad():
        model.trunk.conv1.weight.zero_()
    assert decoder.w_hat_1.abs().sum() > 0


@pytest.mark.parametrize("layers", [[], [0], [11], [1, 12]])
def test_rejects_bad_layers(layers):
    with pytest.raises(ValueError, match="1..10"):
        FeatureMapDecoder(tiny_model(), layers)


def test_rejects_wrong_time():
    model = tiny_model()
    with torch.no_grad():
        acts = model.forward_layers(torch.randn(1, 10, D))
    with pytest.raises(ValueError, match="time=11"):
        FeatureMapDecoder(model, [1])(acts, 11)
