"""The steps of the one preprocessing path shared by training, export checks, file inference and
streaming; :meth:`restcn_infer.spec.InputSpec.prepare` composes them for a model.

A sequence ``(M, T, V, C)`` (C = 3: x, y, z; C = 2: x, y) becomes a network input
``(window, D)`` in four steps:

1. :func:`adapt_layout` - the model's joints from the input's, matched by name, derived joints
   computed (:func:`~restcn_infer.layouts.layout_mapping`: e.g. a hip centre from the hips).
2. :func:`fit_bodies` - keep the first ``bodies`` bodies, add all-zero bodies where absent.
3. :func:`fit_window` - bring the frames to exactly ``window`` by the model's window policy.
4. :func:`flatten` - body-major features, ``index = body*V*C + joint*C + coord``.

Window policies (the model's metadata names one; training, export and serving all use it):

- ``resample`` (default): drop leading and trailing empty frames (every coordinate of every body
  zero), then linearly interpolate the remaining frames to ``window`` frames, first and last frame
  kept exactly (``positions = linspace(0, T-1, window)``). A single frame is repeated. Short
  datasets (NW-UCLA median 31 frames) and short live streams both fill the whole window.
- ``pad`` (the paper's NTU input): drop leading and trailing empty frames, then zero-pad at the
  end to ``window``; a longer sequence is resampled down as in ``resample`` so no part of the
  action is cut. Padding frames are raw zeros, like absent bodies: after the model subtracts
  the mean skeleton they read ``-mean``, exactly as in the paper's training data.

Raw coordinates throughout: no view or scale normalisation (the paper's principle), for 2-D
keypoints too (no division by the image size or the body's size: see
:class:`restcn_infer.spec.InputSpec`).
"""

from __future__ import annotations

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.layouts import JointLayout, layout_mapping

WINDOW_POLICIES = ("resample", "pad")


def adapt_layout(seq: np.ndarray, source: JointLayout, target: JointLayout) -> np.ndarray:
    """``(M, T, V_source, C)`` -> ``(M, T, V_target, C)`` by
    :meth:`~restcn_infer.layouts.LayoutMapping.apply` (joints by name, derived joints as the
    mean of their sources present in the frame); identity when the layouts are the same.

    Raises:
        LayoutError: target joints neither in ``source`` nor derivable from it.
    """
    if source.name == target.name:
        return seq
    return layout_mapping(source, target).apply(seq)


def fit_bodies(seq: np.ndarray, bodies: int) -> np.ndarray:
    """``(M, T, V, C)`` -> ``(bodies, T, V, C)``: extra bodies dropped, missing ones zero."""
    m = seq.shape[0]
    if m == bodies:
        return seq
    if m > bodies:
        return seq[:bodies]
    pad = np.zeros((bodies - m, *seq.shape[1:]), dtype=seq.dtype)
    return np.concatenate([seq, pad], axis=0)


