"""Facts of the NTU RGB+D ``.skeleton`` format shared by its two parsers (:mod:`.ntu_skeleton`,
:mod:`.ntu_fast`): token counts per line and the parsed form of a file, body blocks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NUM_JOINTS = 25
MAX_BODIES_PER_FRAME = 6
INFO_TOKENS = 10
JOINT_TOKENS = 12
BLOCK_LINES = 2 + NUM_JOINTS  # info line, jointCount line, joint lines


class Blocks(NamedTuple):
    """A parsed file as body blocks (one per body per frame), in file order."""

    xyz: np.ndarray  # (B, 25, 3) float64
    body: np.ndarray  # (B,) body index, numbered by first appearance of its bodyID
    frame: np.ndarray  # (B,) frame index
    num_frames: int
