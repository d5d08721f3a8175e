"""Self-describing checkpoints: one :class:`Checkpoint` type, one ``to_dict`` / ``from_dict``.

A checkpoint is the model description and the weights, nothing else::

    {"format": 2,
     "spec": ModelSpec.to_dict(),   # architecture, config, input, classes, mean, training, metrics
     "state_dict": {...}}           # the weights (the mean skeleton lives in the spec only)

saved with ``torch.save`` and read back with ``torch.load(weights_only=True)`` (tensors, numbers,
strings, lists and dicts only: loading runs no code). Checkpoints of restcn 0.1 ("format 1":
flat fields, the weights under the module names of that version) are read and converted.
Writes are atomic (:mod:`restcn_infer.atomic`).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from restcn_infer.atomic import atomic_write
from restcn_infer.errors import ModelError, RestcnError
from restcn_infer.spec import InputSpec, ModelSpec, spec_from_format1
from restcn_training.network import SkeletonNetwork
from restcn_training.registry import UnknownModelError, config_for, create_model

CHECKPOINT_FORMAT = 2
#: State-dict prefixes of format 1 (0.1's module names) -> today's.
_FORMAT1_PREFIXES = {
    "conv1.": "trunk.conv1.", "units.": "trunk.units.", "head_bn.": "head.bn.", "fc.": "head.fc.",
    "ta_conv1.": "ta_trunk.conv1.", "ta_units.": "ta_trunk.units.",
}


class CheckpointError(RestcnError, ValueError):
    """A file that is not a usable restcn checkpoint (missing, corrupt, unsafe or inconsistent)."""


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` atomically (temp file beside it, fsync, rename)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def safe_torch_load(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and give no unsafe advice.

    Raises:
        CheckpointError: missing, a folder, unreadable, corrupt, or holding objects other than
            tensors and plain data (refused: loading them could run code).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a {what} file "
                              "(a run directory's checkpoint.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused it: never retry unsafely
        detail = str(exc).rpartition("WeightsUnpickler error:")[2]
        if "Unsupported global" in detail:
            name = re.search(r"GLOBAL (\S+)", detail)
            raise CheckpointError(
                f"{path}: not a restcn {what}: it holds objects other than tensors and plain "
                f"data ({name.group(1) if name else 'a Python object'}), which restcn does not "
                "load") from None
        raise CheckpointError(f"{path}: not a loadable {what} (corrupt, or not written by "
                              "torch.save)") from None
    except (RuntimeError, ValueError, EOFError, OSError, KeyError, AttributeError,
            IndexError, TypeError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable {what} (corrupt or not written by "
                              f"torch.save: {reason})") from None


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A trained model: its :class:`~restcn_infer.spec.ModelSpec` and its weights.

    Two checkpoints are equal when their specs are and every weight is bit for bit the same.
    """

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Checkpoint):
            return NotImplemented
        return (self.spec == other.spec and self.state_dict.keys() == other.state_dict.keys()
                and all(torch.equal(v, other.state_dict[k]) for k, v in self.state_dict.items()))

    __hash__ = None  # type: ignore[assignment]  # mutable tensors inside

    @classmethod
    def from_model(cls, model: SkeletonNetwork, spec: ModelSpec) -> Checkpoint:
        """The checkpoint of ``model`` (weights copied to the CPU) described by ``spec``."""
        return cls(spec, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})

    def to_dict(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "spec": self.spec.to_dict(),
                "state_dict": self.state_dict}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "checkpoint") -> Checkpoint:
        """Validate a loaded dict of format 1 or 2; :class:`CheckpointError` says what is wrong."""
        if not isinstance(raw, dict):
            raise CheckpointError(f"{source}: expected a restcn checkpoint (a dict), got "
                                  f"{type(raw).__name__}")
        if raw.get("kind") == "resume":
            raise CheckpointError(f"{source}: is a run's resume state (last.pt), not its model; "
                                  "pass the run's checkpoint.pt (written when training ends) or "
                                  "the run directory")
        version = raw.get("format", 1)
        state = raw.get("state_dict")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):
            raise CheckpointError(f"{source}: lacks a state_dict of tensors")
        try:
            if version == CHECKPOINT_FORMAT:
                spec = ModelSpec.from_dict(raw.get("spec"), f"{source}: spec")
            elif version == 1:
                spec, state = _from_format1(raw, state, source)
            else:
                raise CheckpointError(f"{source}: checkpoint format {version!r} is not one this "
                                      f"restcn reads (1, {CHECKPOINT_FORMAT}); upgrade restcn")
        except ModelError as exc:
            raise CheckpointError(str(exc)) from None
        return cls(spec, state)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically; returns ``path``."""
        atomic_torch_save(self.to_dict(), path)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint file, or a run directory's ``checkpoint.pt``."""
        path = Path(path)
        if path.is_dir() and (path / "checkpoint.pt").is_file():
            path = path / "checkpoint.pt"
        elif path.is_dir() and (path / "last.pt").is_file():
            raise CheckpointError(f"{path}: the run has no checkpoint.pt yet (it is unfinished); "
                                  "resume it with restcn-train --resume")
        elif path.is_dir():
            raise CheckpointError(f"{path}: no checkpoint.pt in this directory (not a "
                                  "restcn-train run directory)")
        return cls.from_dict(safe_torch_load(path), str(path))

    def build_model(self) -> SkeletonNetwork:
        """The model with its weights and mean skeleton, in eval mode.

        Raises:
            CheckpointError: the architecture is unknown or the weights do not fit it.
        """
        try:
            model = create_model(self.spec.architecture, dict(self.spec.config))
            model.load_state_dict(self.state_dict)
        except UnknownModelError as exc:
            raise CheckpointError(str(exc)) from None
        except RuntimeError as exc:  # missing/unexpected keys, shape mismatches
            raise CheckpointError(f"weights do not fit a {self.spec.architecture}: "
                                  f"{str(exc).splitlines()[0]}") from None
        model.set_mean(torch.tensor(self.spec.mean, dtype=torch.float32))
        return model.eval()


