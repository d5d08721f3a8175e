"""The model metadata contract: one JSON object under the ONNX ``metadata_props`` key ``restcn``.

Export writes it, the runtime reads only it (no torch checkpoint, no config file). A field the
runtime cannot honour is refused with :class:`~restcn_infer.errors.ModelError` saying why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from restcn_infer.errors import ModelError
from restcn_infer.layouts import LAYOUTS, JointLayout, get_layout
from restcn_infer.preprocess import WINDOW_POLICIES

METADATA_KEY = "restcn"
#: Bumped when a change would make an older runtime misread a model.
FORMAT_VERSION = 1
ARCHITECTURES = ("res-tcn", "ms-res-tcn")


@dataclass(frozen=True)
class ModelMetadata:
    """What a deployed model says about itself.

    Attributes:
        architecture: ``res-tcn`` or ``ms-res-tcn``.
        layout: joint layout name; ``joint_names`` repeats the names for readers without our code.
        bodies: bodies per frame in the input; ``D = bodies * len(joint_names) * 3``.
        window: frames per input; ``window_policy`` says how a sequence is brought to it.
        classes: class names, index = label.
        mean: the training split's mean skeleton, ``D`` floats (the graph subtracts it itself).
        decoder_layers: layers the graph's ``decoded`` output holds (empty: no decoder head).
        target_joints: joints of the Targeted Attention stream (MS-Res-TCN), else empty.
        training: how it was trained (data, split, command, recipe).
        metrics: measured results (``final_val_accuracy``, ...).
    """

    architecture: str
    layout: str
    joint_names: list[str]
    bodies: int
    D: int
    window: int
    classes: list[str]
    mean: list[float]
    window_policy: str = "resample"
    decoder_layers: list[int] = field(default_factory=list)
    target_joints: list[int] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def joint_layout(self) -> JointLayout:
        return get_layout(self.layout)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def mean_array(self) -> np.ndarray:
        """The mean skeleton as float32 ``(D,)``."""
        return np.asarray(self.mean, dtype=np.float32)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None, source: str = "model") -> ModelMetadata:
        """Parse and validate; :class:`ModelError` says what is missing or unsupported."""
        if text is None:
            raise ModelError(
                f"{source}: no '{METADATA_KEY}' metadata; was it written by restcn-export?"
            )
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: '{METADATA_KEY}' metadata is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{source}: '{METADATA_KEY}' metadata must be a JSON object")
        version = raw.get("format_version")
        if not isinstance(version, int):
            raise ModelError(f"{source}: metadata has no integer format_version")
        if version > FORMAT_VERSION:
            raise ModelError(
                f"{source}: metadata format_version {version} is newer than this runtime "
                f"supports ({FORMAT_VERSION}); upgrade restcn"
            )
        known = {f for f in cls.__dataclass_fields__}
        required = {"architecture", "layout", "joint_names", "bodies", "D", "window", "classes",
                    "mean"}
        missing = sorted(required - raw.keys())
        if missing:
            raise ModelError(f"{source}: metadata lacks {missing}")
        meta = cls(**{k: v for k, v in raw.items() if k in known})
        meta.validate(source)
        return meta

    def validate(self, source: str = "model") -> None:
        """Check internal consistency; raise :class:`ModelError` naming the bad field."""
        def bad(field_name: str, why: str) -> ModelError:
            return ModelError(f"{source}: metadata field {field_name!r} {why}")

        if self.architecture not in ARCHITECTURES:
            raise bad("architecture", f"is {self.architecture!r}, expected one of {ARCHITECTURES}")
        if self.layout not in LAYOUTS:
            raise bad("layout", f"is {self.layout!r}, this runtime knows {sorted(LAYOUTS)}")
        if list(self.joint_names) != list(get_layout(self.layout).joint_names):
            raise bad("joint_names", f"do not match layout {self.layout}")
        if not isinstance(self.bodies, int) or self.bodies < 1:
            raise bad("bodies", f"must be a positive int, got {self.bodies!r}")
        expected_d = self.bodies * len(self.joint_names) * 3
        if self.D != expected_d:
            raise bad("D", f"is {self.D}, expected bodies*joints*3 = {expected_d}")
        if not isinstance(self.window, int) or self.window < 1:
            raise bad("window", f"must be a positive int, got {self.window!r}")
        if self.window_policy not in WINDOW_POLICIES:
            raise bad("window_policy", f"is {self.window_policy!r}, expected {WINDOW_POLICIES}")
        if len(self.classes) < 2:
            raise bad("classes", "must name at least 2 classes")
        if len(self.mean) != self.D:
            raise bad("mean", f"has {len(self.mean)} values, expected D = {self.D}")
        if any(not 1 <= layer <= 10 for layer in self.decoder_layers):
            raise bad("decoder_layers", f"must lie in 1..10, got {self.decoder_layers}")
