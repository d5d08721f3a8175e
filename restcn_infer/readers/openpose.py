"""OpenPose's ``--write_json`` output as :class:`~restcn_infer.readers.keypoints.Keypoints`.

OpenPose writes one file per frame, ``<video>_<12-digit frame>_keypoints.json``, into a
folder; a recording is that folder (or one such file: one frame)::

    {"version": 1.3,
     "people": [{"person_id": [-1],
                 "pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...],
                 "face_keypoints_2d": [...], "hand_left_keypoints_2d": [...], ...}]}

``pose_keypoints_2d`` holds 25 (BODY_25, ``openpose25``) or 18 (COCO, ``openpose18``) joints
as x, y in pixels and a confidence c (0 where OpenPose found nothing, x and y then 0 too); face,
hand and 3-D keypoints are not read. Frames are ordered by the frame number in the file name.
``person_id`` is ``[-1]`` unless OpenPose ran with tracking; when every person of the recording
has an id >= 0, bodies follow the ids, else the people's order in each frame.

Files are read one at a time; each is bounded by :data:`MAX_FRAME_FILE_BYTES` and the folder by
:data:`MAX_FOLDER_BYTES` (checked from the file sizes before any is parsed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import OPENPOSE18, OPENPOSE25, JointLayout
from restcn_infer.limits import MAX_BODIES, MAX_FRAMES, MAX_JOINTS
from restcn_infer.readers.keypoints import (
    Keypoints,
    Person,
    assemble_bodies,
    check_values,
    read_json,
)

#: Bytes of one frame's file (a crowd of 100 people with face and hands is ~0.6 MB).
MAX_FRAME_FILE_BYTES = 4 << 20
#: Bytes of all frame files of one recording.
MAX_FOLDER_BYTES = 256 << 20
_FRAME_FILE = re.compile(r"^(?P<video>.*?)_?(?P<frame>\d+)_keypoints\.json$")
_LAYOUTS = {layout.num_joints: layout for layout in (OPENPOSE25, OPENPOSE18)}


def is_openpose(doc: Any) -> bool:
    """Whether a parsed JSON document is one OpenPose frame."""
    return isinstance(doc, dict) and isinstance(doc.get("people"), list)


def frame_files(folder: Path) -> list[Path]:
    """The ``*_keypoints.json`` files of ``folder`` in frame order, checked: one video only,
    at most MAX_FRAMES files and MAX_FOLDER_BYTES bytes.

    Raises:
        SkeletonFormatError: no such files, several videos, or over a limit.
    """
    try:
        names = [e.name for e in os.scandir(folder) if e.name.endswith("_keypoints.json")]
    except OSError as exc:
        raise SkeletonFormatError(folder, f"cannot list the folder: {exc.strerror or exc}"
                                  ) from None
    if not names:
        raise SkeletonFormatError(folder, "is a directory without OpenPose *_keypoints.json "
                                          "frame files; expected a skeleton file or an "
                                          "OpenPose output folder")
    if len(names) > MAX_FRAMES:
        raise SkeletonFormatError(folder, f"{len(names):,} frame files is more than the limit "
                                          f"of {MAX_FRAMES:,}")
    keyed = []
    for name in names:
        match = _FRAME_FILE.match(name)
        if match is None:
            raise SkeletonFormatError(folder / name, "expected a name <video>_<frame "
                                                     "number>_keypoints.json")
        keyed.append((match["video"], int(match["frame"]), name))
    videos = sorted({video for video, _, _ in keyed})
    if len(videos) > 1:
        raise SkeletonFormatError(folder, f"holds the frames of {len(videos)} videos "
                                          f"({', '.join(map(repr, videos[:3]))}); give each "
                                          "its own folder")
    files = [folder / name for _, _, name in sorted(keyed)]
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except OSError as exc:
            raise SkeletonFormatError(path, f"cannot read file: {exc.strerror or exc}") from None
    if total > MAX_FOLDER_BYTES:
        raise SkeletonFormatError(folder, f"its frame files hold {total:,} bytes, more than "
                                          f"the limit of {MAX_FOLDER_BYTES:,}")
    return files


def read_openpose(path: str | Path, *, layout: JointLayout | None = None,
                  max_bodies: int = MAX_BODIES) -> Keypoints:
    """A folder of OpenPose frame files (or one file: one frame) as keypoints.

    Args:
        layout: the layout of ``pose_keypoints_2d`` when it is neither BODY_25 nor COCO-18.

    Raises:
        SkeletonFormatError: naming the file and the person: bad JSON, a keypoint list that is
            not x, y, c triples, joint counts that differ between people or frames.
    """
    path = Path(path)
    files = frame_files(path) if path.is_dir() else [path]
    people: list[Person] = []
    for t, file in enumerate(files):
        people.extend(frame_people(read_json(file, MAX_FRAME_FILE_BYTES), file, t))
    return openpose_keypoints(people, len(files), path, layout=layout, max_bodies=max_bodies)


def frame_people(doc: Any, source: object, t: int) -> list[Person]:
    """The people of one parsed frame document (frame index ``t``)."""
    if not is_openpose(doc):
        raise SkeletonFormatError(source, 'expected an OpenPose frame {"people": [...]}')
    people = []
    for i, person in enumerate(doc["people"]):
        where = f"people[{i}]"
        if not isinstance(person, dict):
            raise SkeletonFormatError(source, f"{where}: expected an object")
        flat = person.get("pose_keypoints_2d")
        if not isinstance(flat, list) or len(flat) % 3 or not 0 < len(flat) <= 3 * MAX_JOINTS:
            raise SkeletonFormatError(source, f"{where}.pose_keypoints_2d: expected x, y, c "
                                              f"for each of 1..{MAX_JOINTS} joints")
        try:
            xyc = np.array(flat, dtype=np.float64).reshape(-1, 3)  # (V, 3): x, y, c
        except (ValueError, TypeError, OverflowError):
            raise SkeletonFormatError(source, f"{where}.pose_keypoints_2d: expected numbers"
                                      ) from None
        xyc = check_values(xyc, source, f"{where}.pose_keypoints_2d")
        people.append(Person(t, xyc[:, :2].copy(), np.clip(xyc[:, 2], 0.0, 1.0),
                             _person_id(person.get("person_id"), source, where)))
    return people


def openpose_keypoints(people: list[Person], frames: int, source: object, *,
                       layout: JointLayout | None = None,
                       max_bodies: int = MAX_BODIES) -> Keypoints:
    """Bodies and layout from the people of ``frames`` frames (module docstring)."""
    tracked = bool(people) and all(p.track is not None for p in people)
    if not tracked:
        people = [Person(p.frame, p.coords, p.confidence) for p in people]
    coords, confidence, tracks = assemble_bodies(people, frames, source, tracked=tracked,
                                                 max_bodies=max_bodies)
    joints = coords.shape[2]
    if layout is not None and layout.num_joints != joints:
        raise SkeletonFormatError(source, f"layout {layout.name} has {layout.num_joints} "
                                          f"joints, the file {joints}")
    found = layout or _LAYOUTS.get(joints)
    if found is None:
        raise SkeletonFormatError(source, f"pose_keypoints_2d has {joints} joints: expected "
                                          "25 (BODY_25) or 18 (COCO), or the layout named")
    return Keypoints(coords, confidence, found, "px", tracks)


def _person_id(value: Any, source: object, where: str) -> int | None:
    """OpenPose's ``person_id`` (a one-element list, or a number); None when untracked."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SkeletonFormatError(source, f"{where}.person_id: expected [id], got {value!r}")
    return value if value >= 0 else None
