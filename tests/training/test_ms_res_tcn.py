"""MS-Res-TCN: pipe order (DESIGN section 5), the TA input, gradient flow, shapes, registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restcn_infer.layouts import KINECT20
from restcn_training.layers import SamePadConv1d
from restcn_training.ms_res_tcn import MSResTCN, MSResTCNConfig
from restcn_training.res_tcn import ResTCN, ResTCNConfig

V, M = KINECT20.num_joints, 2
D = M * V * 3
HANDS = KINECT20.groups["hands"]
TINY = dict(in_channels=D, num_classes=5, kernel_size=4, conv1_channels=4,
            unit_channels=(4, 4, 4, 8, 8, 8, 16, 16, 16))


def tiny(**overrides) -> MSResTCN:
    torch.manual_seed(0)
    config = MSResTCNConfig(**{**TINY, "num_joints": V, "bodies": M, "target_joints": HANDS,
                               **overrides})
    model = MSResTCN(config)
    # Non-trivial BN statistics and mean, so no layer is accidentally the identity.
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.3, 0.3)
    model.set_mean(torch.randn(D))
    return model.eval()


def test_config_checks_and_target_dims():
    config = MSResTCNConfig(**TINY, num_joints=V, bodies=M, target_joints=[11, 6, 6])
    assert config.target_joints == (6, 11)
    # body-major: body*V*3 + joint*3 + coord, every body
    assert config.target_dims() == [18, 19, 20, 33, 34, 35, 78, 79, 80, 93, 94, 95]
    with pytest.raises(ValueError, match="in_channels"):
        MSResTCNConfig(**TINY, num_joints=V, bodies=1, target_joints=HANDS)
    with pytest.raises(ValueError, match="outside"):
        MSResTCNConfig(**TINY, num_joints=V, bodies=M, target_joints=[20])
    with pytest.raises(ValueError, match="empty"):
        MSResTCNConfig(**TINY, num_joints=V, bodies=M, target_joints=[])


def test_pipe_order_matches_equations_by_hand():
    """X_l / X'_l computed unit by unit from DESIGN section 5's equations."""
    model = tiny()
    x = torch.randn(2, 13, D)
    with torch.no_grad():
        x0 = x - model.mean
        main = model.trunk.conv1(x0.transpose(1, 2))
        ta_full = SamePadConv1d(D, 4, 4)  # X0' through a full-width conv: the paper's form
        ta_full.weight.zero_()
        ta_full.weight[:, model.config.target_dims()] = model.ta_trunk.conv1.weight
        ta_full.bias.copy_(model.ta_trunk.conv1.bias)
        ta = ta_full(model.masked_input(x).transpose(1, 2))
        expected = [main]
        for layer in range(2, 11):
            i = layer - 2
            unit, ta_unit, pipe = model.trunk.units[i], model.ta_trunk.units[i], model.pipes[i]
            if layer % 2 == 0:
                ta = ta_unit.skip(ta) + ta_unit.residual(ta)
                main = unit.skip(main) + unit.residual(main) + F.relu(pipe(ta))
            else:
                main = unit.skip(main) + unit.residual(main)
                ta = ta_unit.skip(ta) + ta_unit.residual(ta) + F.relu(pipe(main))
            expected.append(main)
        logits = model.head(torch.cat([main, ta], 1))
        got = model.forward_layers(x)
        assert len(got) == 10
        for layer, (g, e) in enumerate(zip(got, expected), start=1):
            torch.testing.assert_close(g, e, msg=f"layer {layer}")
        torch.testing.assert_close(model(x), logits)
        out, layers = model.forward_intermediates(x)
        torch.testing.assert_close(out, logits)
        torch.testing.assert_close(layers[-1], expected[-1])


def test_swapped_pipe_order_is_detected():
    """The hand computation above could not pass with the directions swapped."""
    model = tiny()
    x = torch.randn(1, 9, D)
    with torch.no_grad():
        main, _ = model.stems(x)
        wrong = model.trunk.units[0](main)  # l = 2 without the TA -> main pipe
        assert not torch.allclose(model.forward_layers(x)[1], wrong)


def test_ta_input_is_zero_outside_targeted_dims():
    model = tiny()
    dims = model.config.target_dims()
    x = torch.randn(2, 11, D)
    seen = []
    hook = model.ta_trunk.conv1.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    # ta_conv1 reads exactly the mean-subtracted targeted dims: (B, K, T)
    torch.testing.assert_close(seen[0], (x - model.mean)[..., dims].transpose(1, 2))
    masked = model.masked_input(x)
    others = [d for d in range(D) if d not in dims]
    assert torch.all(masked[..., others] == 0)
    torch.testing.assert_close(masked[..., dims], (x - model.mean)[..., dims])
    # Changing only non-targeted dims leaves the TA stem untouched, but not the main stem.
    y = x.clone()
    y[..., others] += torch.randn(2, 11, len(others))
    with torch.no_grad():
        (mx, tx), (my, ty) = model.stems(x), model.stems(y)
    torch.testing.assert_close(tx, ty)
    assert not torch.allclose(mx, my)


def test_gathered_ta_conv1_equals_masked_full_width_conv():
    """The cost choice: conv1 over the K targeted dims == full-width conv1 on X0'."""
    model = tiny()
    dims = model.config.target_dims()
    full = SamePadConv1d(D, 4, 4)  # random weights on the non-targeted dims: they must not matter
    with torch.no_grad():
        full.weight[:, dims] = model.ta_trunk.conv1.weight
        full.bias.copy_(model.ta_trunk.conv1.bias)
        x = torch.randn(3, 10, D)
        expected = full(model.masked_input(x).transpose(1, 2))  # (B, D, T) -> (B, 4, T)
        torch.testing.assert_close(model.stems(x)[1], expected)
    assert model.ta_trunk.conv1.in_channels == len(dims) < D


