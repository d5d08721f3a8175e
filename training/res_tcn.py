"""Res-TCN (Kim & Reiter, "Interpretable 3D Human Action Analysis with Temporal Convolutional
Networks"), as fixed by DESIGN section 3.

    input (B, T, D) raw coordinates
      - mean skeleton                       (the graph does it, so deployed users feed raw data)
      conv1: 64 x 8, stride 1              -> layer 1   (B, 64, T)
      units 1-3: 64 ch                     -> layers 2-4
      units 4-6: 128 ch, unit 4 stride 2   -> layers 5-7  (B, 128, ceil(T/2))
      units 7-9: 256 ch, unit 7 stride 2   -> layers 8-10 (B, 256, ceil(T/4))
      BN -> ReLU -> global average pool -> linear -> logits (B, classes)

The 10 layer activations come with the logits from :meth:`ResTCN.forward_intermediates`: the
Feature Map Decoder and the diagnosis tools read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from restcn_infer.modality import bone_parents
from restcn_infer.spec import InputSpec
from restcn_training.layers import ClassifierHead, ResTCNTrunk
from restcn_training.network import SkeletonNetwork


@dataclass
class ResTCNConfig:
    """Constructor arguments of :class:`ResTCN`; checkpoints store ``asdict(config)``."""

    in_channels: int  # D = bodies * joints * coords
    num_classes: int
    kernel_size: int = 8
    conv1_channels: int = 64
    unit_channels: tuple[int, ...] = (64, 64, 64, 128, 128, 128, 256, 256, 256)
    unit_strides: tuple[int, ...] = (1, 1, 1, 2, 1, 1, 2, 1, 1)
    dropout: float = 0.5
    modality: str = "joint"  # restcn_infer.modality.MODALITIES
    parents: tuple[int, ...] = ()  # each joint's parent (-1: root), for the bone modalities
    coords: int = 3  # coordinates per joint: 3 (x, y, z) or 2 (image keypoints)
    input_scale: float = 1.0  # the input's fixed unit (restcn_infer.envelope.unit_scale)

    def __post_init__(self) -> None:
        self.unit_channels = tuple(self.unit_channels)
        self.unit_strides = tuple(self.unit_strides)
        self.parents = tuple(int(p) for p in self.parents)
        if len(self.unit_channels) != len(self.unit_strides):
            raise ValueError("unit_channels and unit_strides must have the same length")
        self.input_scale = float(self.input_scale)
        if not 0.0 < self.input_scale < float("inf"):
            raise ValueError(f"input_scale must be a positive number, got {self.input_scale}")

    @classmethod
    def for_input(cls, spec: InputSpec, num_classes: int, *, dropout: float = 0.5,
                  channels: tuple[int, ...] | None = None, modality: str = "joint",
                  input_scale: float = 1.0) -> ResTCNConfig:
        """The config for ``spec``'s input; ``channels``: the 9 units' widths (conv1 takes the
        first), for small models; ``modality``: what the network computes from the raw input;
        ``input_scale``: the input's unit (:func:`restcn_infer.envelope.unit_scale`).

        Raises:
            ValueError: ``channels`` of the wrong length.
        """
        config = cls(in_channels=spec.D, num_classes=num_classes, dropout=dropout,
                     modality=modality, parents=bone_parents(spec.layout), coords=spec.coords,
                     input_scale=input_scale)
        if channels:
            if len(channels) != len(config.unit_strides):
                raise ValueError(f"channels needs {len(config.unit_strides)} values, "
                                 f"got {len(channels)}")
            config.conv1_channels, config.unit_channels = channels[0], tuple(channels)
        return config

    def trunk(self, in_channels: int | None = None) -> ResTCNTrunk:
        """A trunk of this shape reading ``in_channels`` (default: ``self.in_channels``)."""
        return ResTCNTrunk(self.in_channels if in_channels is None else in_channels,
                           self.conv1_channels, self.unit_channels, self.unit_strides,
                           self.kernel_size, self.dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResTCN(SkeletonNetwork):
    """Res-TCN on ``(B, T, D)`` raw skeleton sequences: one trunk and a classifier head."""

    def __init__(self, config: ResTCNConfig) -> None:
        super().__init__(config.in_channels, config.modality, config.parents, config.coords,
                         config.input_scale)
        self.config = config
        self.trunk = config.trunk()
        self.head = ClassifierHead(self.trunk.out_channels, config.num_classes)

    @property
    def decoded_trunk(self):
        return self.trunk

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.input_features(x).transpose(1, 2)  # (B, T, D) -> (B, D, T)
        layers = self.trunk(x)  # 10 x (B, C_l, T_l)
        return self.head(layers[-1]), layers
