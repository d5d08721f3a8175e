"""Plausible synthetic bodies for tests: a standing person in Kinect camera space (metres, y up,
about 3 m from the sensor) who moves a little, in either shipped layout.

The runtime refuses input unlike its training data (``restcn_infer.plausibility``), so random
noise is no longer a stand-in for a skeleton; tests that need any valid input use these."""

from __future__ import annotations

import numpy as np

from restcn_infer.layouts import get_layout

#: One standing pose by Kinect v2 joint name: (x, y, z) in metres, camera space.
POSE = {
    "SpineBase": (0.0, 0.0, 3.0), "SpineMid": (0.0, 0.28, 3.02), "Neck": (0.0, 0.52, 3.02),
    "Head": (0.0, 0.66, 3.0), "SpineShoulder": (0.0, 0.45, 3.02),
    "ShoulderLeft": (-0.18, 0.40, 3.03), "ElbowLeft": (-0.24, 0.14, 3.0),
    "WristLeft": (-0.26, -0.1, 2.92), "HandLeft": (-0.27, -0.18, 2.9),
    "HandTipLeft": (-0.27, -0.25, 2.88), "ThumbLeft": (-0.23, -0.17, 2.87),
    "ShoulderRight": (0.18, 0.40, 3.03), "ElbowRight": (0.24, 0.14, 3.0),
    "WristRight": (0.26, -0.1, 2.92), "HandRight": (0.27, -0.18, 2.9),
    "HandTipRight": (0.27, -0.25, 2.88), "ThumbRight": (0.23, -0.17, 2.87),
    "HipLeft": (-0.09, -0.05, 3.0), "KneeLeft": (-0.1, -0.48, 2.95),
    "AnkleLeft": (-0.1, -0.88, 3.0), "FootLeft": (-0.1, -0.93, 2.88),
    "HipRight": (0.09, -0.05, 3.0), "KneeRight": (0.1, -0.48, 2.95),
    "AnkleRight": (0.1, -0.88, 3.0), "FootRight": (0.1, -0.93, 2.88),
}


def pose(layout: str = "kinect20") -> np.ndarray:
    """The standing pose ``(V, 3)`` float32 in ``layout``'s joint order."""
    lay = get_layout(layout)
    return np.array([POSE[lay.canonical_name(j)] for j in range(lay.num_joints)], np.float32)


def body_sequence(frames: int = 40, layout: str = "kinect20", bodies: int = 1,
                  seed: int = 0) -> np.ndarray:
    """``(bodies, frames, V, 3)`` float32: the pose with waving arms, swaying and a little
    sensor noise, each body 0.8 m to the side of the previous one; ``seed`` varies the motion."""
    rng = np.random.default_rng(seed)
    base = pose(layout)  # (V, 3)
    lay = get_layout(layout)
    arm = np.array(["Elbow" in n or "Wrist" in n or "Hand" in n or "Thumb" in n
                    for n in (lay.canonical_name(j) for j in range(lay.num_joints))])
    t = np.arange(frames, dtype=np.float32)[:, None]  # (T, 1)
    out = np.empty((bodies, frames, lay.num_joints, 3), np.float32)
    for b in range(bodies):
        freq, phase = rng.uniform(0.1, 0.4), rng.uniform(0, 2 * np.pi)
        seq = np.broadcast_to(base, (frames, *base.shape)).copy()  # (T, V, 3)
        seq[:, arm, 1] += 0.12 * np.sin(freq * t + phase)  # arms up and down
        seq[:, :, 0] += 0.05 * np.sin(0.05 * t) + 0.8 * b  # sway, and the next body aside
        seq += rng.normal(0, 0.005, seq.shape)
        out[b] = seq
    return out


def body25(seq: np.ndarray) -> np.ndarray:
    """OpenPose BODY_25 keypoints (nose, neck, right arm, left arm, hips, legs, eyes, ears,
    feet) built from an ntu25 sequence: 25 joints, another order."""
    j = {name: i for i, name in enumerate(get_layout("ntu25").joint_names)}

    def g(name: str) -> np.ndarray:
        return seq[:, :, j[name]]

    head, offset = g("Head"), np.float32
    points = [head, g("Neck"), g("ShoulderRight"), g("ElbowRight"), g("WristRight"),
              g("ShoulderLeft"), g("ElbowLeft"), g("WristLeft"), g("SpineBase"), g("HipRight"),
              g("KneeRight"), g("AnkleRight"), g("HipLeft"), g("KneeLeft"), g("AnkleLeft"),
              head + offset([-0.03, 0.03, 0]), head + offset([0.03, 0.03, 0]),
              head + offset([-0.07, 0, 0.05]), head + offset([0.07, 0, 0.05]), g("FootLeft"),
              g("FootLeft") + offset([0.03, 0, 0]), g("AnkleLeft") + offset([0, -0.05, 0.03]),
              g("FootRight"), g("FootRight") + offset([-0.03, 0, 0]),
              g("AnkleRight") + offset([0, -0.05, 0.03])]
    return np.stack(points, axis=2).astype(np.float32)


#: MediaPipe BlazePose joints that Kinect lacks, by canonical name: the Kinect joint they sit
#: at and an offset (metres).
_MEDIAPIPE_EXTRA = {"Nose": ("Head", (0, -0.02, -0.08)), "Eye": ("Head", (0.03, 0.03, -0.06)),
                    "Ear": ("Head", (0.07, 0, 0)), "Mouth": ("Head", (0.02, -0.06, -0.07)),
                    "Pinky": ("Hand", (0.02, -0.04, 0)), "Index": ("Hand", (-0.02, -0.05, 0)),
                    "Heel": ("Ankle", (0, -0.05, 0.05)), "FootIndex": ("Foot", (0, 0, -0.06))}


def mediapipe33(seq: np.ndarray) -> np.ndarray:
    """MediaPipe BlazePose world landmarks (33 joints, no hip centre, no neck) built from an
    ntu25 sequence: what a derived-joint mapping must turn back into Kinect joints."""
    ntu = get_layout("ntu25")
    lay = get_layout("mediapipe33")
    j = {ntu.canonical_name(i): i for i in range(ntu.num_joints)}
    points = []
    for k in range(lay.num_joints):
        name = lay.canonical_name(k)
        if name in j:
            points.append(seq[:, :, j[name]])
            continue
        side = "Left" if name.endswith("Left") else "Right" if name.endswith("Right") else ""
        stem = name.removesuffix(side).removesuffix("Inner").removesuffix("Outer")
        joint, offset = _MEDIAPIPE_EXTRA[stem]
        sign = -1.0 if side == "Left" else 1.0
        shift = np.float32(offset) * np.float32([sign if side else 1.0, 1.0, 1.0])
        points.append(seq[:, :, j[joint + ("" if joint == "Head" else side)]] + shift)
    return np.stack(points, axis=2).astype(np.float32)
