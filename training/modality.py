"""The torch twin of :mod:`restcn_infer.modality`: the same features, inside the network (and so
inside the exported graph, which still takes raw coordinates). ``tests`` pin it to the numpy
definition; read that module's docstring for the definitions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from restcn_infer.modality import check_modality


class ModalityFeatures(nn.Module):
    """``(B, T, D)`` raw coordinates -> ``(B, T, D)`` features of one modality.

    Args:
        modality: ``joint``, ``bone``, ``motion`` or ``bone-motion``.
        parents: the parent of every joint (-1: root), for bones.
        d: features per frame, ``bodies * joints * coords``.
        coords: coordinates per joint (3, or 2 for image keypoints).
    """

    def __init__(self, modality: str, parents: Sequence[int], d: int, coords: int = 3) -> None:
        super().__init__()
        check_modality(modality, parents, d, coords)
        self.modality = modality
        self.coords = coords
        index = [p if p >= 0 else j for j, p in enumerate(parents)]  # a root is its own parent
        self.register_buffer("parent_index", torch.tensor(index or [0], dtype=torch.long),
                             persistent=False)
        self.joints = len(parents)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality == "joint":
            return x
        b, t, d = x.shape
        if "bone" in self.modality:
            body = x.reshape(b, t, -1, self.joints, self.coords)  # (B, T, M, V, C)
            parent = body.index_select(3, self.parent_index)  # (B, T, M, V, C)
            both = _present(body) & _present(parent)  # (B, T, M, V, 1)
            x = torch.where(both, body - parent, torch.zeros_like(body)).reshape(b, t, d)
        if "motion" in self.modality:
            points = x.reshape(b, t, -1, self.coords)  # (B, T, P, C)
            prev = torch.cat([torch.zeros_like(points[:, :1]), points[:, :-1]], dim=1)
            both = _present(points) & _present(prev)  # (B, T, P, 1)
            x = torch.where(both, points - prev, torch.zeros_like(points)).reshape(b, t, d)
        return x


def _present(points: torch.Tensor) -> torch.Tensor:
    """``(..., C) -> (..., 1)``: a point is present when any coordinate is non-zero."""
    return (points != 0).any(dim=-1, keepdim=True)
