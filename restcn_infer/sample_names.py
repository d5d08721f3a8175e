"""What a sample's name says about how it was recorded: the camera view, and the performance it
shows (the same performance seen from several views).

Known naming schemes (others: no view)::

    NTU RGB+D    S001C002P003R002A013    camera C002; performance S001P003R002A013
    NW-UCLA      a01_s01_e02_v03         view v03;    performance a01_s01_e02

Several cameras recorded each NTU and NW-UCLA performance at the same time, so two samples of
one performance from different views show the same motion from another viewpoint: what the
paper's view-invariance figure (Figure 5) compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NTU = re.compile(r"^(S\d{3})(C\d{3})(P\d{3}R\d{3}A\d{3})$")
_NW_UCLA = re.compile(r"^(a\d+_s\d+_e\d+)_(v\d+)$")


@dataclass(frozen=True)
class Recording:
    """``view``: the camera; ``performance``: the name without it (equal across views)."""

    view: str
    performance: str


def recording(name: str) -> Recording | None:
    """The view and performance of a sample ``name``, or None when the name has no view."""
    stem = str(name).rsplit("/", 1)[-1].removesuffix(".skeleton")
    match = _NTU.fullmatch(stem)
    if match:
        return Recording(view=match.group(2), performance=match.group(1) + match.group(3))
    match = _NW_UCLA.fullmatch(stem)
    if match:
        return Recording(view=match.group(2), performance=match.group(1))
    return None
