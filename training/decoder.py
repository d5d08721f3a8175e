"""The Feature Map Decoder (paper section 4.1, made exact by DESIGN section 4): torch reference.

Every hidden activation ``X_l`` of Res-TCN is turned back into a skeleton sequence
``X_hat_l (T x D)`` with fixed weights taken from the trained model. In the paper's row-major
notation (time steps are rows, ``X_l in R^{T_l x N_l}``):

    compressed filter   W_hat[i] = (W[i, :, f/2-1] + W[i, :, f/2]) / 2            (eq. 6)
    block A, l = 1..4   X_hat_l  = X_l W_hat_1 + mu                                (eq. 7)
    block B, l = 5..7   X'_l     = (X_l - X_5) W_hat_5 + X_5 W_tilde_5            (eq. 10)
                        X_hat_l  = up_T(X'_l) W_hat_1 + mu
    block C, l = 8..10  X''_l    = (X_l - X_8) W_hat_8 + X_8 W_tilde_8
                        X'_l     = (up_{T_5}(X''_l) - X_5) W_hat_5 + X_5 W_tilde_5
                        X_hat_l  = up_T(X'_l) W_hat_1 + mu

``W_hat_5`` / ``W_tilde_5`` are the compressed filters of layer 5's conv and its 1x1 shortcut
(unit 4), ``W_hat_8`` / ``W_tilde_8`` those of layer 8 (unit 7); conv biases are not used, as in
the paper. ``up_n`` is linear interpolation straight to length ``n`` with half-pixel centres
(``F.interpolate(mode="linear", align_corners=False)``). Every step is linear in
``(X_l, X_5, X_8)`` plus ``mu``: the decoder is a fixed linear head on hidden activations, which
``restcn_export`` compiles into the ONNX graph as the output ``decoded``.

The block boundaries are read from the trunk (the units with a shortcut conv), so the same code
decodes the default Res-TCN, tiny test configs and the main stream of MS-Res-TCN (every
architecture names the trunk to decode: ``SkeletonNetwork.decoded_trunk``).

Torch stores activations as ``(B, C, T)``; the code keeps that layout and multiplies by the
transposed matrices, so ``X W`` above reads ``W^T @ x`` below (shape comments on every line).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from restcn_training.layers import ResTCNTrunk
from restcn_training.network import SkeletonNetwork


def upsample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``up_n``: ``(B, C, T_in) -> (B, C, n)`` with ``n = like.shape[-1]``, half-pixel centres.

    The size comes from a tensor's shape, never a Python constant, so an exported graph keeps a
    dynamic time axis. Interpolating to the same length is the identity. Both branches run the
    same kernel; they differ only in what the ONNX exporters make of them: the dynamo exporter
    turns ``F.interpolate`` into a dozen gather/index nodes but the aten op into one ``Resize``
    (half-pixel), while the TorchScript exporter keeps the size dynamic only for
    ``F.interpolate``.
    """
    if torch.jit.is_tracing():
        return F.interpolate(x, size=like.shape[-1:], mode="linear", align_corners=False)
    return torch.ops.aten.upsample_linear1d(x, [like.shape[-1]], False)


def transition_layers(trunk: ResTCNTrunk) -> list[int]:
    """Layers whose unit changes channels or stride (a 1x1 shortcut conv): ``[5, 8]`` for Res-TCN.

    Layer ``l >= 2`` is the output of ``trunk.units[l - 2]``.
    """
    return [i + 2 for i, unit in enumerate(trunk.units) if unit.shortcut is not None]


