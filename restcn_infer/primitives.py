"""Motion primitives (paper Figure 3): conv1's filters drawn as short moving skeletons.

Filter ``i`` of conv1 has weights ``W_1[i] (D, f)``; read tap by tap, each tap is a ``D``-vector
in the input's layout, a skeleton offset, so ``mu + s * W_1[i][:, t]`` for ``t = 0..f-1`` is a
moving skeleton (DESIGN section 4). Filter weights are small next to coordinates in metres, so
one scale ``s`` for all filters -- by default the largest joint offset of any filter becomes a
quarter of the mean skeleton's height -- makes the motion visible while keeping filters
comparable. The weights come from a deployed model's ``filters`` output or from a checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def motion_primitives(filters: np.ndarray, mean: np.ndarray,
                      scale: float | None = None, coords: int = 3) -> tuple[np.ndarray, float]:
    """conv1 weights ``(N, D, f)`` as skeleton sequences ``(N, f, D)`` = ``mu + s * W[i][:, t]``.

    Returns the primitives (float32) and the scale ``s`` used (``None``: module docstring);
    ``coords``: coordinates per joint of the model's input.
    """
    weight = np.asarray(filters, dtype=np.float64)  # (N, D, f)
    mu = np.asarray(mean, dtype=np.float64)  # (D,)
    offsets = weight.transpose(0, 2, 1)  # (N, D, f) -> (N, f, D)
    if scale is None:
        joints = offsets.reshape(*offsets.shape[:2], -1, coords)  # (N, f, M*V, C)
        largest = float(np.linalg.norm(joints, axis=-1).max()) if joints.size else 0.0
        height = float(np.ptp(mu.reshape(-1, coords)[:, 1]))  # y extent of the mean skeleton
        scale = 0.25 * height / largest if largest > 0 and height > 0 else 1.0
    return (mu + scale * offsets).astype(np.float32), float(scale)


def strongest_filters(filters: np.ndarray, top: int | None) -> np.ndarray:
    """Filter indices by weight norm, largest first (all of them, in order, when ``top`` is
    None)."""
    norms = np.linalg.norm(np.asarray(filters).reshape(len(filters), -1), axis=1)
    if top is None:
        return np.arange(len(filters))
    return np.argsort(-norms, kind="stable")[:top]


def write_model_primitives(classifier, out_dir: str | os.PathLike[str], *,
                           scale: float | None = None, top: int | None = None
                           ) -> tuple[Path, float]:
    """Draw a deployed model's conv1 filters (its ``filters`` output) as moving skeletons into
    ``out_dir/primitives.png``: the strongest ``top`` (all: filter order). Returns the PNG and
    the scale used.

    Raises:
        ModelError: the model was exported without the ``filters`` output.
        MissingVizError: matplotlib is not installed.
    """
    from restcn_infer.diagnosis import run_outputs
    from restcn_infer.errors import ModelError
    from restcn_infer.preprocess import unflatten
    from restcn_infer.render import render_primitives

    if "filters" not in {o.name for o in classifier.session.get_outputs()}:
        raise ModelError(f"{classifier.model_path}: exported before conv1's filters were part "
                         "of the graph; re-export it, or pass its checkpoint")
    spec = classifier.spec
    probe = np.broadcast_to(spec.mean_array, (1, spec.input.window, spec.input.D))
    (filters,) = run_outputs(classifier, probe, ["filters"])  # (N, D, f)
    prims, used = motion_primitives(filters, spec.mean_array, scale,
                                    spec.input.coords)  # (N, f, D)
    skeletons = unflatten(prims, spec.input.bodies,
                          spec.input.coords).swapaxes(1, 2)  # (N, f, M, V, C)
    norms = np.linalg.norm(filters.reshape(len(filters), -1), axis=1)
    order = strongest_filters(filters, top)
    out = render_primitives(skeletons[order], spec.input.layout, Path(out_dir) / "primitives.png",
                            labels=[f"#{i} |w|={norms[i]:.2f}" for i in order],
                            highlight=spec.target_joints,
                            y_down=classifier.checker.envelope.y_down)
    return out, used
