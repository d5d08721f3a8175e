"""Ensembles of streams over the same skeleton, as one network (and so one ONNX graph).

The strongest skeleton models fuse streams that read the same raw input differently: joints,
bones, their motion (:mod:`restcn_infer.modality`). An :class:`Ensemble` holds trained members of
the same classes and input (layout, bodies, window, policy); each computes its own modality and
subtracts its own mean inside, so the ensemble still takes raw coordinates. Logits are fused by
one documented rule (``fusion``), with weights ``w_k`` (normalised to sum 1):

- ``logprob`` (default): ``sum_k w_k log_softmax(z_k)``, the weighted geometric mean of the
  members' probabilities (a softmax of it renormalises); insensitive to members whose logits
  have different scales;
- ``prob``: ``log(sum_k w_k softmax(z_k))``, the weighted arithmetic mean of probabilities;
- ``logit``: ``sum_k w_k z_k``, the weighted sum of raw scores (what CTR-GCN-style ensembles add).

The ``decoded`` output comes from the first member that reads joints (the Feature Map Decoder
draws skeletons only from a joint stream); an ensemble without one has no decoder head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restcn_infer.errors import RestcnError
from restcn_infer.spec import ModelSpec
from restcn_training.layers import ResTCNTrunk
from restcn_training.network import SkeletonNetwork

FUSIONS = ("logprob", "prob", "logit")


class EnsembleError(RestcnError, ValueError):
    """Members that cannot form one ensemble (other classes, input or window), or bad weights."""


@dataclass
class EnsembleConfig:
    """Constructor arguments of :class:`Ensemble`: each member's architecture, config and mean
    (its means are not in any state dict: they belong to the members' specs)."""

    members: list[dict[str, Any]]  # {"architecture", "config", "mean"}
    weights: list[float] = field(default_factory=list)  # default: equal
    fusion: str = "logprob"

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(self.members)}")
        if not self.weights:
            self.weights = [1.0] * len(self.members)
        self.weights = [float(w) for w in self.weights]
        if len(self.weights) != len(self.members) or min(self.weights) < 0 or \
                sum(self.weights) <= 0:
            raise ValueError(f"weights {self.weights}: expected {len(self.members)} numbers >= 0 "
                             "with a positive sum")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r}: expected one of {FUSIONS}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ensemble(SkeletonNetwork):
    """Members fused into one network on ``(B, T, D)`` raw coordinates (module docstring)."""

    def __init__(self, config: EnsembleConfig) -> None:
        from restcn_training.registry import create_model

        members = [create_model(m["architecture"], dict(m["config"])) for m in config.members]
        d = members[0].mean.numel()
        super().__init__(d)
        self.config = config
        self.members = nn.ModuleList(members)
        for member, description in zip(self.members, config.members):
            member.set_mean(torch.tensor(description["mean"], dtype=torch.float32))
        weights = torch.tensor(config.weights, dtype=torch.float32)
        self.register_buffer("weights", weights / weights.sum(), persistent=False)  # (K,)
        joint = [i for i, m in enumerate(members) if m.features.modality == "joint"]
        self.decoder_member = joint[0] if joint else None
        if self.decoder_member is not None:  # the decoder reads model.mean and input_scale:
            self.set_mean(self.members[self.decoder_member].mean)  # the joint stream's
            self.input_scale = self.members[self.decoder_member].input_scale

    @property
    def decoded_modality(self) -> str | None:
        return "joint" if self.decoder_member is not None else None

    @property
    def decoded_trunk(self) -> ResTCNTrunk:
        if self.decoder_member is None:
            raise EnsembleError("this ensemble has no joint member to decode")
        return self.members[self.decoder_member].decoded_trunk

    def fuse(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """Members' logits ``K x (B, C)`` -> fused ``(B, C)`` by ``config.fusion``."""
        stacked = torch.stack(list(logits), dim=0)  # (K, B, C)
        w = self.weights[:, None, None]  # (K, 1, 1)
        if self.config.fusion == "logit":
            return (w * stacked).sum(0)
        if self.config.fusion == "prob":
            return torch.log((w * F.softmax(stacked, dim=-1)).sum(0))
        return (w * F.log_softmax(stacked, dim=-1)).sum(0)

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        logits, layers = [], []
        for i, member in enumerate(self.members):
            member_logits, member_layers = member.forward_intermediates(x)
            logits.append(member_logits)
            if i == self.decoder_member:
                layers = member_layers
        return self.fuse(logits), layers


def ensemble_checkpoint(paths: Sequence[str | os.PathLike[str]],
                        weights: Sequence[float] | None = None, fusion: str = "logprob"):
    """One :class:`~restcn_training.checkpoint.Checkpoint` of the ensemble of the checkpoints
    (or run directories) ``paths``.

    Raises:
        EnsembleError: fewer than 2 members, members with other classes or input, bad weights.
        CheckpointError: a member cannot be read.
    """
    from restcn_training.checkpoint import Checkpoint

    members = [Checkpoint.load(p) for p in paths]
    if len(members) < 2:
        raise EnsembleError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0].spec
    for path, member in zip(paths[1:], members[1:]):
        spec = member.spec
        if spec.classes != first.classes:
            raise EnsembleError(f"{path}: its classes differ from {paths[0]}'s "
                                f"({len(spec.classes)} vs {len(first.classes)} classes, or "
                                "another order)")
        if spec.input != first.input:
            raise EnsembleError(f"{path}: its input ({spec.input.layout.name}, "
                                f"{spec.input.bodies} bodies, window {spec.input.window} "
                                f"{spec.input.policy}) differs from {paths[0]}'s "
                                f"({first.input.layout.name}, {first.input.bodies} bodies, "
                                f"window {first.input.window} {first.input.policy})")
    try:
        config = EnsembleConfig(
            members=[{"architecture": m.spec.architecture, "config": dict(m.spec.config),
                      "mean": list(m.spec.mean)} for m in members],
            weights=list(weights or []), fusion=fusion)
    except ValueError as exc:
        raise EnsembleError(str(exc)) from None
    model = Ensemble(config)
    for member, ckpt in zip(model.members, members):
        member.load_state_dict(ckpt.state_dict)
    decoding = model.decoder_member
    spec = ModelSpec(
        architecture="ensemble", input=first.input, classes=first.classes,
        mean=(members[decoding].spec.mean if decoding is not None else (0.0,) * first.input.D),
        config=config.to_dict(), envelope=first.envelope,
        training={"members": [{"path": str(p), "architecture": m.spec.architecture,
                               "modality": m.spec.config.get("modality", "joint"),
                               **dict(m.spec.training)} for p, m in zip(paths, members)]},
        metrics={"members": [{"path": str(p), **dict(m.spec.metrics)}
                             for p, m in zip(paths, members)]})
    return Checkpoint.from_model(model, spec)
