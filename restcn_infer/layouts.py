"""Named joint layouts: joint names, bones and joint groups, so nothing downstream uses magic
numbers.

Two layouts ship:

- ``ntu25``: Kinect v2 as recorded in NTU RGB+D (25 joints).
- ``kinect20``: Kinect v1 SDK order (20 joints), used by NW-UCLA and UTD-MHAD.

Joints are matched across layouts by name. Kinect v1 names three torso joints differently from
Kinect v2; :data:`KINECT_V1_TO_V2` maps them, so a ``kinect20`` model can read an NTU file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from restcn_infer.errors import LayoutError

#: Kinect v1 joint name -> the Kinect v2 joint at the same body location.
KINECT_V1_TO_V2 = {
    "HipCenter": "SpineBase",
    "Spine": "SpineMid",
    "ShoulderCenter": "SpineShoulder",
}


@dataclass(frozen=True)
class JointLayout:
    """A skeleton's joints in storage order.

    Attributes:
        name: registry name (``ntu25``, ``kinect20``).
        joint_names: one name per joint, in the order the data stores them.
        bones: (child, parent) index pairs for drawing.
        groups: named joint sets (``hands``, ``arms``, ...) as sorted index tuples.
    """

    name: str
    joint_names: tuple[str, ...] = field(repr=False)
    bones: tuple[tuple[int, int], ...] = field(repr=False)
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def canonical_name(self, joint: int) -> str:
        """The Kinect v2 name of joint ``joint``: what cross-layout matching compares."""
        name = self.joint_names[joint]
        return KINECT_V1_TO_V2.get(name, name)

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


def _bones_from_parents(parents: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(child, parent) pairs from a parent list, dropping self-loops and duplicate edges."""
    seen: set[frozenset[int]] = set()
    bones = []
    for child, parent in enumerate(parents):
        edge = frozenset((child, parent))
        if child != parent and edge not in seen:
            seen.add(edge)
            bones.append((child, parent))
    return tuple(bones)


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
)

LAYOUTS: dict[str, JointLayout] = {layout.name: layout for layout in (NTU25, KINECT20)}


def get_layout(name: str) -> JointLayout:
    """The layout registered as ``name``; :class:`LayoutError` listing the known names otherwise."""
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        raise LayoutError(f"unknown joint layout {name!r}; expected one of "
                          f"{sorted(LAYOUTS)}") from None


def layout_for_joints(num_joints: int) -> JointLayout:
    """The one layout with ``num_joints`` joints (25 -> ntu25, 20 -> kinect20), else LayoutError."""
    for layout in LAYOUTS.values():
        if layout.num_joints == num_joints:
            return layout
    raise LayoutError(
        f"no joint layout has {num_joints} joints; known: "
        + ", ".join(f"{lay.name} ({lay.num_joints})" for lay in LAYOUTS.values())
    )


def joint_map(source: JointLayout, target: JointLayout) -> np.ndarray:
    """Index into ``source`` joints for every ``target`` joint, matched by canonical name.

    Returns:
        int64 array of shape (target.num_joints,).

    Raises:
        LayoutError: a target joint has no counterpart in ``source``.
    """
    by_name = {source.canonical_name(j): j for j in range(source.num_joints)}
    missing = [
        target.joint_names[j]
        for j in range(target.num_joints)
        if target.canonical_name(j) not in by_name
    ]
    if missing:
        raise LayoutError(
            f"layout {source.name} has no joints matching {missing} of layout {target.name}"
        )
    return np.array([by_name[target.canonical_name(j)] for j in range(target.num_joints)])
