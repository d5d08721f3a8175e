"""MediaPipe pose landmarks saved as JSON, as :class:`~restcn_infer.readers.keypoints.Keypoints`
in the ``mediapipe33`` layout.

MediaPipe has no file format of its own; this reads the two result objects as they are turned
into JSON (``dataclasses.asdict`` of the Tasks API's ``PoseLandmarkerResult``, or
``MessageToDict`` of the legacy Solutions API's result), one per frame::

    {"frames": [frame, ...]}   or   [frame, ...]   or one frame

    frame = {"pose_landmarks":       [[landmark x 33], ...],   Tasks API: a list per person
             "pose_world_landmarks": [[landmark x 33], ...],
             "timestamp_ms": 33}                                (anything else is ignored)
          | {"pose_landmarks": {"landmark": [landmark x 33]},  Solutions API: one person
             "pose_world_landmarks": {"landmark": [...]}}
    landmark = {"x": ..., "y": ..., "z": ..., "visibility": 0.98, "presence": 0.99}

A frame without a person has empty or missing landmarks. People are not tracked: bodies follow
their order in each frame.

Two coordinate systems (``coordinates``):

- ``world``: ``pose_world_landmarks``, x, y, z in metres with the origin between the hips
  (3-D; ``units="m"``);
- ``image``: ``pose_landmarks`` x, y as fractions of the image width and height (2-D;
  ``units="normalised"``). Their ``z`` is a depth relative to the hips on the scale of x, not a
  measured coordinate, and is not read.
- ``auto`` (default): world where the document has world landmarks, else image.

Confidence is ``visibility`` (None when no landmark has one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import MEDIAPIPE33
from restcn_infer.limits import MAX_BODIES, MAX_FRAMES
from restcn_infer.readers.keypoints import (
    Keypoints,
    Person,
    assemble_bodies,
    check_values,
    read_json,
)

COORDINATES = ("auto", "world", "image")
_KEYS = {"world": "pose_world_landmarks", "image": "pose_landmarks"}


def is_mediapipe(doc: Any) -> bool:
    """Whether a parsed JSON document is one of the shapes of the module docstring."""
    frame = _first_frame(doc)
    return isinstance(frame, dict) and any(key in frame for key in _KEYS.values())


def read_mediapipe(path: str | Path, *, coordinates: str = "auto",
                   max_bodies: int = MAX_BODIES) -> Keypoints:
    """Read a MediaPipe landmarks file; see :func:`mediapipe_keypoints`."""
    return mediapipe_keypoints(read_json(path), path, coordinates=coordinates,
                               max_bodies=max_bodies)


def mediapipe_keypoints(doc: Any, source: object, *, coordinates: str = "auto",
                        max_bodies: int = MAX_BODIES) -> Keypoints:
    """Keypoints from a parsed MediaPipe document (module docstring).

    Raises:
        SkeletonFormatError: naming ``source``, the frame, person and landmark.
        ValueError: unknown ``coordinates``.
    """
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}, got {coordinates!r}")
    frames = _frames(doc, source)
    if coordinates == "auto":
        has_world = any(isinstance(f, dict) and f.get(_KEYS["world"]) for f in frames)
        coordinates = "world" if has_world else "image"
    key = _KEYS[coordinates]
    people = []
    for t, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise SkeletonFormatError(source, f"frame {t}: expected an object with {key!r}")
        for i, landmarks in enumerate(_persons(frame.get(key), source, f"frame {t} {key}")):
            coords, visibility = _landmarks(landmarks, coordinates, source,
                                            f"frame {t} {key} person {i}")
            people.append(Person(t, coords, visibility))
    coords, confidence, tracks = assemble_bodies(people, len(frames), source, tracked=False,
                                                 max_bodies=max_bodies)
    if coords.shape[2] != MEDIAPIPE33.num_joints:
        raise SkeletonFormatError(source, f"expected {MEDIAPIPE33.num_joints} pose landmarks "
                                          f"per person, got {coords.shape[2]}")
    units = "m" if coordinates == "world" else "normalised"
    return Keypoints(coords, confidence, MEDIAPIPE33, units, tracks)


def _first_frame(doc: Any) -> Any:
    if isinstance(doc, dict) and isinstance(doc.get("frames"), list):
        doc = doc["frames"]
    if isinstance(doc, list):
        return next((f for f in doc if isinstance(f, dict)), None)
    return doc


def _frames(doc: Any, source: object) -> list:
    if isinstance(doc, dict) and "frames" in doc:
        frames = doc["frames"]
    elif isinstance(doc, dict):
        frames = [doc]  # one frame
    else:
        frames = doc
    if not isinstance(frames, list) or not 0 < len(frames) <= MAX_FRAMES:
        raise SkeletonFormatError(source, f"expected 1..{MAX_FRAMES:,} frames of MediaPipe "
                                          "pose landmarks")
    return frames


def _persons(value: Any, source: object, where: str) -> list:
    """The landmark lists of one frame's people, whichever API wrote them."""
    if value is None or value == [] or value == {}:
        return []
    if isinstance(value, dict):  # Solutions API: {"landmark": [...]}, one person
        value = value.get("landmark")
        return [value] if value else []
    if isinstance(value, list) and isinstance(value[0], dict):  # one person, flat
        return [value]
    if isinstance(value, list) and all(isinstance(p, list) for p in value):
        return value
    raise SkeletonFormatError(source, f"{where}: expected a list of landmark lists (one per "
                                      "person) or {\"landmark\": [...]}")


def _landmarks(landmarks: Any, coordinates: str, source: object, where: str
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(V, 3)`` world or ``(V, 2)`` image coordinates and ``(V,)`` visibility or None."""
    axes = ("x", "y", "z") if coordinates == "world" else ("x", "y")
    if not isinstance(landmarks, list) or len(landmarks) != MEDIAPIPE33.num_joints:
        count = len(landmarks) if isinstance(landmarks, list) else type(landmarks).__name__
        raise SkeletonFormatError(source, f"{where}: expected {MEDIAPIPE33.num_joints} "
                                          f"landmarks, got {count}")
    values, visibility = [], []
    for j, mark in enumerate(landmarks):
        if not isinstance(mark, dict):
            raise SkeletonFormatError(source, f"{where} landmark {j}: expected an object")
        try:
            values.append([_number(mark.get(a, 0.0)) for a in axes])
            visibility.append(_number(mark["visibility"]) if "visibility" in mark else None)
        except TypeError:
            raise SkeletonFormatError(source, f"{where} landmark {j}: expected numbers "
                                              f"{', '.join(axes)}, visibility") from None
    coords = check_values(np.array(values, dtype=np.float64), source, where)  # (V, C)
    if all(v is None for v in visibility):
        return coords, None
    vis = np.array([1.0 if v is None else v for v in visibility], dtype=np.float64)
    return coords, np.clip(check_values(vis, source, where), 0.0, 1.0)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)
