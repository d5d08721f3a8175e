"""Named joint layouts as data: joint names, bones and joint groups, so nothing downstream uses
magic numbers.

Built in (:data:`BUILTIN_LAYOUTS`), each with the groups ``left_hand``, ``right_hand``, ``hands``,
``arms``, ``legs`` and ``torso`` (``arms``, ``legs`` and ``torso`` split the joints):

- ``ntu25``: Kinect v2 as recorded in NTU RGB+D (25 joints).
- ``kinect20``: Kinect v1 SDK order (20 joints), used by NW-UCLA and UTD-MHAD.
- ``coco17``: the COCO keypoints (MMPose / RTMPose / YOLO-pose order, 17 joints).
- ``openpose25``: OpenPose BODY_25; ``openpose18``: OpenPose's COCO-18 model.
- ``mediapipe33``: MediaPipe BlazePose landmarks (33).

Joint names are the ones each format uses itself (``left_shoulder``, ``LShoulder``, ...). Every
layout also maps its names to one shared vocabulary, the *canonical* names (Kinect v2's:
``ShoulderLeft``; ``EyeLeft``, ``BigToeLeft``, ``PinkyLeft``, ... where Kinect has no such joint)
through :attr:`JointLayout.aliases`, and layouts are matched by canonical name. Two deliberate
identifications: OpenPose's ``Neck`` (the shoulder midpoint) is Kinect's ``SpineShoulder``, and
``MidHip`` is ``SpineBase``.

**Derived joints.** A target joint the source lacks may be computed from joints it has, by the
rules of :data:`DERIVED_JOINTS` (e.g. the hip centre ``SpineBase`` = the mean of the two hips);
:func:`layout_mapping` applies them, averaging only the source joints present in each frame.
:func:`joint_map` is the pure reordering and refuses a mapping that needs a derived joint.

**User layouts.** ``--layout my_layout.json`` (:func:`resolve_layout`) reads::

    {"name": "my_layout",
     "joints": ["pelvis", "chest", "head", "l_hand", "r_hand"],
     "bones": [["chest", "pelvis"], ["head", "chest"], ["l_hand", "chest"], ["r_hand", "chest"]],
     "groups": {"hands": ["l_hand", "r_hand"]},
     "aliases": {"pelvis": "SpineBase", "l_hand": "HandLeft", "r_hand": "HandRight"}}

``bones`` are ``[child, parent]`` pairs (names or indices) that must form one tree over all
joints; ``groups`` and ``aliases`` are optional. :meth:`JointLayout.to_dict` writes this form.

**Joint counts.** :func:`layout_for_joints` names the layout a bare array of V joints is read
in. Where several layouts share a count, :data:`LAYOUT_BY_JOINT_COUNT` says which one the count
means, and the others must be named: 25 joints are ``ntu25`` (what 25 joints have meant in
restcn since its first release); ``openpose25`` data comes through the OpenPose reader, which
names its layout. :data:`LAYOUTS` holds the one layout per count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restcn_infer.bounded_json import JsonInputError, loads_bounded
from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.fields import Fields
from restcn_infer.limits import MAX_JOINTS, read_file_limited

#: Kinect v1 joint name -> the Kinect v2 joint at the same body location.
KINECT_V1_TO_V2 = {
    "HipCenter": "SpineBase",
    "Spine": "SpineMid",
    "ShoulderCenter": "SpineShoulder",
}

#: Canonical joint -> ways to compute it from other canonical joints, tried in order: the mean
#: of the listed joints present in a frame (zero where none is). Used only for a target joint
#: the source lacks by name.
DERIVED_JOINTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "SpineBase": (("HipLeft", "HipRight"),),  # hip centre
    "SpineShoulder": (("ShoulderLeft", "ShoulderRight"),),  # shoulder centre
    "SpineMid": (("HipLeft", "HipRight", "ShoulderLeft", "ShoulderRight"),),  # torso centre
    "Head": (("EarLeft", "EarRight"),),  # head centre
    "Neck": (("ShoulderLeft", "ShoulderRight", "EarLeft", "EarRight"),),  # shoulders to head
    "HandLeft": (("PinkyLeft", "IndexLeft"),),  # palm, from MediaPipe's knuckles
    "HandRight": (("PinkyRight", "IndexRight"),),
    "FootLeft": (("BigToeLeft", "SmallToeLeft"), ("FootIndexLeft",)),  # toes
    "FootRight": (("BigToeRight", "SmallToeRight"), ("FootIndexRight",)),
}

#: Bytes of a layout ``.json`` file.
MAX_LAYOUT_FILE_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class JointLayout:
    """A skeleton's joints in storage order.

    Attributes:
        name: registry name (``ntu25``, ``coco17``, or a user layout's).
        joint_names: one name per joint, in the order the data stores them.
        bones: (child, parent) index pairs forming one tree (drawing, the bone modality).
        groups: named joint sets (``hands``, ``arms``, ...) as sorted index tuples.
        aliases: joint name -> canonical name, where they differ (see the module docstring).
    """

    name: str
    joint_names: tuple[str, ...] = field(repr=False)
    bones: tuple[tuple[int, int], ...] = field(repr=False)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    aliases: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def canonical_name(self, joint: int) -> str:
        """The canonical (Kinect v2 style) name of joint ``joint``: what matching compares."""
        name = self.joint_names[joint]
        return self.aliases.get(name, name)

    def resolve_joints(self, spec: str | Iterable[int]) -> tuple[int, ...]:
        """Joint indices from a group name (``hands``), a comma list (``6,7,10``) or indices.

        Raises:
            LayoutError: unknown group, or an index outside the layout.
        """
        if isinstance(spec, str):
            text = spec.strip()
            if text in self.groups:
                return self.groups[text]
            try:
                indices = [int(part) for part in text.split(",") if part.strip()]
            except ValueError:
                raise LayoutError(
                    f"unknown joint group {text!r} for layout {self.name}; expected one of "
                    f"{sorted(self.groups)} or comma-separated joint indices"
                ) from None
        else:
            indices = [int(i) for i in spec]
        if not indices:
            raise LayoutError("no joints given")
        bad = [i for i in indices if not 0 <= i < self.num_joints]
        if bad:
            raise LayoutError(
                f"joint indices {bad} outside layout {self.name} (0..{self.num_joints - 1})"
            )
        return tuple(sorted(set(indices)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the module docstring (indices for bones and groups)."""
        return {"name": self.name, "joints": list(self.joint_names),
                "bones": [list(bone) for bone in self.bones],
                "groups": {group: list(joints) for group, joints in self.groups.items()},
                "aliases": dict(self.aliases)}

    @classmethod
    def from_dict(cls, raw: Any, where: str = "layout") -> JointLayout:
        """A layout from its JSON form, every field checked; a built-in name must come with the
        built-in's own definition (the built-in is returned).

        Raises:
            LayoutError: naming ``where`` and the field.
        """
        layout = _layout_from_dict(raw, where)
        builtin = BUILTIN_LAYOUTS.get(layout.name)
        if builtin is None:
            return layout
        if layout.to_dict() != builtin.to_dict():
            raise LayoutError(f"{where}: name {layout.name!r} is a built-in layout with other "
                              "joints, bones or groups; give a layout of your own another name")
        return builtin


def _bones_from_parents(parents: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(child, parent) pairs from a parent list, dropping self-loops (the root) and duplicates."""
    seen: set[frozenset[int]] = set()
    bones = []
    for child, parent in enumerate(parents):
        edge = frozenset((child, parent))
        if child != parent and edge not in seen:
            seen.add(edge)
            bones.append((child, parent))
    return tuple(bones)


def _side_aliases(names: Sequence[str]) -> dict[str, str]:
    """Canonical names for snake-case names with a side word: ``left_eye_inner`` ->
    ``EyeInnerLeft``, ``mouth_right`` -> ``MouthRight``, ``nose`` -> ``Nose``."""
    aliases = {}
    for name in names:
        words = name.split("_")
        side = [w for w in words if w in ("left", "right")]
        rest = "".join(w.capitalize() for w in words if w not in ("left", "right"))
        aliases[name] = rest + "".join(s.capitalize() for s in side)
    return aliases


def _letter_side_aliases(names: Sequence[str], extra: Mapping[str, str]) -> dict[str, str]:
    """Canonical names for OpenPose's ``LShoulder``/``RHeel`` style, plus ``extra``."""
    aliases = dict(extra)
    for name in names:
        if name[0] in "LR" and name[1:2].isupper():
            aliases[name] = name[1:] + ("Left" if name[0] == "L" else "Right")
    return aliases


NTU25 = JointLayout(
    name="ntu25",
    joint_names=(
        "SpineBase", "SpineMid", "Neck", "Head",
        "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
        "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
        "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
        "HipRight", "KneeRight", "AnkleRight", "FootRight",
        "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
    ),
    # Official parent list (1-based in the dataset's README), converted to 0-based.
    bones=_bones_from_parents(
        [p - 1 for p in (2, 1, 21, 3, 21, 5, 6, 7, 21, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18, 19,
                         2, 8, 8, 12, 12)]
    ),
    groups={
        "left_hand": (6, 7, 21, 22),
        "right_hand": (10, 11, 23, 24),
        "hands": (6, 7, 10, 11, 21, 22, 23, 24),
        "arms": (5, 6, 7, 9, 10, 11, 21, 22, 23, 24),
        "legs": (12, 13, 14, 15, 16, 17, 18, 19),
        "torso": (0, 1, 2, 3, 4, 8, 20),
    },
)

KINECT20 = JointLayout(
    name="kinect20",
    joint_names=(
        "HipCenter", "Spine", "ShoulderCenter", "Head",
        "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
        "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
        "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
        "HipRight", "KneeRight", "AnkleRight", "FootRight",
    ),
    bones=(
        (1, 0), (2, 1), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9),
        (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
    ),
    groups={
        "left_hand": (6, 7),
        "right_hand": (10, 11),
        "hands": (6, 7, 10, 11),
        "arms": (5, 6, 7, 9, 10, 11),
        "legs": (12, 13, 14, 15, 16, 17, 18, 19),
        "torso": (0, 1, 2, 3, 4, 8),
    },
    aliases=dict(KINECT_V1_TO_V2),
)

_COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO17 = JointLayout(
    name="coco17",
    joint_names=_COCO17_NAMES,
    # COCO has no centre joint: the nose is the root, shoulders hang from it, hips from shoulders.
    bones=_bones_from_parents((0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)),
    groups={
        "left_hand": (9,),
        "right_hand": (10,),
        "hands": (9, 10),
        "arms": (7, 8, 9, 10),
        "legs": (11, 12, 13, 14, 15, 16),
        "torso": (0, 1, 2, 3, 4, 5, 6),
    },
    aliases=_side_aliases(_COCO17_NAMES),
)

_OPENPOSE25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
_OPENPOSE_EXTRA = {"Neck": "SpineShoulder", "MidHip": "SpineBase"}
OPENPOSE25 = JointLayout(
    name="openpose25",
    joint_names=_OPENPOSE25_NAMES,
    # OpenPose's own BODY_25 pairs, rooted at MidHip.
    bones=_bones_from_parents((1, 8, 1, 2, 3, 1, 5, 6, 8, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16,
                               14, 19, 14, 11, 22, 11)),
    groups={
        "left_hand": (7,),
        "right_hand": (4,),
        "hands": (4, 7),
        "arms": (3, 4, 6, 7),
        "legs": (9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24),
        "torso": (0, 1, 2, 5, 8, 15, 16, 17, 18),
    },
    aliases=_letter_side_aliases(_OPENPOSE25_NAMES, _OPENPOSE_EXTRA),
)

_OPENPOSE18_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
OPENPOSE18 = JointLayout(
    name="openpose18",
    joint_names=_OPENPOSE18_NAMES,
    # OpenPose's own COCO-18 pairs, rooted at the neck.
    bones=_bones_from_parents((1, 1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 1, 11, 12, 0, 0, 14, 15)),
    groups={
        "left_hand": (7,),
        "right_hand": (4,),
        "hands": (4, 7),
        "arms": (3, 4, 6, 7),
        "legs": (8, 9, 10, 11, 12, 13),
        "torso": (0, 1, 2, 5, 14, 15, 16, 17),
    },
    aliases=_letter_side_aliases(_OPENPOSE18_NAMES, {"Neck": "SpineShoulder"}),
)

_MEDIAPIPE33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
MEDIAPIPE33 = JointLayout(
    name="mediapipe33",
    joint_names=_MEDIAPIPE33_NAMES,
    # MediaPipe's POSE_CONNECTIONS made a tree: rooted at the nose, mouth and shoulders hang
    # from it, hips from the shoulders; the finger and foot loops are cut.
    bones=_bones_from_parents((0, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16,
                               15, 16, 15, 16, 11, 12, 23, 24, 25, 26, 27, 28, 27, 28)),
    groups={
        "left_hand": (15, 17, 19, 21),
        "right_hand": (16, 18, 20, 22),
        "hands": (15, 16, 17, 18, 19, 20, 21, 22),
        "arms": (13, 14, 15, 16, 17, 18, 19, 20, 21, 22),
        "legs": (23, 24, 25, 26, 27, 28, 29, 30, 31, 32),
        "torso": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    },
    aliases=_side_aliases(_MEDIAPIPE33_NAMES),
)

#: Every built-in layout by name.
BUILTIN_LAYOUTS: dict[str, JointLayout] = {
    layout.name: layout
    for layout in (NTU25, KINECT20, COCO17, OPENPOSE25, OPENPOSE18, MEDIAPIPE33)
}
#: The layout a joint count means where several built-in layouts share it.
LAYOUT_BY_JOINT_COUNT: dict[int, str] = {25: "ntu25"}
#: One built-in layout per joint count: what a bare array of that many joints is read in.
LAYOUTS: dict[str, JointLayout] = {
    name: layout for name, layout in BUILTIN_LAYOUTS.items()
    if LAYOUT_BY_JOINT_COUNT.get(layout.num_joints, name) == name
}


def get_layout(name: str) -> JointLayout:
    """The built-in layout ``name``; :class:`LayoutError` listing the known names otherwise.

    Names only, never a path: a name read from a data file cannot make restcn open a file.
    User layouts come in through :func:`resolve_layout` (a command-line ``--layout``).
    """
    try:
        return BUILTIN_LAYOUTS[name]
    except (KeyError, TypeError):
        raise LayoutError(f"unknown joint layout {name!r}; expected one of "
                          f"{sorted(BUILTIN_LAYOUTS)}") from None


def resolve_layout(spec: str | os.PathLike[str] | JointLayout) -> JointLayout:
    """A layout from a built-in name or a layout ``.json`` file (see the module docstring).

    Raises:
        LayoutError: neither a built-in name nor a readable, valid layout file.
    """
    if isinstance(spec, JointLayout):
        return spec
    text = os.fspath(spec)
    if text in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[text]
    if text.lower().endswith(".json") or os.path.sep in text:
        return load_layout(text)
    raise LayoutError(f"unknown joint layout {text!r}; expected one of "
                      f"{sorted(BUILTIN_LAYOUTS)} or a layout .json file")


def load_layout(path: str | os.PathLike[str]) -> JointLayout:
    """A user layout from a JSON file; :class:`LayoutError` names the file and the field."""
    try:
        data = read_file_limited(path, MAX_LAYOUT_FILE_BYTES, "a layout file")
        doc = loads_bounded(data)
    except SkeletonFormatError as exc:
        raise LayoutError(str(exc)) from None
    except JsonInputError as exc:
        raise LayoutError(f"{os.fspath(path)}: expected a JSON layout: {exc.reason}") from None
    return JointLayout.from_dict(doc, os.fspath(path))


def layouts_with_joints(num_joints: int) -> list[JointLayout]:
    """Every built-in layout with ``num_joints`` joints."""
    return [lay for lay in BUILTIN_LAYOUTS.values() if lay.num_joints == num_joints]


def layout_for_joints(num_joints: int) -> JointLayout:
    """The layout a count of joints means (see the module docstring), else LayoutError."""
    for layout in LAYOUTS.values():
        if layout.num_joints == num_joints:
            return layout
    raise LayoutError(
        f"no joint layout has {num_joints} joints; known: "
        + ", ".join(f"{lay.name} ({lay.num_joints})" for lay in BUILTIN_LAYOUTS.values())
    )


@dataclass(frozen=True)
class LayoutMapping:
    """How to build ``target`` joints from ``source`` joints.

    Attributes:
        sources: per target joint, the source joints it comes from: one (copied) or several
            (averaged over those present in the frame: a derived joint).
    """

    source: JointLayout
    target: JointLayout
    sources: tuple[tuple[int, ...], ...]

    @property
    def index(self) -> np.ndarray | None:
        """int64 ``(V_target,)`` source index per target joint; None when a joint is derived."""
        if any(len(s) != 1 for s in self.sources):
            return None
        return np.array([s[0] for s in self.sources], dtype=np.int64)

    @property
    def derived(self) -> dict[str, tuple[str, ...]]:
        """Derived target joint name -> the source joint names averaged for it."""
        return {self.target.joint_names[j]: tuple(self.source.joint_names[i] for i in s)
                for j, s in enumerate(self.sources) if len(s) > 1}

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(..., V_source, C)`` -> ``(..., V_target, C)`` (any C: 2-D, 3-D, float32 kept).

        A derived joint is the mean of its source joints present in that frame (a joint is
        present when any coordinate is non-zero) and zero where none is.
        """
        first = np.array([s[0] for s in self.sources], dtype=np.int64)
        out = x[..., first, :]  # (..., V_target, C), a copy
        for j, src in enumerate(self.sources):
            if len(src) == 1:
                continue
            points = x[..., list(src), :]  # (..., k, C)
            present = np.any(points != 0, axis=-1, keepdims=True)  # (..., k, 1)
            count = present.sum(axis=-2)  # (..., 1)
            total = np.where(present, points, 0).sum(axis=-2)  # (..., C)
            out[..., j, :] = np.where(count > 0, total / np.maximum(count, 1), 0)
        return out

    def apply_scores(self, scores: np.ndarray) -> np.ndarray:
        """Per-joint confidences ``(..., V_source)`` -> ``(..., V_target)``; a derived joint
        scores as its least confident source."""
        out = np.stack([scores[..., list(s)].min(axis=-1) for s in self.sources], axis=-1)
        return out.astype(scores.dtype, copy=False)


def layout_mapping(source: JointLayout, target: JointLayout) -> LayoutMapping:
    """Match ``target`` joints to ``source`` joints by canonical name, deriving the missing
    ones by :data:`DERIVED_JOINTS` where the source has what a rule needs.

    Raises:
        LayoutError: target joints that neither exist in ``source`` nor can be derived.
    """
    by_name = {source.canonical_name(j): j for j in range(source.num_joints)}
    sources: list[tuple[int, ...]] = []
    missing = []
    for j in range(target.num_joints):
        name = target.canonical_name(j)
        if name in by_name:
            sources.append((by_name[name],))
            continue
        rule = next((r for r in DERIVED_JOINTS.get(name, ()) if all(n in by_name for n in r)),
                    None)
        if rule is None:
            missing.append(target.joint_names[j])
        else:
            sources.append(tuple(by_name[n] for n in rule))
    if missing:
        raise LayoutError(
            f"layout {source.name} has no joints matching {missing} of layout {target.name}"
        )
    return LayoutMapping(source, target, tuple(sources))


def joint_map(source: JointLayout, target: JointLayout) -> np.ndarray:
    """Index into ``source`` joints for every ``target`` joint, matched by canonical name.

    Returns:
        int64 array of shape (target.num_joints,).

    Raises:
        LayoutError: a target joint has no counterpart in ``source`` (also when it could be
            derived: use :func:`layout_mapping` for that).
    """
    mapping = layout_mapping(source, target)
    index = mapping.index
    if index is None:
        raise LayoutError(
            f"layout {source.name} has no joints matching {sorted(mapping.derived)} of layout "
            f"{target.name}; they can be derived ({_describe(mapping.derived)}) by "
            "layout_mapping()"
        )
    return index


def _describe(derived: Mapping[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{name} = mean of {', '.join(parts)}" for name, parts in derived.items())


# -- user layouts ----------------------------------------------------------------------------


def _layout_from_dict(raw: Any, where: str) -> JointLayout:
    """The checks of :meth:`JointLayout.from_dict` (no built-in comparison)."""
    f = Fields(raw, where, LayoutError)
    name = f.str("name")
    if not _NAME.match(name):
        raise f.fail("name", f"must be 1-64 letters, digits, '_', '.' or '-', got {name!r}")
    joints = f.str_list("joints", unique=True)
    if not 1 <= len(joints) <= MAX_JOINTS:
        raise f.fail("joints", f"must list 1..{MAX_JOINTS} joints, got {len(joints)}")
    index = {joint: i for i, joint in enumerate(joints)}

    def joint(value: Any, what: str) -> int:
        if isinstance(value, str) and value in index:
            return index[value]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(joints):
            return value
        raise f.fail(what, f"names {value!r}, which is neither a joint name nor an index "
                           f"0..{len(joints) - 1}")

    raw_bones = f.raw.get("bones", [])
    if not isinstance(raw_bones, list) or len(raw_bones) > len(joints):
        raise f.fail("bones", "must be a list of [child, parent] pairs, one per joint but the "
                              "root")
    bones = []
    for i, pair in enumerate(raw_bones):
        if not isinstance(pair, list) or len(pair) != 2:
            raise f.fail("bones", f"entry {i} must be a [child, parent] pair, got {pair!r}")
        bones.append((joint(pair[0], f"bones[{i}]"), joint(pair[1], f"bones[{i}]")))
    _check_tree(bones, joints, f)
    groups = {}
    for group, members in f.object("groups", {}).items():
        if not _NAME.match(group):
            raise f.fail("groups", f"has a bad group name {group!r}")
        if not isinstance(members, list) or not members or len(members) > len(joints):
            raise f.fail(f"groups.{group}", "must be a non-empty list of joints")
        groups[group] = tuple(sorted({joint(m, f"groups.{group}") for m in members}))
    aliases = f.object("aliases", {})
    for joint_name, canonical in aliases.items():
        if joint_name not in index:
            raise f.fail("aliases", f"names {joint_name!r}, which is not one of the joints")
        if not isinstance(canonical, str) or not canonical:
            raise f.fail(f"aliases.{joint_name}", f"must be a non-empty string, got "
                                                  f"{canonical!r}")
    layout = JointLayout(name=name, joint_names=tuple(joints), bones=tuple(bones),
                         groups=groups, aliases=dict(aliases))
    canonical = [layout.canonical_name(j) for j in range(layout.num_joints)]
    repeated = sorted({c for c in canonical if canonical.count(c) > 1})
    if repeated:
        raise f.fail("aliases", f"give several joints the same name {repeated}")
    return layout


def _check_tree(bones: list[tuple[int, int]], joints: list[str], f: Fields) -> None:
    """``bones`` must be one tree over ``joints``: each joint the child of at most one bone,
    exactly one root, and every joint reached from it (so no cycles)."""
    parent: dict[int, int] = {}
    for child, par in bones:
        if child == par:
            raise f.fail("bones", f"joins {joints[child]!r} to itself")
        if child in parent:
            raise f.fail("bones", f"give {joints[child]!r} two parents "
                                  f"({joints[parent[child]]!r} and {joints[par]!r})")
        parent[child] = par
    if len(bones) != len(joints) - 1:
        raise f.fail("bones", f"must join {len(joints)} joints into one tree with "
                              f"{len(joints) - 1} [child, parent] pairs, got {len(bones)}")
    for start in range(len(joints)):  # walk up to the root; a cycle never gets there
        seen, node = set(), start
        while node in parent:
            if node in seen:
                raise f.fail("bones", f"form a cycle through {joints[node]!r}")
            seen.add(node)
            node = parent[node]