def valid_span(seq: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of the frames between the first and last non-empty frame."""
    present = np.flatnonzero(np.any(seq != 0, axis=(0, 2, 3)))  # (T,) -> indices
    if present.size == 0:
        return 0, 0
    return int(present[0]), int(present[-1]) + 1


def resample_frames(seq: np.ndarray, length: int, axis: int = 1) -> np.ndarray:
    """Linear interpolation of ``(M, T, V, C)`` along time to ``(M, length, V, C)``, ends kept
    (time on ``axis``: 2 for a batch ``(B, M, T, V, C)``, the same arithmetic per sequence)."""
    t = seq.shape[axis]
    if t == length:
        return seq
    if t == 1:
        return np.repeat(seq, length, axis=axis)
    pos = np.linspace(0.0, t - 1, length)  # (length,)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    shape = [1] * seq.ndim
    shape[axis] = length
    w = (pos - lo).astype(np.float32).reshape(shape)  # (1, length, 1, 1) for one sequence
    return (np.take(seq, lo, axis=axis) * (1.0 - w)
            + np.take(seq, hi, axis=axis) * w).astype(np.float32)


def fit_window(seq: np.ndarray, window: int, policy: str = "resample") -> np.ndarray:
    """``(M, T, V, C)`` -> ``(M, window, V, C)`` by ``policy`` (see module docstring).

    Raises:
        SkeletonFormatError: the sequence has no non-empty frame.
        ValueError: unknown policy or window < 1.
    """
    if policy not in WINDOW_POLICIES:
        raise ValueError(f"unknown window policy {policy!r}; expected one of {WINDOW_POLICIES}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    start, stop = valid_span(seq)
    if stop == start:
        raise SkeletonFormatError(None, "expected at least one frame with a body, all are empty")
    seq = seq[:, start:stop]
    t = seq.shape[1]
    if policy == "pad" and t <= window:
        out = np.zeros((seq.shape[0], window, *seq.shape[2:]), dtype=np.float32)
        out[:, :t] = seq
        return out
    return resample_frames(seq, window)


def fit_windows(seqs: np.ndarray, window: int,
                policy: str = "resample") -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_window` of every sequence of a batch ``(B, M, T, V, C)`` at once:
    ``(fitted (B, M, window, V, C), ok (B,))``, equal row by row to :func:`fit_window`, bit for
    bit. ``ok`` is false (the row zero) for a sequence without a body. Like
    :func:`fit_window`, it may hand back ``seqs`` itself when nothing changes.

    Sequences whose first and last frames hold a body (a live window, nearly always) have
    nothing to drop and go through whole-batch steps; the others one by one.
    """
    if policy not in WINDOW_POLICIES:
        raise ValueError(f"unknown window policy {policy!r}; expected one of {WINDOW_POLICIES}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    b, m, t, v, c = seqs.shape
    ends = np.any(seqs[:, :, [0, t - 1]] != 0, axis=(1, 3, 4))  # (B, 2): first, last frame
    full = ends.all(axis=1)  # (B,) the valid span is the whole sequence
    if policy == "pad" and t <= window:
        whole = np.zeros((int(full.sum()), m, window, v, c), dtype=np.float32)
        whole[:, :, :t] = seqs[full]
    else:
        whole = resample_frames(seqs if full.all() else seqs[full], window, axis=2)
    if full.all():
        return whole, full
    out = np.zeros((b, m, window, v, c), dtype=np.float32)
    out[full] = whole
    ok = full.copy()
    for i in np.flatnonzero(~full):  # leading or trailing empty frames: one by one
        try:
            out[i] = fit_window(seqs[i], window, policy)
        except SkeletonFormatError:  # no body at all
            continue
        ok[i] = True
    return out, ok


def window_frames(seq: np.ndarray, window: int, policy: str = "resample") -> np.ndarray:
    """For each of the ``window`` frames :func:`fit_window` makes from ``seq (M, T, V, C)``,
    the frame of ``seq`` it shows (fractional where it interpolates; NaN for padding), so that
    pictures can say which frame of the recording they draw."""
    start, stop = valid_span(seq)
    t = max(stop - start, 1)
    if policy == "pad" and t <= window:
        positions = np.arange(window, dtype=np.float64)
        positions[t:] = np.nan
    elif t == 1:
        positions = np.zeros(window)
    else:
        positions = np.linspace(0.0, t - 1, window)
    return start + positions


def flatten(seq: np.ndarray) -> np.ndarray:
    """``(..., M, T, V, C)`` -> ``(..., T, M*V*C)``, body-major (``body*V*C + joint*C + coord``)."""
    *lead, m, t, v, c = seq.shape
    return np.ascontiguousarray(np.swapaxes(seq, -4, -3).reshape(*lead, t, m * v * c))


def unflatten(x: np.ndarray, bodies: int, coords: int = 3) -> np.ndarray:
    """``(..., T, D)`` -> ``(..., bodies, T, V, coords)``: the inverse of :func:`flatten`
    (``coords``: the model's ``InputSpec.coords``)."""
    *lead, t, d = x.shape
    v = d // (bodies * coords)
    if bodies * v * coords != d:
        raise ValueError(f"D={d} is not bodies({bodies}) x joints x {coords}")
    out = x.reshape(*lead, t, bodies, v, coords)  # (..., T, M, V, C)
    return np.moveaxis(out, -3, -4)  # (..., M, T, V, C)
