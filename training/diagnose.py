"""Diagnosis pictures of a trained run: motion primitives (paper Figure 3) and conv1 filter
responses over time (Figure 8).

- Motion primitives: conv1 filter ``i`` has weights ``W_1[i] (D x f)``; read tap by tap, each
  tap is a ``D``-vector in the input's layout, i.e. a skeleton offset. ``mu + s * W_1[i][:, t]``
  for ``t = 0..f-1`` is a short moving skeleton (DESIGN section 4). Filter weights are small
  next to coordinates in metres, so one scale ``s`` for all filters (default: the largest joint
  offset of any filter becomes a quarter of the mean skeleton's height) makes the motion
  visible while keeping filters comparable.
- Responses: ``|W_1 * (X_0 - mu)|`` per filter and frame (conv1 without its bias, so "no
  response" reads as zero) for a few sequences of one class, windowed exactly as in training.

Works for Res-TCN and MS-Res-TCN (its main stream) alike: both have ``conv1`` and ``mean``.
matplotlib is imported only when drawing (:class:`restcn_infer.render.MissingVizError`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restcn_infer.errors import RestcnError
from restcn_infer.layouts import JointLayout
from restcn_infer.preprocess import unflatten
from restcn_infer.primitives import motion_primitives as primitives_from_filters
from restcn_infer.primitives import strongest_filters
from restcn_training.checkpoint import Checkpoint


class DiagnoseError(RestcnError, ValueError):
    """A run, data set, split or class cannot be diagnosed as asked."""


def load_run(run: str | os.PathLike[str]) -> tuple[Checkpoint, nn.Module]:
    """The checkpoint and eval-mode model of a run directory (``checkpoint.pt``) or a ``.pt``."""
    ckpt = Checkpoint.load(run)
    return ckpt, ckpt.build_model()


def motion_primitives(model: nn.Module, scale: float | None = None) -> tuple[np.ndarray, float]:
    """The model's conv1 filters as skeleton sequences ``(N, f, D)`` and the scale used
    (:func:`restcn_infer.primitives.motion_primitives`, on the decoded trunk's conv1)."""
    weight = model.decoded_trunk.conv1.weight.detach().double().numpy()  # (N, D, f)
    return primitives_from_filters(weight, model.mean.detach().double().numpy(), scale,
                                   model.features.coords)


def write_primitives(run: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                     scale: float | None = None, top: int | None = None) -> tuple[Path, float]:
    """Draw conv1 filters of ``run`` as moving skeletons into ``out_dir/primitives.png``: all of
    them in filter order, or the ``top`` ones of largest weight norm, largest first.

    Returns the PNG and the scale used.
    """
    from restcn_infer.plausibility import envelope_for
    from restcn_infer.render import render_primitives

    ckpt, model = load_run(run)
    prims, scale = motion_primitives(model, scale)  # (N, f, D)
    layout = ckpt.spec.input.layout
    spec = ckpt.spec.input
    skeletons = unflatten(prims, spec.bodies, spec.coords)  # (N, f, D) -> (N, M, f, V, C)
    skeletons = skeletons.swapaxes(1, 2)  # -> (N, f, M, V, C)
    weight = model.decoded_trunk.conv1.weight.detach().numpy()
    norms = np.linalg.norm(weight.reshape(len(prims), -1), axis=1)
    order = strongest_filters(weight, top)
    labels = [f"#{i} |w|={norms[i]:.2f}" for i in order]
    out = render_primitives(skeletons[order], layout, Path(out_dir) / "primitives.png",
                            labels=labels, highlight=ckpt.spec.target_joints,
                            y_down=envelope_for(ckpt.spec).y_down)
    return out, scale


def class_sequences(data: str | os.PathLike[str], split: str, class_name: str,
                    limit: int) -> tuple[list[np.ndarray], JointLayout]:
    """Up to ``limit`` raw sequences ``(M, T, V, C)`` of ``class_name`` in ``split`` of ``data``
    (a PYSKL pickle or a packed benchmark directory), in the data set's order."""
    from restcn_training.data import load_training_data

    dataset = load_training_data(data, split, split)
    if class_name not in dataset.classes:
        raise DiagnoseError(f"{data}: no class {class_name!r}; classes: "
                            f"{', '.join(dataset.classes)}")
    label = dataset.classes.index(class_name)
    picked = np.flatnonzero(dataset.val.labels == label)[:limit]
    if picked.size == 0:
        raise DiagnoseError(f"{data}: split {split!r} has no sequence of class {class_name!r}")
    return [dataset.val.sequence(int(i)) for i in picked], dataset.layout


@torch.no_grad()
def filter_responses(ckpt: Checkpoint, model: nn.Module, sequences: list[np.ndarray],
                     source_layout: JointLayout) -> np.ndarray:
    """``|W_1 * (X_0 - mu)|`` (conv1 without bias) for each sequence: ``(S, N, window)``."""
    spec = ckpt.spec.input
    x = np.stack([spec.prepare(seq, layout=source_layout) for seq in sequences])  # (S, window, D)
    x = torch.from_numpy(x) - model.mean  # (S, window, D)
    conv1 = model.decoded_trunk.conv1
    response = conv1(x.transpose(1, 2))  # (S, D, window) -> (S, N, window)
    if conv1.bias is not None:
        response = response - conv1.bias[:, None]
    return response.abs().numpy()


def write_responses(run: str | os.PathLike[str], data: str | os.PathLike[str], split: str,
                    class_name: str, out: str | os.PathLike[str], *, samples: int = 5) -> Path:
    """Plot conv1 response magnitudes over time for ``samples`` sequences of a class (Figure 8):
    one panel per sequence, one line per filter, a shared y axis so classes compare."""
    from restcn_infer.render import new_figure, save_png

    ckpt, model = load_run(run)
    sequences, layout = class_sequences(data, split, class_name, samples)
    responses = filter_responses(ckpt, model, sequences, layout)  # (S, N, T)
    fig = new_figure(2.2 * len(responses) + 0.6, 2.3)
    axes = fig.subplots(1, len(responses), sharey=True, squeeze=False)[0]
    top = float(responses.max()) * 1.05 or 1.0
    for i, (ax, resp) in enumerate(zip(axes, responses)):
        ax.plot(resp.T, linewidth=0.6, alpha=0.7)  # (T, N): one line per filter
        ax.set_ylim(0, top)
        ax.set_title(f"sample {i + 1}", fontsize=8)
        ax.set_xlabel("frame", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_ylabel("|conv1 response|", fontsize=7)
    fig.suptitle(f"{class_name} ({split}): conv1 filter response magnitudes", fontsize=9)
    fig.tight_layout(pad=0.4)
    return save_png(fig, out)
