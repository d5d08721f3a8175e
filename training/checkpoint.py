"""Self-describing checkpoints: everything a later tool needs to rebuild and use the model.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only)::

    {"format": 1,
     "architecture": "res-tcn" | "ms-res-tcn",
     "config": asdict(model config),           # constructor arguments
     "state_dict": model.state_dict(),         # includes the "mean" buffer
     "mean": Tensor (D,),                      # the training split's mean skeleton
     "classes": [str, ...], "layout": "ntu25" | "kinect20", "bodies": int,
     "window": int, "window_policy": "resample" | "pad",
     "target_joints": [int, ...],              # MS-Res-TCN's targeted joints, else []
     "training": {...},                        # data, splits, recipe, command, seed
     "metrics": {...}}                         # final/best accuracy, ...

Writes are atomic (temp file + ``os.replace``): an interrupted save never leaves a torn file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restcn_training.registry import create_model

CHECKPOINT_FORMAT = 1


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its required keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/unsafe files
        raise ValueError(f"{path}: not a loadable restcn checkpoint ({exc})") from exc
    required = ("architecture", "config", "state_dict", "classes", "layout", "bodies", "window")
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the model of a loaded checkpoint, weights and mean skeleton included, in eval mode."""
    model = create_model(ckpt["architecture"], dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
