"""The state of a run that is not the model: RNG states (for exact resume), the history file,
a digest of the weights (to check DDP replicas agree).
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restcn_infer.atomic import atomic_write_text

HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as plain lists/tensors (``weights_only`` loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": to_lists(random.getstate()), "torch": torch.get_rng_state(),
             "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_lists(obj: Any) -> Any:
    """Tuples (of tuples) as lists: what ``torch.load(weights_only=True)`` reads back."""
    return [to_lists(x) for x in obj] if isinstance(obj, (tuple, list)) else obj


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer: equal on all DDP ranks when they are in sync."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """``history.csv``: one row per epoch (:data:`HISTORY_FIELDS`), written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{row[k]:.6g}" if k != "epoch" else row[k]) for k in HISTORY_FIELDS})
    atomic_write_text(path, buf.getvalue())
