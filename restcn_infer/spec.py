"""The model description shared by training, export and serving: :class:`ModelSpec`.

One run creates one ``ModelSpec`` (``restcn_training``), the checkpoint stores it beside the
weights (``Checkpoint``), export writes it into the ONNX metadata with the decoder layers and the
export facts (:mod:`restcn_infer.metadata`), and the classifier, streaming, decoding and diagnosis
read it back from there. So a model reads its input the same way in all three places:
:meth:`InputSpec.prepare` is the one path from a raw sequence to the network's input.

Every field is checked for type and consistency where a spec enters from outside
(:meth:`ModelSpec.from_dict`), so a wrong type is a clean :class:`ModelError` naming the field.
Specs written before this format (restcn 0.1 checkpoints and ONNX files, "format 1": flat
fields) are read by :func:`spec_from_format1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from restcn_infer.envelope import Envelope, envelope_from_mapping
from restcn_infer.errors import LayoutError, ModelError, SkeletonFormatError
from restcn_infer.fields import Fields
from restcn_infer.layouts import BUILTIN_LAYOUTS, JointLayout, get_layout, layout_for_joints
from restcn_infer.limits import COORDS, MAX_MODEL_BODIES
from restcn_infer.preprocess import (
    WINDOW_POLICIES,
    adapt_layout,
    fit_bodies,
    fit_window,
    fit_windows,
    flatten,
)
from restcn_infer.readers.arrays import check_sequence

#: Bounds a model description must respect (a window of 10**9 frames is refused, not allocated).
MAX_WINDOW = 10_000
MAX_BODIES = MAX_MODEL_BODIES
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class InputSpec:
    """What the network reads: ``(window, D)`` raw coordinates, ``D = bodies * joints * coords``,
    body-major (``index = body*V*coords + joint*coords + coord``).

    Attributes:
        layout: the joint layout (names, bones, groups) of the input.
        bodies: bodies per frame; extra ones are dropped, missing ones are zeros.
        window: frames per input; ``policy`` says how a sequence of any length is brought to it
            (:mod:`restcn_infer.preprocess`).
        coords: coordinates per joint: 3 (x, y, z) or 2 (x, y, image-plane keypoints). Both
            are read raw, in the training data's units and axes (metres for Kinect data;
            pixels or image fractions for 2-D, with y as the source has it): no normalisation
            by image size or body size, here or anywhere, so the network and its Feature Map
            Decoder see the coordinates as given. An input of the other kind is refused
            (:meth:`check_coords`), never projected or padded.
    """

    layout: JointLayout
    bodies: int
    window: int
    policy: str = "resample"
    coords: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.bodies <= MAX_BODIES:
            raise ModelError(f"input bodies must lie in 1..{MAX_BODIES}, got {self.bodies}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ModelError(f"input window must lie in 1..{MAX_WINDOW}, got {self.window}")
        if self.policy not in WINDOW_POLICIES:
            raise ModelError(f"input policy {self.policy!r}: expected one of {WINDOW_POLICIES}")
        if self.coords not in COORDS:
            raise ModelError(f"input coords must be 3 (x, y, z) or 2 (x, y), got {self.coords}")

    @property
    def num_joints(self) -> int:
        return self.layout.num_joints

    @property
    def D(self) -> int:  # noqa: N802 - the paper's name
        """Features per frame."""
        return self.bodies * self.num_joints * self.coords

    def check_coords(self, coords: int, source: object = None) -> None:
        """Refuse an input with ``coords`` coordinates per joint unless the model reads that many.

        Raises:
            SkeletonFormatError: naming ``source``, what the model reads and what to do.
        """
        if coords == self.coords:
            return
        if self.coords == 2:
            raise SkeletonFormatError(
                source, f"the model reads 2-D (x, y) keypoints, the input has {coords} "
                        "coordinates per joint (x, y, z): restcn does not project 3-D input "
                        "(which projection a 2-D model reads is fixed by its training data); "
                        "give the pose estimator's 2-D image keypoints, or project the input "
                        "as the training data was (a third value that is a confidence belongs "
                        "apart: restcn_infer.read_keypoints keeps it out of the coordinates; "
                        "in a stream, send unsure joints as zeros)")
        raise SkeletonFormatError(
            source, f"the model reads 3-D (x, y, z) coordinates, the input has {coords} per "
                    "joint (x, y: 2-D keypoints): depth cannot be made up; use a 3-D source "
                    "(Kinect, MediaPipe world landmarks, a 3-D pose lifter) or a model trained "
                    "on 2-D keypoints")

    def resolve_layout(self, num_joints: int, declared: JointLayout | None = None,
                       source: object = None) -> tuple[JointLayout, bool]:
        """``(layout, guessed)`` of an input with ``num_joints`` joints: ``declared`` when given
        (checked), else a guess from the count: the model's own layout when it matches, else
        the one layout with that count. A guess is only a guess (another layout may have the
        same count); :mod:`restcn_infer.plausibility` checks it against the bone lengths.

        Raises:
            SkeletonFormatError: naming ``source``, when no layout fits.
        """
        if declared is not None:
            if declared.num_joints != num_joints:
                raise SkeletonFormatError(source, f"layout {declared.name} has "
                                                  f"{declared.num_joints} joints, the input has "
                                                  f"{num_joints}")
            return declared, False
        if num_joints == self.num_joints:
            return self.layout, True
        try:
            return layout_for_joints(num_joints), True
        except LayoutError as exc:
            raise SkeletonFormatError(source, f"{exc}; the model expects {self.layout.name} "
                                              f"({self.num_joints} joints)") from None

    def source_layout(self, num_joints: int, declared: JointLayout | None = None,
                      source: object = None) -> JointLayout:
        """The layout of :meth:`resolve_layout`, without saying whether it was guessed."""
        return self.resolve_layout(num_joints, declared, source)[0]

    def to_model_layout(self, seq: np.ndarray, layout: JointLayout,
                        source: object = None) -> np.ndarray:
        """``(M, T, V_layout, C)`` -> ``(bodies, T, V, C)`` in the model's layout (joints matched
        by name, bodies fitted); steps 1-2 of :mod:`restcn_infer.preprocess`. ``C`` must be the
        model's :attr:`coords`."""
        self.check_coords(seq.shape[-1], source)
        try:
            return fit_bodies(adapt_layout(seq, layout, self.layout), self.bodies)
        except LayoutError as exc:
            raise SkeletonFormatError(source, str(exc)) from None

    def to_window(self, seq: np.ndarray, source: object = None) -> np.ndarray:
        """``(bodies, T, V, C)`` in the model's layout -> the network input ``(window, D)``;
        steps 3-4 of :mod:`restcn_infer.preprocess`."""
        try:
            return flatten(fit_window(seq, self.window, self.policy))
        except SkeletonFormatError as exc:
            raise exc.named(source) if source is not None else exc from None

    def to_windows(self, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`to_window` of a batch ``(B, bodies, T, V, C)`` in the model's layout at once:
        ``(x (B, window, D), ok (B,))``; ``ok`` is false (the row zero) where a sequence has no
        body (:func:`~restcn_infer.preprocess.fit_windows`, equal to :meth:`to_window` row by
        row)."""
        fitted, ok = fit_windows(seqs, self.window, self.policy)
        return flatten(fitted), ok

    def prepare(self, seq: np.ndarray, *, layout: JointLayout | None = None,
                source: object = None) -> np.ndarray:
        """A sequence ``(M, T, V, C)`` or ``(T, V, C)`` as one network input ``(window, D)``,
        ``C`` the model's :attr:`coords`.

        The steps of :mod:`restcn_infer.preprocess`: joints matched to the model's layout by
        name (from ``layout``, default :meth:`source_layout`), bodies fitted, frames brought to
        the window by the policy, features flattened body-major. Coordinates stay raw. This is
        preprocessing only: the runtime's plausibility check is the classifier's.

        Raises:
            SkeletonFormatError: naming ``source``: not a numeric sequence, non-finite, of the
                other number of coordinates, no frame with a body, or joints that do not map to
                the model's layout.
        """
        seq = check_sequence(seq, source, COORDS)
        self.check_coords(seq.shape[-1], source)
        src = self.source_layout(seq.shape[2], layout, source)
        return self.to_window(self.to_model_layout(seq, src, source), source)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; a layout that is not built in travels whole (``layout_definition``,
        :meth:`JointLayout.to_dict`), so a model of a user's layout is read without the file."""
        doc = {"layout": self.layout.name, "joint_names": list(self.layout.joint_names),
               "bodies": self.bodies, "window": self.window, "policy": self.policy,
               "coords": self.coords, "D": self.D}
        if self.layout.name not in BUILTIN_LAYOUTS:
            doc["layout_definition"] = self.layout.to_dict()
        return doc

    @classmethod
    def from_dict(cls, raw: Any, where: str = "input") -> InputSpec:
        """Typed and checked; :class:`ModelError` names the field."""
        f = Fields(raw, where, ModelError)
        layout = _read_layout(f)
        if f.str_list("joint_names") != list(layout.joint_names):
            raise f.fail("joint_names", f"do not match layout {layout.name}")
        spec = cls(layout=layout, bodies=f.int("bodies", low=1, high=MAX_BODIES),
                   window=f.int("window", low=1, high=MAX_WINDOW),
                   policy=f.str("policy", "resample", choices=WINDOW_POLICIES),
                   coords=f.int("coords", 3, low=min(COORDS), high=max(COORDS)))  # checked
        if f.int("D", spec.D) != spec.D:
            raise f.fail("D", f"is {f.raw['D']}, expected bodies*joints*coords = {spec.D}")
        return spec


@dataclass(frozen=True)
class ModelSpec:
    """Everything a trained network is, except its weights.

    Attributes:
        architecture: the registry name (``res-tcn``, ``ms-res-tcn``).
        input: what the network reads.
        classes: class names, index = label.
        mean: the training split's mean skeleton, ``D`` floats; the network subtracts it itself.
        config: the architecture's constructor arguments (JSON), enough to rebuild it.
        training: how it was trained (data, splits, seed, recipe, command).
        metrics: what was measured (``final_val_accuracy``, per-class accuracy, ...).
        envelope: what the training bodies looked like (:mod:`restcn_infer.envelope`), measured
            when training starts; None for models made before envelopes existed or without
            training data (the runtime then uses ``envelope.default_envelope``).
    """

    architecture: str
    input: InputSpec
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    envelope: Envelope | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "classes", tuple(str(c) for c in self.classes))
        set_(self, "mean", tuple(float(v) for v in np.asarray(self.mean, np.float64).ravel()))
        for name in ("config", "training", "metrics"):
            set_(self, name, _plain(getattr(self, name), name))
        if len(self.classes) < 2:
            raise ModelError(f"a model needs at least 2 classes, got {list(self.classes)}")
        if len(set(self.classes)) != len(self.classes):
            raise ModelError(f"class names repeat: {list(self.classes)}")
        if len(self.mean) != self.input.D:
            raise ModelError(f"mean has {len(self.mean)} values, expected D = {self.input.D}")
        if not np.all(np.isfinite(self.mean)):
            raise ModelError("mean holds NaN or infinite values")
        if self.envelope is not None:
            self.envelope.check_layout(self.input.layout)
            self.envelope.check_coords(self.input.coords)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def target_joints(self) -> tuple[int, ...]:
        """Joints of the Targeted Attention stream (MS-Res-TCN), else empty."""
        return tuple(self.config.get("target_joints", ()))

    @cached_property
    def mean_array(self) -> np.ndarray:
        """The mean skeleton as float32 ``(D,)`` (read-only)."""
        mean = np.asarray(self.mean, dtype=np.float32)
        mean.flags.writeable = False
        return mean

    def to_dict(self) -> dict[str, Any]:
        doc = {"architecture": self.architecture, "input": self.input.to_dict(),
               "classes": list(self.classes), "mean": list(self.mean),
               "config": dict(self.config), "training": dict(self.training),
               "metrics": dict(self.metrics)}
        if self.envelope is not None:
            doc["envelope"] = self.envelope.to_dict()
        return doc

    @classmethod
    def from_dict(cls, raw: Any, where: str = "spec") -> ModelSpec:
        """Typed and checked; :class:`ModelError` names the document and the field."""
        f = Fields(raw, where, ModelError)
        fields = dict(architecture=f.str("architecture"),
                      input=InputSpec.from_dict(f.object("input"), f"{where} field 'input'"),
                      classes=tuple(f.str_list("classes", unique=True)),
                      mean=tuple(f.float_list("mean")), config=f.object("config", {}),
                      training=f.object("training", {}), metrics=f.object("metrics", {}))
        fields["envelope"] = envelope_from_mapping(f.object("envelope") if "envelope" in f.raw
                                                   else None, fields["input"].layout,
                                                   f"{where} field 'envelope'",
                                                   fields["input"].coords)
        try:
            return cls(**fields)
        except ModelError as exc:  # consistency between fields
            raise ModelError(f"{where}: {exc}") from None


