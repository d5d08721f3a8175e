"""Res-TCN (Kim & Reiter, "Interpretable 3D Human Action Analysis with Temporal Convolutional
Networks"), as fixed by DESIGN section 3.

    input (B, T, D) raw coordinates
      - mean skeleton                       (the graph does it, so deployed users feed raw data)
      conv1: 64 x 8, stride 1              -> layer 1   (B, 64, T)
      units 1-3: 64 ch                     -> layers 2-4
      units 4-6: 128 ch, unit 4 stride 2   -> layers 5-7  (B, 128, ceil(T/2))
      units 7-9: 256 ch, unit 7 stride 2   -> layers 8-10 (B, 256, ceil(T/4))
      BN -> ReLU -> global average pool -> linear -> logits (B, classes)

The model exposes the 10 layer activations (:meth:`ResTCN.forward_layers`): the Feature Map
Decoder and the diagnosis tools read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restcn_training.layers import ResidualUnit, SamePadConv1d


@dataclass
class ResTCNConfig:
    """Constructor arguments of :class:`ResTCN`; checkpoints store ``asdict(config)``."""

    in_channels: int  # D = bodies * joints * 3
    num_classes: int
    kernel_size: int = 8
    conv1_channels: int = 64
    unit_channels: tuple[int, ...] = (64, 64, 64, 128, 128, 128, 256, 256, 256)
    unit_strides: tuple[int, ...] = (1, 1, 1, 2, 1, 1, 2, 1, 1)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        self.unit_channels = tuple(self.unit_channels)
        self.unit_strides = tuple(self.unit_strides)
        if len(self.unit_channels) != len(self.unit_strides):
            raise ValueError("unit_channels and unit_strides must have the same length")

    @property
    def num_layers(self) -> int:
        """Layers numbered for the decoder: conv1 plus one per residual unit."""
        return 1 + len(self.unit_channels)

    def to_dict(self) -> dict:
        return asdict(self)


class ResTCN(nn.Module):
    """Res-TCN on ``(B, T, D)`` raw skeleton sequences; see the module docstring."""

    def __init__(self, config: ResTCNConfig) -> None:
        super().__init__()
        self.config = config
        # Mean skeleton of the training split (D,), subtracted inside the graph.
        self.register_buffer("mean", torch.zeros(config.in_channels))
        self.conv1 = SamePadConv1d(config.in_channels, config.conv1_channels, config.kernel_size)
        units = []
        channels = config.conv1_channels
        for out_channels, stride in zip(config.unit_channels, config.unit_strides):
            units.append(ResidualUnit(channels, out_channels, config.kernel_size, stride,
                                      config.dropout))
            channels = out_channels
        self.units = nn.ModuleList(units)
        self.head_bn = nn.BatchNorm1d(channels)
        self.fc = nn.Linear(channels, config.num_classes)

    @property
    def feature_channels(self) -> int:
        return self.fc.in_features

    def set_mean(self, mean: torch.Tensor) -> None:
        """Store the training split's mean skeleton ``(D,)``."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Layer 1: ``(B, T, D)`` raw -> ``(B, 64, T)``."""
        x = (x - self.mean).transpose(1, 2)  # (B, T, D) -> (B, D, T)
        return self.conv1(x)

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All 10 layer activations ``X_1..X_10``, each ``(B, C_l, T_l)`` (after the add)."""
        layers = [self.stem(x)]
        for unit in self.units:
            layers.append(unit(layers[-1]))
        return layers

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` -> last layer ``(B, 256, ceil(T/4))``."""
        h = self.stem(x)
        for unit in self.units:
            h = unit(h)
        return h

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, C, T')`` -> logits ``(B, classes)``: BN -> ReLU -> mean over time -> linear."""
        h = F.relu(self.head_bn(h)).mean(dim=2)  # (B, C, T') -> (B, C)
        return self.fc(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def conv_kernels(self) -> list[torch.Tensor]:
        """Every conv weight (the paper puts an L1 penalty of 1e-4 on these)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv1d)]
