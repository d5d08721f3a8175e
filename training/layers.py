"""Building blocks of Res-TCN: the padded temporal conv and the pre-activation residual unit.

Never imports the models (timm's rule: blocks do not know who uses them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(left, right) zero padding that reproduces Keras ``padding="same"``.

    Keras pads ``total = (ceil(T/s) - 1)*s + k - T`` split as ``(total//2, total - total//2)``.
    For stride 1 that is ``((k-1)//2, k//2)``: (3, 4) for k = 8. For stride 2 and even k Keras
    pads (3, 3) when T is even and (3, 4) when T is odd; padding (3, 4) always gives the same
    outputs, because with T even the last padded zero is never read (the final window ends one
    element earlier). So one static rule serves both strides, any T, training, ONNX export
    (no shape-dependent pads in the graph) and streaming alike. ``tests/test_res_tcn.py`` pins
    this against the Keras formula. For odd k > 1 at stride 2 Keras pads differently, so
    :class:`SamePadConv1d` refuses that combination instead of silently disagreeing.
    """
    return (kernel_size - 1) // 2, kernel_size // 2


class SamePadConv1d(nn.Conv1d):
    """``nn.Conv1d`` with Keras-"same" zero padding: ``(B, C, T) -> (B, N, ceil(T/stride))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 bias: bool = True) -> None:
        if stride > 1 and kernel_size > 1 and kernel_size % 2:
            raise ValueError(f"kernel {kernel_size} at stride {stride}: the static padding "
                             "matches Keras 'same' only for even kernels (or 1x1) when strided")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         bias=bias)
        self.pads = same_padding(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))  # (B, C, T+k-1) -> (B, N, ceil(T/s))

    def compressed_filters(self) -> torch.Tensor:
        """The paper's compressed filter ``W_hat`` (N, C): mean of the two middle taps.

        For an even length f, taps ``f/2 - 1`` and ``f/2`` (0-based); for a 1x1 conv, its tap.
        """
        f = self.kernel_size[0]
        if f == 1:
            return self.weight[:, :, 0]
        return (self.weight[:, :, f // 2 - 1] + self.weight[:, :, f // 2]) / 2


class ResidualUnit(nn.Module):
    """Pre-activation unit: ``X_l = X_{l-1} + Conv(Dropout(ReLU(BN(X_{l-1}))))``.

    The shortcut is the identity, or a 1x1 conv with the unit's stride when channels or
    stride change; it reads the raw ``X_{l-1}``. No activation after the add.
    ``(B, C_in, T) -> (B, C_out, ceil(T/stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 dropout: float) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv = SamePadConv1d(in_channels, out_channels, kernel_size, stride=stride)
        self.shortcut: SamePadConv1d | None = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = SamePadConv1d(in_channels, out_channels, 1, stride=stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``F(W_l, X_{l-1})``: the branch without the shortcut."""
        return self.conv(self.dropout(F.relu(self.bn(x))))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The shortcut path of ``X_{l-1}``."""
        return x if self.shortcut is None else self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.residual(x)


class ResTCNTrunk(nn.Module):
    """conv1 and the residual units of one Res-TCN stream (layers 1..n of the decoder).

    ``(B, D, T)`` mean-subtracted input -> ``[X_1, ..., X_n]``, ``X_1 = conv1(x)`` ``(B, N_1, T)``
    and ``X_l = units[l-2](X_{l-1})`` (after the add). MS-Res-TCN steps two trunks unit by unit
    (its pipes sit between the units), so ``conv1`` and ``units`` are public.
    """

    def __init__(self, in_channels: int, conv1_channels: int, unit_channels: tuple[int, ...],
                 unit_strides: tuple[int, ...], kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = SamePadConv1d(in_channels, conv1_channels, kernel_size)
        units, channels = [], conv1_channels
        for out_channels, stride in zip(unit_channels, unit_strides):
            units.append(ResidualUnit(channels, out_channels, kernel_size, stride, dropout))
            channels = out_channels
        self.units = nn.ModuleList(units)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        layers = [self.conv1(x)]  # (B, D, T) -> (B, N_1, T)
        for unit in self.units:
            layers.append(unit(layers[-1]))  # (B, C_{l-1}, T_{l-1}) -> (B, C_l, T_l)
        return layers


class ClassifierHead(nn.Module):
    """``(B, C, T') -> logits (B, classes)``: BN -> ReLU -> mean over time -> linear."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(h)).mean(dim=2))  # (B, C, T') -> (B, C) -> (B, classes)