def spec_from_format1(raw: Any, where: str, config: Mapping[str, Any] | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from the flat fields of format 1 (restcn 0.1 checkpoints and ONNX
    metadata): ``architecture, layout, joint_names, bodies, D, window, window_policy, classes,
    mean, target_joints, training, metrics``; ``config`` from the checkpoint when known."""
    f = Fields(raw, where, ModelError)
    flat_input = {"layout": f.str("layout"), "bodies": f.raw.get("bodies"),
                  "window": f.raw.get("window"),
                  "policy": f.raw.get("window_policy", "resample")}
    flat_input["joint_names"] = f.raw.get("joint_names", list(_layout_names(flat_input)))
    if "D" in f.raw:
        flat_input["D"] = f.raw["D"]
    spec_input = InputSpec.from_dict(flat_input, where)
    config = dict(config or {})
    targets = f.int_list("target_joints", [], low=0, high=spec_input.num_joints - 1)
    if targets and "target_joints" not in config:
        config["target_joints"] = targets
    fields = dict(architecture=f.str("architecture"), input=spec_input,
                  classes=tuple(f.str_list("classes", unique=True)),
                  mean=tuple(f.float_list("mean")), config=config,
                  training=f.object("training", {}), metrics=f.object("metrics", {}))
    try:
        return ModelSpec(**fields)
    except ModelError as exc:  # consistency between fields
        raise ModelError(f"{where}: {exc}") from None


def _read_layout(f: Fields) -> JointLayout:
    """The layout of an input description: its ``layout_definition`` (a user layout, whose
    name must be ``layout``'s), else the built-in layout named ``layout``."""
    name = f.str("layout")
    if "layout_definition" not in f.raw:
        try:
            return get_layout(name)
        except LayoutError as exc:
            raise f.fail("layout", f"is unknown to this runtime ({exc})") from None
    where = f"{f.where} field 'layout_definition'"
    try:
        layout = JointLayout.from_dict(f.object("layout_definition"), where)
    except LayoutError as exc:
        raise ModelError(str(exc)) from None
    if layout.name != name:
        raise f.fail("layout_definition", f"defines layout {layout.name!r}, but field 'layout' "
                                          f"names {name!r}")
    return layout


def _layout_names(flat_input: dict[str, Any]) -> tuple[str, ...]:
    try:
        return get_layout(flat_input["layout"]).joint_names
    except LayoutError:
        return ()


def _plain(value: Any, name: str) -> dict[str, Any]:
    """A JSON-safe copy (tuples become lists, numpy scalars and arrays numbers and lists)."""
    try:
        plain = json.loads(json.dumps(value, default=lambda v: np.asarray(v).tolist(),
                                      allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name} must be JSON (finite numbers, strings, lists, objects): "
                         f"{exc}") from None
    if not isinstance(plain, dict):
        raise ModelError(f"{name} must be a JSON object, got {type(value).__name__}")
    return plain
