"""What defines a training run: :class:`TrainConfig`, the default recipe and its choices.

The CLI (``restcn-train``) derives every option's default and choices from here, so the recipe
has one home. The default recipe is the paper's optimiser (section 5.1: SGD Nesterov 0.9, lr
0.01, L1 1e-4 on conv kernels, dropout 0.5) with a cosine schedule, label smoothing 0.1, batch
32, T = 64 resampled and raw-coordinate augmentation; it was tuned on the NW-UCLA cross-view
and UTD-MHAD cross-subject *validation* splits (the splits the README reports), see README.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from restcn_infer.errors import RestcnError
from restcn_infer.modality import MODALITIES
from restcn_infer.preprocess import WINDOW_POLICIES
from restcn_training.augment import Augmentation
from restcn_training.distributed import TRAIN_DEVICES
from restcn_training.registry import model_names

SCHEDULES = ("cosine", "plateau")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: The default recipe's augmentation.
DEFAULT_AUGMENTATION = Augmentation(crop=0.8, rotate=60.0, scale=0.1, shift=0.5, tilt=15.0)
#: Recipe fields added after runs were recorded (flattened name: the value that behaves as the
#: older code did). A recorded recipe without one of them had it at this value.
LATER_RECIPE_FIELDS = {"ema": 0.0, "augmentation.tilt": 0.0, "augmentation.roll": 0.0,
                       "mixup": 0.0, "modality": "joint",
                       "holdout_fraction": 0.0, "holdout_match": None, "holdout_seed": 0}
#: Fields that do not change the result (``resume`` may differ in them).
RUNTIME_FIELDS = ("device", "compile", "out", "resume", "command")


class ConfigError(RestcnError, ValueError):
    """A training configuration no run can use."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Fields above ``device`` define the result; ``resume``
    refuses to continue a run whose result-defining fields differ."""

    data: str
    train_split: str = "train"
    val_split: str = "val"
    model: str = "res-tcn"
    modality: str = "joint"
    window: int = 64
    window_policy: str = "resample"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    l1: float = 1e-4
    weight_decay: float = 0.0
    dropout: float = 0.5
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    plateau_patience: int = 10
    augmentation: Augmentation = field(default_factory=lambda: DEFAULT_AUGMENTATION)
    seed: int = 0
    layout: str | None = None
    target_joints: str | None = None
    channels: tuple[int, ...] | None = None  # residual unit channels (conv1 = first); tiny models
    precision: str = "auto"
    ema: float = 0.0  # EMA decay of the evaluated/saved weights; 0 = off
    mixup: float = 0.0  # alpha of mixup (Beta(alpha, alpha) mixes of raw inputs); 0 = off
    #: Validate on a part carved from the training split instead of ``val_split`` (which is
    #: then never read): a stratified random fraction, or the samples whose name matches a
    #: regular expression (e.g. ``_v02$``: NW-UCLA view 2). For choosing recipes honestly.
    holdout_fraction: float = 0.0
    holdout_match: str | None = None
    holdout_seed: int = 0
    # -- not part of the result --
    device: str = "auto"
    compile: bool = False  # torch.compile the training forward (where it measures faster)
    out: str = "runs/run"
    resume: bool = False
    command: str = ""

    def recipe(self) -> dict[str, Any]:
        """The result-defining fields (JSON-friendly)."""
        d = asdict(self)
        for key in RUNTIME_FIELDS:
            d.pop(key)
        d["channels"] = list(self.channels) if self.channels else None
        return d

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a value no run can use (before any data is read)."""
        checks = [
            (self.model in model_names(),
             f"unknown model {self.model!r}; expected one of {model_names()}"),
            (self.modality in MODALITIES, f"modality must be one of {MODALITIES}"),
            (0.0 <= self.holdout_fraction < 1.0, "holdout fraction must be in [0, 1)"),
            (not (self.holdout_fraction and self.holdout_match),
             "give --holdout-fraction or --holdout-match, not both"),
            (self.window >= 1, f"window must be >= 1, got {self.window}"),
            (self.window_policy in WINDOW_POLICIES,
             f"window policy must be one of {WINDOW_POLICIES}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.device in TRAIN_DEVICES, f"device must be one of {TRAIN_DEVICES}"),
            (0.0 <= self.label_smoothing < 1.0, "label smoothing must be in [0, 1)"),
            (0.0 <= self.ema < 1.0, f"ema decay must be in [0, 1), got {self.ema}"),
            (self.mixup >= 0.0, f"mixup alpha must be >= 0, got {self.mixup}"),
            (self.target_joints is None or self.model == "ms-res-tcn",
             "--target-joints only applies to --model ms-res-tcn"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def flatten_recipe(recipe: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"augmentation": {"tilt": 15}}`` -> ``{"augmentation.tilt": 15}``."""
    flat: dict[str, Any] = {}
    for key, value in recipe.items():
        if isinstance(value, dict):
            flat.update(flatten_recipe(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def recipe_difference(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Flattened fields in which two recipes differ; fields a recorded recipe predates count
    as their :data:`LATER_RECIPE_FIELDS` value."""
    theirs = {**LATER_RECIPE_FIELDS, **flatten_recipe(recorded)}
    ours = flatten_recipe(current)
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
