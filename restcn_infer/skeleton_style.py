"""How skeletons are drawn, the same in pictures (:mod:`restcn_infer.render`) and in the report
(:mod:`restcn_infer.report`): joints coloured by joint group, left and right distinct (the right
side in a darker shade, its bones dashed), the joints a diagnosis or a Targeted-Attention stream
targets ringed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from restcn_infer.layouts import JointLayout

#: Colours of joint groups (left side, right side); the first group of the layout a joint is in
#: (in :data:`GROUP_ORDER`) gives its colour.
GROUP_COLOURS = {
    "left_hand": ("#d7301f", "#d7301f"), "right_hand": ("#7a0177", "#7a0177"),
    "hands": ("#d7301f", "#7a0177"), "arms": ("#fc8d59", "#c51b8a"),
    "legs": ("#4292c6", "#08519c"), "torso": ("#737373", "#737373"),
}
OTHER_COLOURS = ("#41ab5d", "#006d2c")
GROUP_ORDER = ("left_hand", "right_hand", "hands", "arms", "legs", "torso")


def side(name: str) -> str:
    """``left``, ``right`` or ``centre`` from a joint's name (any case, any layout)."""
    lowered = name.lower()
    return "left" if "left" in lowered else "right" if "right" in lowered else "centre"


def joint_style(layout: JointLayout, highlight: Iterable[int] = ()) -> dict[str, Any]:
    """Per joint its group, side, colour and whether it is ringed; and the bones."""
    ringed = set(highlight)
    order = [*GROUP_ORDER, *(g for g in layout.groups if g not in GROUP_ORDER)]
    joints = []
    for j, name in enumerate(layout.joint_names):
        group = next((g for g in order if j in layout.groups.get(g, ())), "other")
        left, right = GROUP_COLOURS.get(group, OTHER_COLOURS)
        where = side(name)
        joints.append({"name": name, "group": group, "side": where,
                       "colour": right if where == "right" else left, "highlight": j in ringed})
    return {"joints": joints, "bones": [list(b) for b in layout.bones]}
