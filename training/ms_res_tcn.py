"""MS-Res-TCN: Res-TCN plus a Targeted Attention (TA) stream joined by pipes (paper section 4.2,
equations 11-16, as fixed by DESIGN section 5).

    input (B, T, D) raw coordinates, minus the mean skeleton
      main stream: Res-TCN conv1 + 9 units on all D dims          X_1 .. X_10
      TA stream:   the same shape on X0' = input with every dim zeroed except the targeted
                   joints' dims (all bodies)                      X'_1 .. X'_10
      pipes P_l (conv C_l -> C_l, length 1) at every unit l = 2..10, alternating direction:
        even l:  X'_l = X'_{l-1} + F(W'_l, X'_{l-1})
                 X_l  = X_{l-1}  + F(W_l,  X_{l-1})  + ReLU(P_l * X'_l)
        odd l:   X_l  = X_{l-1}  + F(W_l,  X_{l-1})
                 X'_l = X'_{l-1} + F(W'_l, X'_{l-1}) + ReLU(P_l * X_l)
      ("X_{l-1} +" is the unit's shortcut: identity or a strided 1x1 conv.)
      concat(X_10, X'_10) (B, 2C, T/4) -> BN -> ReLU -> mean over time -> linear -> logits

Built by composition: two :class:`~restcn_training.layers.ResTCNTrunk` (``trunk``, the main
stream, and ``ta_trunk``), the ``pipes`` and one :class:`~restcn_training.layers.ClassifierHead`
over both streams. :meth:`MSResTCN.forward_intermediates` returns the main stream's 10 layers, so
the Feature Map Decoder decodes the main stream as it decodes a Res-TCN.

Cost choice: zeroing every non-targeted dimension and then applying a full-width conv1 equals
applying a conv1 that only has input channels for the targeted dims to the gathered dims
(the zeroed channels contribute nothing). ``ta_trunk.conv1`` is therefore
``len(target dims) -> 64``;
it has fewer parameters and FLOPs and computes exactly X'_1. ``tests/test_ms_res_tcn.py`` pins
the equivalence with the masked formulation (:meth:`MSResTCN.masked_input`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from restcn_infer.spec import InputSpec
from restcn_training.layers import ClassifierHead, SamePadConv1d
from restcn_training.network import SkeletonNetwork
from restcn_training.res_tcn import ResTCNConfig


@dataclass(kw_only=True)
class MSResTCNConfig(ResTCNConfig):
    """Res-TCN's constructor arguments plus the TA stream's targets.

    Attributes:
        num_joints: V of the joint layout.
        bodies: M; ``in_channels`` must equal ``bodies * num_joints * coords``.
        target_joints: joint indices (layout order) the TA stream sees, in every body.
        pipe_kernel_size: temporal length of the pipe convs P_l.
    """

    num_joints: int
    bodies: int
    target_joints: tuple[int, ...]
    pipe_kernel_size: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target_joints = tuple(sorted({int(j) for j in self.target_joints}))
        if self.in_channels != self.bodies * self.num_joints * self.coords:
            raise ValueError(
                f"in_channels {self.in_channels} != bodies {self.bodies} x joints "
                f"{self.num_joints} x {self.coords} coordinates"
            )
        if not self.target_joints:
            raise ValueError("target_joints is empty")
        bad = [j for j in self.target_joints if not 0 <= j < self.num_joints]
        if bad:
            raise ValueError(f"target_joints {bad} outside 0..{self.num_joints - 1}")

    @classmethod
    def for_input(cls, spec: InputSpec, num_classes: int, *, dropout: float = 0.5,
                  channels: tuple[int, ...] | None = None, modality: str = "joint",
                  target_joints: str | tuple[int, ...] = "hands",
                  input_scale: float = 1.0) -> MSResTCNConfig:
        """The config for ``spec``'s input, targeting ``target_joints`` (a group of the
        layout, a comma list or indices; see ``JointLayout.resolve_joints``).

        Raises:
            ValueError: bad ``channels``; LayoutError: joints the layout does not have.
        """
        base = ResTCNConfig.for_input(spec, num_classes, dropout=dropout, channels=channels,
                                      modality=modality, input_scale=input_scale)
        return cls(**{f.name: getattr(base, f.name) for f in fields(ResTCNConfig)},
                   num_joints=spec.num_joints, bodies=spec.bodies,
                   target_joints=spec.layout.resolve_joints(target_joints))

    def target_dims(self) -> list[int]:
        """Input dims of the targeted joints, every body: ``body*V*C + joint*C + coord``."""
        c = self.coords
        return [body * self.num_joints * c + joint * c + coord
                for body in range(self.bodies)
                for joint in self.target_joints
                for coord in range(c)]


class MSResTCN(SkeletonNetwork):
    """MS-Res-TCN on ``(B, T, D)`` raw skeleton sequences; see the module docstring."""

    def __init__(self, config: MSResTCNConfig) -> None:
        super().__init__(config.in_channels, config.modality, config.parents, config.coords,
                         config.input_scale)
        self.config = config
        dims = config.target_dims()
        # Targeted input dims (K,), derived from the config, so not stored in the state dict.
        self.register_buffer("target_dims", torch.tensor(dims, dtype=torch.long),
                             persistent=False)
        self.trunk = config.trunk()  # main stream on all D dims
        self.ta_trunk = config.trunk(len(dims))  # TA stream: conv1 reads the K targeted dims
        # Pipe P_l for unit l = 2..10 (pipes[i] belongs to units[i], layer l = i + 2).
        self.pipes = nn.ModuleList(
            SamePadConv1d(c, c, config.pipe_kernel_size) for c in config.unit_channels
        )
        # The head reads concat(X_10, X'_10). One BN over the concatenation == a BN per
        # stream (BN is per channel).
        self.head = ClassifierHead(self.trunk.out_channels + self.ta_trunk.out_channels,
                                   config.num_classes)

    @property
    def decoded_trunk(self):
        return self.trunk

    def masked_input(self, x: torch.Tensor) -> torch.Tensor:
        """X0' of the paper: ``(B, T, D)`` mean-subtracted, zero outside the targeted dims.

        Documentation and tests only; the forward pass gathers the targeted dims instead.
        """
        mask = torch.zeros_like(self.mean)
        mask[self.target_dims] = 1.0
        return self.input_features(x) * mask

    def stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer 1 of both streams: ``(B, T, D)`` raw -> X_1, X'_1, each ``(B, 64, T)``."""
        x = self.input_features(x)  # (B, T, D)
        ta = x.index_select(2, self.target_dims)  # (B, T, D) -> (B, T, K)
        return self.trunk.conv1(x.transpose(1, 2)), self.ta_trunk.conv1(ta.transpose(1, 2))

    def forward_streams(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run both streams: (main layers ``[X_1..X_10]``, last TA layer ``X'_10``).

        Each main layer is ``(B, C_l, T_l)`` after the add, pipe included; ``X'_10`` is
        ``(B, C, T_10)``.
        """
        h, ta = self.stems(x)
        layers = [h]
        for i, (unit, ta_unit, pipe) in enumerate(zip(self.trunk.units, self.ta_trunk.units,
                                                      self.pipes)):
            if (i + 2) % 2 == 0:  # even l: TA first, pipe TA -> main
                ta = ta_unit(ta)
                h = unit(h) + F.relu(pipe(ta))
            else:                 # odd l: main first, pipe main -> TA
                h = unit(h)
                ta = ta_unit(ta) + F.relu(pipe(h))
            layers.append(h)
        return layers, ta

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        layers, ta = self.forward_streams(x)
        features = torch.cat([layers[-1], ta], dim=1)  # 2 x (B, C, T') -> (B, 2C, T')
        return self.head(features), layers
