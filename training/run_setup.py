"""What a training run sets up before its first step, beside the loop
(:mod:`restcn_training.engine`): the model's registry config (with MS-Res-TCN's targets,
possibly from a diagnosis), the autocast precision, each rank's shard, the input mean, and
mixup's draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from restcn_infer.diagnosis_summary import read_suggested_target
from restcn_infer.spec import InputSpec
from restcn_training.batches import DeviceSplit
from restcn_training.config import ConfigError, TrainConfig
from restcn_training.registry import UnknownModelError, config_for


def target_joints(cfg: TrainConfig, spec: InputSpec) -> tuple[Any, dict[str, Any] | None]:
    """MS-Res-TCN's targets as ``config_for`` takes them, and where they came from: a
    ``--target-joints`` ending in ``.json`` is a ``diagnosis.json`` whose suggestion is taken
    (the file's path, digest and group go into the model's training record)."""
    value = cfg.target_joints
    if value is None or not value.lower().endswith(".json"):
        return value, None
    target = read_suggested_target(value, spec.num_joints)
    return target.joints, {"diagnosis": target.path, "sha256": target.sha256,
                           "group": target.group, "joints": list(target.joints)}


def build_model_config(cfg: TrainConfig, spec: InputSpec, num_classes: int,
                       input_scale: float = 1.0, targets: Any = None) -> dict[str, Any]:
    """The registry config dict of ``cfg.model`` for the run's input (``input_scale``: its
    unit, :func:`restcn_infer.envelope.unit_scale`; ``targets``: MS-Res-TCN's target joints
    as :func:`target_joints` resolved them, read once so that the joints trained and the
    diagnosis recorded come from the same reading of the file).

    Raises:
        ConfigError: ``channels`` of the wrong length, or target joints the layout lacks.
    """
    options: dict[str, Any] = {"dropout": cfg.dropout, "channels": cfg.channels,
                               "modality": cfg.modality}
    if input_scale != 1.0:
        options["input_scale"] = input_scale
    if targets is not None:
        options["target_joints"] = targets
    try:
        return config_for(cfg.model, spec, num_classes, **options)
    except UnknownModelError as exc:
        raise ConfigError(str(exc).replace("channels needs", "--channels needs")) from None


def autocast_precision(device: torch.device, precision: str) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler)."""
    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return None, False
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("--precision fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return (torch.bfloat16, False) if precision == "bf16" else (torch.float16, True)


#: Sequences per evaluation batch.
EVAL_BATCH = 256


def shard_indices(n: int, rank: int, world: int, seed: int) -> np.ndarray:
    """The training sequences rank ``rank`` of ``world`` holds for the whole run: every
    ``world``-th of a seeded permutation, padded (by repeating its first) so that every rank
    has ``ceil(n / world)`` and takes the same number of steps. One process: all of them."""
    if world == 1:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    shard = order[rank::world]
    size = -(-n // world)
    return np.concatenate([shard, shard[: size - len(shard)]])


@torch.no_grad()
def feature_mean(data: DeviceSplit, features: nn.Module) -> np.ndarray:
    """Per-dimension mean ``(D,)`` over every frame of the windowed, unaugmented split, of the
    network's input features (the modality), accumulated in float64."""
    total = torch.zeros(data.spec.D, dtype=torch.float64, device=data.device)
    for index in torch.arange(len(data)).split(EVAL_BATCH):
        x, _ = data.batch(index)  # (B, window, D)
        total += features(x).double().sum(dim=(0, 1))
    return (total / (len(data) * data.spec.window)).float().cpu().numpy()


def mixing(alpha: float, batch: int, generator: torch.Generator
           ) -> tuple[float, torch.Tensor | None]:
    """Mixup's weight ``lam ~ Beta(alpha, alpha)`` and partner permutation for one batch, drawn
    from ``generator`` (Beta through numpy, seeded from it); ``(1.0, None)`` when off."""
    if alpha <= 0:
        return 1.0, None
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam, torch.randperm(batch, generator=generator)
