"""Plain array inputs for inference: ``.npy`` and ``.json`` sequences.

``.npy``: a float array (T, V, C) (one body) or (M, T, V, C), C = 3 (x, y, z) or 2 (x, y: a
2-D model's input). The header is read and checked
first (numeric dtype, rank, every axis and the element count within :mod:`restcn_infer.limits`,
the file exactly as long as the header claims), then exactly those bytes are read: never
unpickled, never allocated from an unchecked shape.

``.json``: an object ``{"layout": "ntu25", "frames": [...]}`` (``layout`` optional), where each
frame is either ``[[x, y, z], ...]`` (one body, V joints) or ``[[[x, y, z], ...], ...]``
(bodies x joints), or the same with ``[x, y]`` joints. A bare list of frames is accepted too.
Every frame must have the same shape.
It is parsed by :func:`restcn_infer.bounded_json.loads_bounded` (size, depth and number limits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restcn_infer.bounded_json import JsonInputError, loads_bounded
from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.layouts import get_layout
from restcn_infer.limits import (
    COORDS,
    MAX_FRAMES,
    MAX_JSON_FILE_BYTES,
    check_sequence_shape,
    check_shape,
    read_file_limited,
)

#: ``.npy`` header versions numpy writes for plain arrays (3.0 only adds UTF-8 field names).
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def check_sequence(seq: np.ndarray, source: object = None,
                   coords: tuple[int, ...] = (3,)) -> np.ndarray:
    """Validate and normalise a sequence to float32 ``(M, T, V, C)``, C one of ``coords``.

    Accepts (T, V, C) (one body) or (M, T, V, C). Rejects other ranks, a last axis not in
    ``coords``, an empty axis, sizes beyond :mod:`restcn_infer.limits` and non-finite values.
    """
    arr = np.asarray(seq)
    if arr.dtype.kind not in "fiu":
        raise SkeletonFormatError(source, f"expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in coords:
        shapes = " or ".join(f"(T, V, {c}) or (M, T, V, {c})" for c in sorted(coords, reverse=True))
        raise SkeletonFormatError(source, f"expected shape {shapes}, got {tuple(np.shape(seq))}")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise SkeletonFormatError(source, f"expected a non-empty sequence, got shape {arr.shape}")
    check_sequence_shape(arr.shape, source)
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise SkeletonFormatError(
            source, f"expected finite coordinates, got {arr[tuple(bad)]} at (body, frame, joint, "
            f"coord) = {tuple(int(i) for i in bad)}"
        )
    return arr


def read_npy_sequence(path: Path) -> np.ndarray:
    """A ``.npy`` sequence as float32 (M, T, V, C); never unpickles, and reads only what a
    checked header promises (see the module docstring)."""
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype = _npy_header(fh, path)
            count = check_shape(shape, path, "the .npy array")
            check_sequence_shape(shape, path)
            data_start = fh.tell()
            size = fh.seek(0, 2)
            if size - data_start != count * dtype.itemsize:
                raise SkeletonFormatError(
                    path, f"the header claims {shape} {dtype} ({count * dtype.itemsize:,} bytes) "
                          f"but the file holds {size - data_start:,} bytes of data")
            fh.seek(data_start)
            flat = np.fromfile(fh, dtype=dtype, count=count)
    except OSError as exc:
        raise SkeletonFormatError(path, f"cannot read file: {exc.strerror or exc}") from None
    arr = flat.reshape(shape, order="F" if fortran else "C")
    return check_sequence(arr, path, COORDS)


def _npy_header(fh, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a plain numeric ``.npy``, or SkeletonFormatError."""
    try:
        version = np.lib.format.read_magic(fh)
        read_header = _NPY_HEADERS.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(fh)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise SkeletonFormatError(path, f"expected a numpy .npy array: {exc}") from None
    if dtype.hasobject or dtype.kind not in "fiu" or dtype.shape:
        raise SkeletonFormatError(path, f"expected a numeric (int or float) .npy array, got "
                                        f"dtype {dtype} (object arrays would need pickle)")
    if len(shape) not in (3, 4) or shape[-1] not in COORDS:
        raise SkeletonFormatError(path, f"expected shape (T, V, 3) or (M, T, V, 3) (or 2 "
                                        f"coordinates, x y), got {shape}")
    return tuple(int(d) for d in shape), bool(fortran), dtype


def read_json_sequence(path: Path) -> np.ndarray:
    """A ``.json`` sequence (see module docstring) as float32 (M, T, V, C)."""
    data = read_file_limited(path, MAX_JSON_FILE_BYTES, "a .json sequence (use .npy)")
    try:
        doc = loads_bounded(data)
    except JsonInputError as exc:
        raise SkeletonFormatError(path, f"expected JSON: {exc.reason}", line=exc.line) from None
    frames = doc.get("frames") if isinstance(doc, dict) else doc
    if not isinstance(frames, list):
        raise SkeletonFormatError(path, 'expected a list of frames or {"frames": [...]}')
    seq = frames_to_sequence(frames, path)
    if isinstance(doc, dict) and "layout" in doc:
        _check_declared_layout(doc["layout"], seq.shape[2], path)
    return seq


def _check_declared_layout(name: object, num_joints: int, path: Path) -> None:
    """A ``"layout"`` a JSON file names must exist and have the file's joint count."""
    try:
        layout = get_layout(name)  # type: ignore[arg-type]
    except LayoutError as exc:
        raise SkeletonFormatError(path, f"field 'layout': {exc}") from None
    if layout.num_joints != num_joints:
        raise SkeletonFormatError(path, f"field 'layout' says {layout.name} "
                                        f"({layout.num_joints} joints), the frames have "
                                        f"{num_joints}")


def frames_to_sequence(frames: list, source: object = None) -> np.ndarray:
    """A list of per-frame joint lists (V x C or M x V x C, C = 3 or 2) as float32
    (M, T, V, C)."""
    if len(frames) > MAX_FRAMES:
        raise SkeletonFormatError(source, f"{len(frames):,} frames is more than the limit of "
                                          f"{MAX_FRAMES:,}")
    try:
        arr = np.array(frames, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        raise SkeletonFormatError(
            source, "expected every frame to be a V x 3 or M x V x 3 list of numbers of one shape"
        ) from None
    if arr.ndim == 3:  # (T, V, C), one body
        arr = arr[None]
    elif arr.ndim == 4:  # (T, M, V, C) -> (M, T, V, C)
        arr = arr.transpose(1, 0, 2, 3)
    else:
        raise SkeletonFormatError(
            source, f"expected frames of shape V x 3 or M x V x 3, got array of shape {arr.shape}"
        )
    return check_sequence(arr, source, COORDS)
