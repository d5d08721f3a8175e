"""MMPose / RTMPose result JSON as :class:`~restcn_infer.readers.keypoints.Keypoints`.

The three documents MMPose 1.x writes::

    {"meta_info": {...}, "instance_info": [{"frame_id": 0, "instances": [...]}, ...]}
        demo scripts with --save-predictions (meta_info: the model's dataset_meta)
    [{"frame_id": 0, "instances": [...]}, ...]      MMPoseInferencer(pred_out_dir=...), a video
    [instance, ...]                                 MMPoseInferencer, one image: one frame

    instance = {"keypoints": [[x, y], ...] (or [[x, y, z], ...] from a 3-D lifter),
                "keypoint_scores": [s, ...], "bbox": [[x1, y1, x2, y2]], "bbox_score": s,
                "track_id": 3}          (track_id only from pose tracking / the 3-D inferencer)

Frames are taken in file order (``frame_id`` sizes nothing). With track ids, one body per track
(an instance with a negative or no id in a tracked file is one MMPose dropped, and is left out);
without, bodies follow the instances' order in each frame.

The layout: ``meta_info.keypoint_id2name`` matched against the built-in layouts' names
(MMPose's COCO names are ``coco17``'s), else the caller's ``layout``, else ``coco17`` for 2-D
files of 17 joints. 3-D keypoints need one of the first two: the lifter's 17 joints are
Human3.6M's, not COCO's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import BUILTIN_LAYOUTS, COCO17, JointLayout
from restcn_infer.limits import MAX_BODIES, MAX_FRAMES
from restcn_infer.readers.keypoints import (
    Keypoints,
    Person,
    assemble_bodies,
    person_array,
    read_json,
    score_array,
)


def is_mmpose(doc: Any) -> bool:
    """Whether a parsed JSON document has one of the shapes of the module docstring."""
    if isinstance(doc, dict):
        return "instance_info" in doc
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return "instances" in doc[0] or "keypoints" in doc[0]
    return False


def read_mmpose(path: str | Path, *, layout: JointLayout | None = None,
                max_bodies: int = MAX_BODIES) -> Keypoints:
    """Read an MMPose result file; see :func:`mmpose_keypoints`."""
    return mmpose_keypoints(read_json(path), path, layout=layout, max_bodies=max_bodies)


def mmpose_keypoints(doc: Any, source: object, *, layout: JointLayout | None = None,
                     max_bodies: int = MAX_BODIES) -> Keypoints:
    """Keypoints from a parsed MMPose document (module docstring).

    Raises:
        SkeletonFormatError: naming ``source``, the frame and the instance: not one of the
            shapes, bad keypoints or scores, or a layout that cannot be told.
    """
    meta = None
    if isinstance(doc, dict):
        if not isinstance(doc.get("instance_info"), list):
            raise SkeletonFormatError(source, "expected 'instance_info' to be a list of frames")
        meta, frames = doc.get("meta_info"), doc["instance_info"]
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict) and "keypoints" in doc[0]:
        frames = [{"instances": doc}]  # one image
    elif isinstance(doc, list):
        frames = doc
    else:
        raise SkeletonFormatError(source, "expected an MMPose result: {\"instance_info\": "
                                          "[...]}, a list of frames or a list of instances")
    if not 0 < len(frames) <= MAX_FRAMES:
        raise SkeletonFormatError(source, f"expected 1..{MAX_FRAMES:,} frames, got "
                                          f"{len(frames):,}")
    raw = []
    for t, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("instances", []), list):
            raise SkeletonFormatError(source, f"frame {t}: expected {{\"frame_id\", "
                                              f"\"instances\": [...]}}")
        raw.extend((t, i, inst) for i, inst in enumerate(frame.get("instances", [])))
    tracked = any(isinstance(inst, dict) and "track_id" in inst for _, _, inst in raw)
    people = []
    for t, i, inst in raw:
        person = _person(inst, t, f"frame {t} instance {i}", source, tracked)
        if person is not None:
            people.append(person)
    coords, confidence, tracks = assemble_bodies(people, len(frames), source, tracked=tracked,
                                                 max_bodies=max_bodies)
    found = _layout(meta, coords.shape[2], coords.shape[3], layout, source)
    return Keypoints(coords, confidence, found, "px" if coords.shape[3] == 2 else "m", tracks)


def _person(inst: Any, t: int, where: str, source: object, tracked: bool) -> Person | None:
    if not isinstance(inst, dict) or "keypoints" not in inst:
        raise SkeletonFormatError(source, f"{where}: expected an object with 'keypoints'")
    track = inst.get("track_id")
    if tracked:
        if isinstance(track, bool) or not isinstance(track, (int, float)) or track < 0:
            return None  # dropped by MMPose's tracker (or untracked in a tracked file)
        track = int(track)
    coords = person_array(inst["keypoints"], source, f"{where} keypoints")
    scores = inst.get("keypoint_scores")
    confidence = (None if scores is None
                  else score_array(scores, len(coords), source, f"{where} keypoint_scores"))
    return Person(t, coords, confidence, track if tracked else None)


def _layout(meta: Any, joints: int, coords: int, declared: JointLayout | None,
            source: object) -> JointLayout:
    names = _meta_names(meta, source)
    if names is not None and len(names) != joints:
        raise SkeletonFormatError(source, f"meta_info.keypoint_id2name names {len(names)} "
                                          f"keypoints, the instances have {joints}")
    if declared is not None:
        if declared.num_joints != joints:
            raise SkeletonFormatError(source, f"layout {declared.name} has "
                                              f"{declared.num_joints} joints, the file {joints}")
        return declared
    if names is not None:
        for layout in BUILTIN_LAYOUTS.values():
            if list(layout.joint_names) == names:
                return layout
        raise SkeletonFormatError(
            source, f"the keypoints of meta_info ({joints} joints: {', '.join(names[:6])}, ...) "
                    "match no built-in layout; describe them in a layout .json file and pass it")
    if coords == 2 and joints == COCO17.num_joints:
        return COCO17
    raise SkeletonFormatError(
        source, f"{coords}-D keypoints of {joints} joints without meta_info: name their layout "
                "(a 3-D lifter's 17 joints are Human3.6M's, not COCO's)")


def _meta_names(meta: Any, source: object) -> list[str] | None:
    """Joint names from ``meta_info.keypoint_id2name`` (JSON keys are strings), or None."""
    if meta is None:
        return None
    names = meta.get("keypoint_id2name") if isinstance(meta, dict) else None
    if names is None:
        return None
    if (not isinstance(names, dict) or set(names) != {str(i) for i in range(len(names))}
            or not all(isinstance(n, str) for n in names.values())):
        raise SkeletonFormatError(source, "meta_info.keypoint_id2name: expected names for "
                                          "keypoints 0..V-1")
    return [names[str(i)] for i in range(len(names))]
