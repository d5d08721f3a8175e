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
rules of :data:`~restcn_infer.layout_mapping.DERIVED_JOINTS` (e.g. the hip centre
``SpineBase`` = the mean of the two hips): :func:`layout_mapping` applies them, averaging only
the source joints present in each frame; :func:`joint_map` is the pure reordering and refuses a
mapping that needs a derived joint. Both live in :mod:`restcn_infer.layout_mapping`.

**User layouts.** ``--layout my_layout.json`` (:func:`resolve_layout`) reads::

    {"name": "my_layout",
     "joints": ["pelvis", "chest", "head", "l_hand", "r_hand"],
     "bones": [["chest", "pelvis"], ["head", "chest"], ["l_hand", "chest"], ["r_hand", "chest"]],
     "groups": {"hands": ["l_hand", "r_hand"]},
     "aliases": {"pelvis": "SpineBase", "l_hand": "HandLeft", "r_hand": "HandRight"}}

``bones`` are ``[child, parent]`` pairs (names or indices) that must form one tree over all
joints; ``groups`` and ``aliases`` are optional (checked by :mod:`restcn_infer.layout_json`).
:meth:`JointLayout.to_dict` writes this form.

**Joint counts.** :func:`layout_for_joints` names the layout a bare array of V joints is read
in. Where several layouts share a count, :data:`LAYOUT_BY_JOINT_COUNT` says which one the count
means, and the others must be named: 25 joints are ``ntu25`` (what 25 joints have meant in
restcn since its first release); ``openpose25`` data comes through the OpenPose reader, which
names its layout. :data:`LAYOUTS` holds the one layout per count.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from restcn_infer.bounded_json import JsonInputError, loads_bounded
from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.layout_json import parse_layout
from restcn_infer.layout_mapping import (  # noqa: F401 - re-exported: callers import them here
    DERIVED_JOINTS,
    LayoutMapping,
    joint_map,
    layout_mapping,
)
from restcn_infer.limits import read_file_limited

#: Kinect v1 joint name -> the Kinect v2 joint at the same body location.
KINECT_V1_TO_V2 = {
    "HipCenter": "SpineBase",
    "Spine": "SpineMid",
    "ShoulderCenter": "SpineShoulder",
}

#: Bytes of a layout ``.json`` file.
MAX_LAYOUT_FILE_BYTES = 1 << 20


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
        layout = cls(*parse_layout(raw, where))
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
