"""What every restcn architecture is, whatever its streams: the interface tools rely on.

A :class:`SkeletonNetwork` reads raw coordinates ``(B, T, D)``, computes its input modality
from them (joints, bones, motion: :mod:`restcn_infer.modality`) and subtracts the training
split's mean of those features itself (so deployed users feed raw data), returns logits from
``forward``, and exposes from one pass the logits and its *main* trunk's layer activations
(:meth:`forward_intermediates`): the Feature Map Decoder decodes that trunk
(:attr:`decoded_trunk`), export compiles both into one graph, diagnosis reads the layers.
"""

from __future__ import annotations

import torch
from torch import nn

from restcn_training.layers import ResTCNTrunk
from restcn_training.modality import ModalityFeatures


class SkeletonNetwork(nn.Module):
    """Base of the registered architectures (:mod:`restcn_training.registry`).

    The mean is a non-persistent buffer: it belongs to the model description
    (``ModelSpec.mean``), which the checkpoint stores once, and :meth:`set_mean` puts it here.
    For the ``joint`` modality it is the mean skeleton; otherwise the mean of the features.

    Args:
        in_channels: ``D``, the raw input's features per frame.
        modality: the input modality (:data:`restcn_infer.modality.MODALITIES`).
        parents: each joint's parent (-1: root), for the bone modalities.
        coords: coordinates per joint (3, or 2 for image keypoints).
        input_scale: the fixed unit the mean-subtracted features are multiplied by
            (:func:`restcn_infer.envelope.unit_scale`; 1: none, every 3-D model).
    """

    def __init__(self, in_channels: int, modality: str = "joint",
                 parents: tuple[int, ...] = (), coords: int = 3,
                 input_scale: float = 1.0) -> None:
        super().__init__()
        self.features = ModalityFeatures(modality, parents, in_channels, coords)
        self.register_buffer("mean", torch.zeros(in_channels), persistent=False)  # (D,)
        #: A constant of the architecture (its config), so the exported graph holds it.
        self.input_scale = float(input_scale)

    def set_mean(self, mean: torch.Tensor) -> None:
        """Store the training split's mean skeleton ``(D,)``."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))

    def input_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` raw -> the modality's features minus their mean, times the input
        scale, ``(B, T, D)``."""
        x = self.features(x) - self.mean
        return x if self.input_scale == 1.0 else x * self.input_scale

    @property
    def decoded_modality(self) -> str | None:
        """What the decoded trunk's layers decode to (``joint``: skeletons); None: no trunk."""
        return self.features.modality

    @property
    def decoded_trunk(self) -> ResTCNTrunk:
        """The trunk whose layers :meth:`forward_intermediates` returns (the decoder's input)."""
        raise NotImplementedError

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, T, D)`` raw -> (logits ``(B, classes)``, main layers ``[X_1..X_n]``)."""
        raise NotImplementedError

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The main trunk's layer activations ``X_1..X_n``, each ``(B, C_l, T_l)``."""
        return self.forward_intermediates(x)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(x)[0]

    def conv_kernels(self) -> list[torch.Tensor]:
        """Every conv weight (the paper puts an L1 penalty of 1e-4 on these)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv1d)]