def test_gradients_reach_both_streams_through_pipes():
    model = tiny().train()
    x = torch.randn(4, 12, D)
    # Main stream output depends on the TA stream only through the pipes (even l).
    layers, ta = model.forward_streams(x)
    grads = torch.autograd.grad(layers[-1].square().sum(), [model.ta_trunk.conv1.weight],
                                retain_graph=True)
    assert grads[0].abs().sum() > 0
    # TA output depends on the main stream only through the pipes (odd l).
    grads = torch.autograd.grad(ta.square().sum(), [model.trunk.conv1.weight])
    assert grads[0].abs().sum() > 0
    model.zero_grad()
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    for name in ("ta_trunk.conv1", "trunk.conv1", *(f"pipes.{i}" for i in range(9)),
                 "ta_trunk.units.8.conv"):
        weight = model.get_submodule(name).weight
        assert weight.grad is not None and weight.grad.abs().sum() > 0, name


def test_conv_kernels_cover_both_streams_and_pipes():
    model = tiny()
    kernels = {id(w) for w in model.conv_kernels()}
    for module in (model.trunk.conv1, model.ta_trunk.conv1, *model.pipes,
                   model.trunk.units[3].shortcut,
                   model.ta_trunk.units[6].conv):
        assert id(module.weight) in kernels
    # conv1 + 9 units + 2 shortcuts, twice, + 9 pipes
    assert len(kernels) == 2 * (1 + 9 + 2) + 9


@pytest.mark.parametrize("T", [1, 7, 13, 64])
def test_shapes_any_length(T):
    model = tiny()
    with torch.no_grad():
        layers = model.forward_layers(torch.randn(2, T, D))
        logits = model(torch.randn(2, T, D))
    t2, t4 = -(-T // 2), -(-T // 4)
    assert [tuple(a.shape) for a in layers] == (
        [(2, 4, T)] * 4 + [(2, 8, t2)] * 3 + [(2, 16, t4)] * 3)
    assert logits.shape == (2, 5)


def test_closed_pipes_reduce_main_stream_to_res_tcn():
    """With every pipe shut (ReLU of a very negative bias) the main stream is a Res-TCN."""
    model = tiny()
    with torch.no_grad():
        for pipe in model.pipes:
            pipe.weight.zero_()
            pipe.bias.fill_(-1.0)
    base = ResTCN(ResTCNConfig(**TINY)).eval()
    main = {k: v for k, v in model.state_dict().items() if k.startswith("trunk.")}
    missing, unexpected = base.load_state_dict(main, strict=False)
    assert {k.split(".")[0] for k in missing} == {"head"}  # only the head differs
    assert not unexpected
    base.set_mean(model.mean)
    x = torch.randn(2, 10, D)
    with torch.no_grad():
        for a, b in zip(model.forward_layers(x), base.forward_layers(x)):
            torch.testing.assert_close(a, b)