def untrained_checkpoint(architecture: str, spec_input: InputSpec, classes: list[str], *,
                         seed: int = 0, mean: torch.Tensor | None = None,
                         **options: Any) -> Checkpoint:
    """A randomly initialised model of ``architecture`` for ``spec_input`` (benchmarks and
    tests; ``options`` as :func:`restcn_training.registry.config_for` takes them); ``mean``
    defaults to zeros."""
    torch.manual_seed(seed)
    config = config_for(architecture, spec_input, len(classes), **options)
    model = create_model(architecture, config).eval()
    mean = torch.zeros(spec_input.D) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
    spec = ModelSpec(architecture=architecture, input=spec_input, classes=tuple(classes),
                     mean=tuple(mean.tolist()), config=config)
    return Checkpoint.from_model(model, spec)


def _from_format1(raw: dict[str, Any], state: dict[str, torch.Tensor],
                  source: str) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    """Format 1: flat fields, ``mean`` in the state dict, 0.1's module names."""
    flat = dict(raw)
    mean = raw.get("mean", state.get("mean"))
    if mean is None:
        raise CheckpointError(f"{source}: format-1 checkpoint lacks the mean skeleton")
    flat["mean"] = torch.as_tensor(mean).flatten().tolist()
    config = raw.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: format-1 checkpoint lacks its model config")
    if "D" not in flat and "in_channels" in config:
        flat["D"] = config["in_channels"]
    spec = spec_from_format1(flat, source, config=config)
    renamed = {}
    for key, value in state.items():
        if key == "mean":
            continue
        prefix = next((p for p in _FORMAT1_PREFIXES if key.startswith(p)), None)
        renamed[key if prefix is None else _FORMAT1_PREFIXES[prefix] + key[len(prefix):]] = value
    return spec, renamed