class FeatureMapDecoder(nn.Module):
    """Decode chosen layers' activations into skeleton sequences ``(B, L, T, D)``.

    Holds copies of the fixed weights it needs (the decoder does not follow later changes to
    ``model``): ``W_hat_1 (N_1 x D)``, for each transition layer ``k`` ``W_hat_k`` and
    ``W_tilde_k`` (``N_k x N_{k-1}``), and the mean skeleton ``mu (D,)``. A model whose input
    is scaled (``model.input_scale``, 2-D keypoints) decodes in the scaled unit, so the decoded
    offsets are divided by it before ``mu`` is added back: skeletons come out in the input's
    own units.

    Args:
        model: a registered architecture; its ``decoded_trunk`` (Res-TCN: the trunk,
            MS-Res-TCN: the main stream) and ``mean`` are read.
        layers: layer numbers to decode, 1-based (layer 1 = conv1, layer l = unit l-1).
    """

    def __init__(self, model: SkeletonNetwork, layers: Sequence[int]) -> None:
        super().__init__()
        trunk = model.decoded_trunk
        num_layers = 1 + len(trunk.units)
        self.layers = [int(layer) for layer in layers]
        bad = [layer for layer in self.layers if not 1 <= layer <= num_layers]
        if not self.layers or bad:
            raise ValueError(f"decoder layers must be a non-empty subset of 1..{num_layers}, "
                             f"got {list(layers)}")
        self.transitions = transition_layers(trunk)
        self.input_scale = float(getattr(model, "input_scale", 1.0))
        with torch.no_grad():
            self.register_buffer("mu", model.mean.detach().clone())  # (D,)
            self.register_buffer("w_hat_1", trunk.conv1.compressed_filters().detach().clone())
            for k in self.transitions:
                unit = trunk.units[k - 2]
                w_hat = unit.conv.compressed_filters()  # (N_k, N_{k-1})
                w_tilde = unit.shortcut.compressed_filters()  # 1x1 conv: its only tap
                self.register_buffer(f"w_hat_{k}", w_hat.detach().clone())
                self.register_buffer(f"w_tilde_{k}", w_tilde.detach().clone())

    def retrieve(self, x: torch.Tensor, x_k: torch.Tensor, k: int) -> torch.Tensor:
        """Eq. 10 at transition layer ``k``: ``(X - X_k) W_hat_k + X_k W_tilde_k``.

        ``x`` and ``x_k`` are ``(B, N_k, T_k)``; returns ``(B, N_{k-1}, T_k)``.
        """
        w_hat = getattr(self, f"w_hat_{k}")  # (N_k, N_{k-1})
        w_tilde = getattr(self, f"w_tilde_{k}")  # (N_k, N_{k-1})
        return w_hat.t() @ (x - x_k) + w_tilde.t() @ x_k  # (N_{k-1}, N_k) @ (B, N_k, T_k)

    def decode_layer(self, activations: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
        """One layer: ``X_l (B, N_l, T_l)`` -> ``X_hat_l (B, T, D)``."""
        x = activations[layer - 1]  # X_l (B, N_l, T_l)
        for k in reversed(self.transitions):  # Res-TCN: layer 8 first, then layer 5
            if layer < k:
                continue
            x = self.retrieve(x, activations[k - 1], k)  # (B, N_{k-1}, T_k)
            x = upsample(x, activations[k - 2])  # (B, N_{k-1}, T_{k-1}), the block below
        x = x.transpose(1, 2)  # (B, N_1, T) -> (B, T, N_1)
        offsets = x @ self.w_hat_1  # (B, T, N_1) @ (N_1, D) -> (B, T, D)
        if self.input_scale != 1.0:
            offsets = offsets / self.input_scale  # back to the input's units
        return offsets + self.mu  # (B, T, D)

    def forward(self, activations: Sequence[torch.Tensor], time: int | None = None) -> torch.Tensor:
        """Decode ``self.layers`` from all layer outputs.

        Args:
            activations: the model's ``forward_layers(x)``, ``X_1..X_n`` each ``(B, C_l, T_l)``.
            time: the input length ``T``. Only checked: the output takes its length from
                ``X_1`` (layer 1 is always at full ``T``), so the exported graph stays dynamic.

        Returns:
            ``(B, L, T, D)``, one decoded sequence per requested layer, in ``self.layers`` order.
        """
        if isinstance(time, int) and time != activations[0].shape[-1]:
            raise ValueError(f"time={time} but layer 1 has {activations[0].shape[-1]} steps")
        decoded = [self.decode_layer(activations, layer) for layer in self.layers]
        return torch.stack(decoded, dim=1)  # L x (B, T, D) -> (B, L, T, D)


@torch.no_grad()
def decode_layers(model: SkeletonNetwork, x: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """Decoded skeletons of ``layers`` for raw input ``x (B, T, D)`` -> ``(B, L, T, D)``.

    Runs the model in its current mode: call ``model.eval()`` first (dropout off).
    """
    return FeatureMapDecoder(model, layers)(model.forward_layers(x), x.shape[1])
