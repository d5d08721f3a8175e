"""Plain array inputs for inference: ``.npy`` and ``.json`` sequences.

``.npy``: a float array (T, V, 3) (one body) or (M, T, V, 3), loaded with ``allow_pickle=False``.

``.json``: an object ``{"layout": "ntu25", "frames": [...]}`` (``layout`` optional), where each
frame is either ``[[x, y, z], ...]`` (one body, V joints) or ``[[[x, y, z], ...], ...]``
(bodies x joints). A bare list of frames is accepted too. Every frame must have the same shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restcn_infer.errors import SkeletonFormatError


def check_sequence(seq: np.ndarray, source: object = None) -> np.ndarray:
    """Validate and normalise a sequence to float32 ``(M, T, V, 3)``.

    Accepts (T, V, 3) (one body) or (M, T, V, 3). Rejects other ranks, a last axis other than
    3, an empty time axis and non-finite values.
    """
    arr = np.asarray(seq)
    if arr.dtype.kind not in "fiu":
        raise SkeletonFormatError(source, f"expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise SkeletonFormatError(
            source, f"expected shape (T, V, 3) or (M, T, V, 3), got {tuple(np.shape(seq))}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise SkeletonFormatError(source, f"expected a non-empty sequence, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise SkeletonFormatError(
            source, f"expected finite coordinates, got {arr[tuple(bad)]} at (body, frame, joint, "
            f"coord) = {tuple(int(i) for i in bad)}"
        )
    return arr


def read_npy_sequence(path: Path) -> np.ndarray:
    """A ``.npy`` sequence as float32 (M, T, V, 3); never unpickles."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SkeletonFormatError(path, f"expected a numpy .npy array without pickles: {exc}"
                                  ) from None
    return check_sequence(arr, path)


def read_json_sequence(path: Path) -> np.ndarray:
    """A ``.json`` sequence (see module docstring) as float32 (M, T, V, 3)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SkeletonFormatError(path, f"expected UTF-8 JSON text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SkeletonFormatError(path, f"expected JSON: {exc.msg}", line=exc.lineno) from None
    frames = doc.get("frames") if isinstance(doc, dict) else doc
    if not isinstance(frames, list):
        raise SkeletonFormatError(path, 'expected a list of frames or {"frames": [...]}')
    return frames_to_sequence(frames, path)


def frames_to_sequence(frames: list, source: object = None) -> np.ndarray:
    """A list of per-frame joint lists (V x 3 or M x V x 3) as float32 (M, T, V, 3)."""
    try:
        arr = np.array(frames, dtype=np.float32)
    except (ValueError, TypeError):
        raise SkeletonFormatError(
            source, "expected every frame to be a V x 3 or M x V x 3 list of numbers of one shape"
        ) from None
    if arr.ndim == 3:  # (T, V, 3), one body
        arr = arr[None]
    elif arr.ndim == 4:  # (T, M, V, 3) -> (M, T, V, 3)
        arr = arr.transpose(1, 0, 2, 3)
    else:
        raise SkeletonFormatError(
            source, f"expected frames of shape V x 3 or M x V x 3, got array of shape {arr.shape}"
        )
    return check_sequence(arr, source)
