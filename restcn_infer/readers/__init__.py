"""One entry point for every skeleton file format: :func:`read_keypoints`, and
:func:`load_sequence` for the sequences models read.

:func:`load_sequence` returns float32 ``(M, T, V, C)``: M bodies (zeros where a body is absent),
T frames, V joints in the file's layout, C = 3 (x, y, z; the default) or 2 (x, y, for 2-D
models: ``coords=2``). :func:`read_keypoints` returns
:class:`~restcn_infer.readers.keypoints.Keypoints`: coordinates ``(M, T, V, C)`` with C = 2 or
3, the confidence ``(M, T, V)`` apart, and the layout the source names. Formats
(:data:`FORMATS`; ``auto`` tells them by suffix and, for ``.json``, by content):

- ``skeleton``: NTU RGB+D raw text (``.skeleton``, :mod:`.ntu_skeleton`).
- ``npy``: a (T, V, C) or (M, T, V, C) float array (``.npy``); ``json``: restcn's
  ``{"frames": [...]}`` (:mod:`.arrays`).
- ``pyskl``: a PYSKL/mmaction2 annotation pickle holding one annotation (``.pkl``, :mod:`.pyskl`).
- ``mmpose``: MMPose / RTMPose result JSON (:mod:`.mmpose`).
- ``mediapipe``, ``mediapipe-world``, ``mediapipe-image``: MediaPipe pose landmarks saved as
  JSON, world (3-D, metres) or image (2-D) coordinates (:mod:`.mediapipe`).
- ``openpose``: a folder of OpenPose ``*_keypoints.json`` frames, or one of them
  (:mod:`.openpose`).

A ``.json`` file is parsed once to tell its format; a plain restcn sequence is then read by
:mod:`.arrays` (parsed a second time: name the format to skip the sniff).
"""

from __future__ import annotations

from dataclasses import replace
from os import PathLike
from pathlib import Path

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import NTU25, JointLayout
from restcn_infer.limits import MAX_BODIES, MAX_JSON_FILE_BYTES
from restcn_infer.readers.arrays import read_json_sequence, read_npy_sequence
from restcn_infer.readers.keypoints import DEFAULT_MIN_CONFIDENCE, Keypoints, read_json
from restcn_infer.readers.mediapipe import is_mediapipe, mediapipe_keypoints
from restcn_infer.readers.mmpose import is_mmpose, mmpose_keypoints
from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton
from restcn_infer.readers.openpose import (
    frame_people,
    is_openpose,
    openpose_keypoints,
    read_openpose,
)
from restcn_infer.readers.pyskl import read_pyskl_sequence

FORMATS = ("auto", "skeleton", "npy", "json", "pyskl", "mmpose", "mediapipe", "mediapipe-world",
           "mediapipe-image", "openpose")
_BY_SUFFIX = {".skeleton": "skeleton", ".npy": "npy", ".json": "json", ".pkl": "pyskl",
              ".pickle": "pyskl"}
_ARRAYS = {"skeleton": read_ntu_skeleton, "npy": read_npy_sequence, "json": read_json_sequence,
           "pyskl": read_pyskl_sequence}


def read_keypoints(path: str | PathLike[str], format: str = "auto", *,
                   layout: JointLayout | None = None, max_bodies: int = MAX_BODIES) -> Keypoints:
    """Read one recording (a file, or an OpenPose folder) as :class:`Keypoints`, unmasked.

    Args:
        format: one of :data:`FORMATS`.
        layout: the joints' layout where the file does not name one (an MMPose model of
            another data set, OpenPose's other models, a plain array of a shared joint count).
        max_bodies: people kept per recording (tracks seen in most frames first).

    Raises:
        SkeletonFormatError: missing, unreadable, of an unknown type, or malformed; the message
            names the file, the frame or line where known, and what was expected.
    """
    path = Path(path)
    if format not in FORMATS:
        raise SkeletonFormatError(path, f"unknown format {format!r}; expected one of {FORMATS}")
    if path.is_dir():
        if format not in ("auto", "openpose"):
            raise SkeletonFormatError(path, f"is a directory, expected a {format} file")
        return _checked(read_openpose(path, layout=layout, max_bodies=max_bodies), layout, path)
    explicit = format != "auto"
    if not explicit:
        format = _BY_SUFFIX.get(path.suffix.lower(), "")
        if not format:
            raise SkeletonFormatError(path, f"unknown file type {path.suffix!r}; expected one of "
                                            f"{sorted(_BY_SUFFIX)} or an OpenPose folder")
    if not path.is_file():
        raise SkeletonFormatError(path, "no such file")
    if format == "json" and not explicit:
        return _checked(_read_any_json(path, layout, max_bodies), layout, path)
    if format in _ARRAYS:
        known = NTU25 if format == "skeleton" else None
        return _checked(Keypoints(_ARRAYS[format](path), layout=known), layout, path)
    doc = read_json(path, MAX_JSON_FILE_BYTES)
    return _checked(_from_document(doc, format, path, layout, max_bodies), layout, path)


def load_sequence(path: str | PathLike[str], format: str = "auto", *,
                  min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                  coords: int | None = 3) -> np.ndarray:
    """Read one skeleton sequence as float32 ``(M, T, V, C)``, C = ``coords`` (3: x, y, z;
    2: x, y; None: as the file has them); joints scored below ``min_confidence`` are zero
    (absent).

    Raises:
        SkeletonFormatError: as :func:`read_keypoints`, and for keypoints of the other kind
            (2-D where 3-D are asked for, or the reverse).
    """
    return read_keypoints(path, format).masked(min_confidence).sequence(path, coords)


def _read_any_json(path: Path, layout: JointLayout | None, max_bodies: int) -> Keypoints:
    doc = read_json(path, MAX_JSON_FILE_BYTES)
    for fmt, looks_like in (("mmpose", is_mmpose), ("mediapipe", is_mediapipe),
                            ("openpose", is_openpose)):
        if looks_like(doc):
            return _from_document(doc, fmt, path, layout, max_bodies)
    del doc
    return Keypoints(read_json_sequence(path))


def _from_document(doc: object, format: str, path: Path, layout: JointLayout | None,
                   max_bodies: int) -> Keypoints:
    if format == "mmpose":
        return mmpose_keypoints(doc, path, layout=layout, max_bodies=max_bodies)
    if format.startswith("mediapipe"):
        coordinates = format.partition("-")[2] or "auto"
        return mediapipe_keypoints(doc, path, coordinates=coordinates, max_bodies=max_bodies)
    return openpose_keypoints(frame_people(doc, path, 0), 1, path, layout=layout,
                              max_bodies=max_bodies)


def _checked(keypoints: Keypoints, layout: JointLayout | None, path: Path) -> Keypoints:
    """``keypoints`` with ``layout`` where they name none; a layout of another joint count is
    refused."""
    if layout is None:
        return keypoints
    if layout.num_joints != keypoints.coords.shape[2]:
        raise SkeletonFormatError(path, f"layout {layout.name} has {layout.num_joints} joints, "
                                        f"the file {keypoints.coords.shape[2]}")
    return keypoints if keypoints.layout is not None else replace(keypoints, layout=layout)


__all__ = ["DEFAULT_MIN_CONFIDENCE", "FORMATS", "Keypoints", "load_sequence", "read_json_sequence",
           "read_keypoints", "read_npy_sequence", "read_ntu_skeleton", "read_pyskl_sequence"]
