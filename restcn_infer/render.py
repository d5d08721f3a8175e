"""Draw skeleton sequences: decoded layers beside the input (paper Figures 4-6), motion primitives
(Figure 3), in the report's style (:mod:`restcn_infer.skeleton_style`: joints coloured by group,
left and right distinct, targeted joints ringed).

matplotlib (the ``viz`` extra) is imported inside the functions that draw; without it they raise
:class:`MissingVizError` whose message is the install hint. Figures are drawn on an Agg canvas
without pyplot, so nothing global changes. Skeletons are drawn as a front view of (x, y): x to the
right, y up (the Kinect camera frame), bones from the layout; 2-D keypoints are drawn as they
are, in the model's coordinates. Image coordinates have y pointing down: with ``y_down`` (the
model's envelope knows, :attr:`restcn_infer.envelope.Envelope.y_down`) the y axis of the picture
is inverted, so a person stands head up, as in the video, and left is still left. Decoded
layers are drawn at their display scale (:func:`display_scale`), so every panel shares one view
and motion sizes compare.

Output by suffix: ``.png`` a strip (one row per panel, a few evenly spaced frames across),
``.gif`` an animation (one panel per column).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from restcn_infer.atomic import atomic_write
from restcn_infer.errors import MissingDependencyError
from restcn_infer.layouts import JointLayout
from restcn_infer.motion import joint_motion_energy, reference_joints
from restcn_infer.skeleton_style import joint_style

VIZ_HINT = "drawing needs matplotlib: pip install 'restcn[viz]'"


class MissingVizError(MissingDependencyError):
    """matplotlib is not installed; the message is the install hint."""


def new_figure(width: float, height: float, dpi: int = 80):
    """A matplotlib Figure on its own Agg canvas (no pyplot state); :class:`MissingVizError`
    without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingVizError(VIZ_HINT) from None
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def display_scale(input_seq: np.ndarray, decoded: np.ndarray,
                  layout: JointLayout) -> np.ndarray:
    """Per decoded layer ``(L,)``: ``sqrt(E_in / E_dec)``, the same motion-matched scale the
    diagnosis uses (:func:`restcn_infer.diagnosis.display_scale`), over one sequence."""
    present = np.any(input_seq != 0, axis=-1)  # (M, T, V)
    reference = reference_joints(layout)
    e_in = joint_motion_energy(input_seq, reference).sum()
    e_dec = joint_motion_energy(decoded, reference, present[None]).sum(axis=-1)  # (L,)
    return np.sqrt(np.where(e_dec > 0, e_in / np.where(e_dec > 0, e_dec, 1.0), 1.0))


def scaled(decoded: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Decoded layers ``(L, M, T, V, C)`` drawn at their scale: ``mu + a_l (X_hat_l - mu)``,
    with ``mean`` the model's mean skeleton as ``(M, 1, V, C)``."""
    return mean + scale[:, None, None, None, None] * (decoded - mean)


def present_bodies(seq: np.ndarray) -> list[int]:
    """Bodies of ``(M, T, V, C)`` with any non-zero coordinate (absent bodies are all zeros)."""
    return [m for m in range(seq.shape[0]) if np.any(seq[m] != 0)] or [0]


def skeleton_limits(seqs: Sequence[np.ndarray], margin: float = 0.08) -> tuple[float, ...]:
    """``(x0, x1, y0, y1)`` of a square front view holding every joint of every ``(..., V, C)``."""
    xy = np.concatenate([s[..., :2].reshape(-1, 2) for s in seqs])  # (N, 2)
    xy = xy[np.all(np.isfinite(xy), axis=1) & np.any(xy != 0, axis=1)]
    if not len(xy):
        return -1.0, 1.0, -1.0, 1.0
    lo, hi = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    centre, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 1e-3) * (1 + margin)
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def draw_skeleton(ax, joints: np.ndarray, style: dict, present: np.ndarray | None = None,
                  alpha: float = 1.0, linewidth: float = 1.4) -> None:
    """One skeleton ``(V, C)`` as bones plus joint dots in ``style`` (see
    :func:`restcn_infer.skeleton_style.joint_style`), projected to (x, y); points outside
    ``present`` (default: the non-zero ones) are not drawn."""
    shown = np.any(joints != 0, axis=-1) if present is None else present
    marks = style["joints"]
    for child, parent in style["bones"]:
        if not (shown[child] and shown[parent]):
            continue
        joint = marks[child]
        ax.plot(joints[[child, parent], 0], joints[[child, parent], 1], color=joint["colour"],
                alpha=alpha, linewidth=linewidth * (1.8 if joint["highlight"] else 1.0),
                linestyle="--" if joint["side"] == "right" else "-", solid_capstyle="round")
    for j, joint in enumerate(marks):
        if shown[j]:
            ax.scatter(joints[j, 0], joints[j, 1], s=linewidth * (9 if joint["highlight"] else 3),
                       color=joint["colour"], alpha=alpha,
                       edgecolors="black" if joint["highlight"] else "none", linewidths=0.5)


def _blank(ax, limits: tuple[float, ...], y_down: bool = False) -> None:
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(*((limits[3], limits[2]) if y_down else (limits[2], limits[3])))
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.4)
        spine.set_color("#999999")


def frame_label(frames: np.ndarray | None, t: int) -> str:
    """``frame 12`` (the recording's frame shown at window frame ``t``), ``padding``, or the
    window frame when the recording's frames are unknown."""
    if frames is None:
        return f"window frame {t + 1}"
    f = frames[t]
    return "padding" if not np.isfinite(f) else f"frame {f:.0f}" if f == round(f) \
        else f"frame {f:.1f}"


def render_sequences(panels: Sequence[tuple[str, np.ndarray]], layout: JointLayout,
                     out: str | os.PathLike[str], *, frames: int = 6, title: str | None = None,
                     source_frames: np.ndarray | None = None, highlight: Iterable[int] = (),
                     max_gif_frames: int = 48, fps: int = 10, dpi: int = 80,
                     y_down: bool = False) -> Path:
    """Draw named sequences ``(M, T, V, C)`` (same ``T``) as a PNG strip or an animated GIF.

    Every panel shares one view (decoded layers are expected at their display scale) and draws
    the points present in the first panel (the input) only. ``source_frames (T,)`` are the
    recording's frame numbers of the ``T`` frames (labels); ``highlight`` joints are ringed;
    ``y_down``: the data's y axis points down (image keypoints), drawn inverted.

    Raises:
        MissingVizError: matplotlib is not installed.
        ValueError: unknown suffix.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"{out}: expected a .png or .gif file name")
    style = joint_style(layout, highlight)
    present = np.any(panels[0][1] != 0, axis=-1)  # (M, T, V): the input's points
    bodies = present_bodies(panels[0][1])
    limits = skeleton_limits([np.where(present[..., None], seq, 0)[bodies]
                              for _, seq in panels])
    length = panels[0][1].shape[1]

    def draw(ax, seq, t):
        for body in bodies:
            draw_skeleton(ax, seq[body, t], style, present[body, t])

    if suffix == ".png":
        times = np.linspace(0, length - 1, min(frames, length)).round().astype(int)
        height = 1.15 * len(panels) + (0.35 if title else 0)
        fig = new_figure(1.05 * len(times) + 0.9, height, dpi)
        axes = fig.subplots(len(panels), len(times), squeeze=False)
        for row, (name, seq) in enumerate(panels):
            for col, t in enumerate(times):
                ax = axes[row, col]
                _blank(ax, limits, y_down)
                draw(ax, seq, t)
                if row == 0:
                    ax.set_title(frame_label(source_frames, t), fontsize=7)
            axes[row, 0].set_ylabel(name, fontsize=8)
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - (0.35 / height if title else 0)))
        return save_png(fig, out)

    step = max(1, math.ceil(length / max_gif_frames))
    fig = new_figure(1.6 * len(panels), 2.0 + (0.25 if title else 0), dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    images = []
    for t in range(0, length, step):
        for ax, (name, seq) in zip(axes, panels):
            ax.clear()
            _blank(ax, limits, y_down)
            ax.set_title(name, fontsize=8)
            draw(ax, seq, t)
        fig.suptitle(f"{title + '  ' if title else ''}{frame_label(source_frames, t)}",
                     fontsize=8)
        images.append(_grab(fig))
    _save_gif(images, out, fps)
    return out


def _grab(fig):
    """The figure as a PIL image (Pillow ships with matplotlib)."""
    from PIL import Image

    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


def _save_gif(images: list, out: Path, fps: int) -> None:
    palette = [image.quantize(colors=32) for image in images]
    atomic_write(out, lambda fh: palette[0].save(
        fh, format="GIF", save_all=True, append_images=palette[1:], duration=int(1000 / fps),
        loop=0, optimize=True))


def save_png(fig, out: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``out`` atomically."""
    return atomic_write(out, lambda fh: fig.savefig(fh, format="png"))


def render_decoded(input_seq: np.ndarray, decoded: np.ndarray, layers: Sequence[int],
                   layout: JointLayout, out: str | os.PathLike[str], *,
                   mean: np.ndarray | None = None, title: str | None = None,
                   source_frames: np.ndarray | None = None, highlight: Iterable[int] = (),
                   frames: int = 6, y_down: bool = False) -> Path:
    """The input ``(M, T, V, C)`` beside its decoded layers ``(L, M, T, V, C)`` (Figures 4-6),
    each layer drawn at its display scale about ``mean`` (the model's mean skeleton ``(D,)``;
    default: the input's mean pose), so one view holds them all."""
    if mean is None:
        centre = input_seq[np.any(input_seq != 0, axis=-1)].mean(axis=0)  # (C,)
        mean_pose = np.broadcast_to(centre, input_seq[:, :1].shape)
    else:
        mean_pose = np.asarray(mean, np.float64).reshape(input_seq.shape[0], 1, -1,
                                                         input_seq.shape[-1])
    scale = display_scale(input_seq, decoded, layout)
    shown = scaled(decoded, mean_pose, scale)
    panels = [("input", input_seq)] + [(f"layer {layer} (x{a:.2f})", seq)
                                       for layer, a, seq in zip(layers, scale, shown)]
    return render_sequences(panels, layout, out, frames=frames, title=title,
                            source_frames=source_frames, highlight=highlight, y_down=y_down)


def render_primitives(primitives: np.ndarray, layout: JointLayout,
                      out: str | os.PathLike[str], *, columns: int = 8, dpi: int = 80,
                      labels: Sequence[str] | None = None,
                      highlight: Iterable[int] = (), y_down: bool = False) -> Path:
    """Motion primitives ``(N, f, M, V, C)`` as a grid of cells, one per filter (Figure 3).

    Each cell overlays the filter's ``f`` frames, faint (first tap) to dark (last tap), so the
    motion reads as a trail. ``labels`` (default ``#i``) name the cells.

    Raises:
        MissingVizError: matplotlib is not installed.
    """
    out = Path(out)
    n, f = primitives.shape[:2]
    rows = math.ceil(n / columns)
    fig = new_figure(1.0 * columns, 1.1 * rows, dpi)
    axes = fig.subplots(rows, columns, squeeze=False)
    style = joint_style(layout, highlight)
    bodies = present_bodies(primitives[0].swapaxes(0, 1))  # (f, M, V, C) -> (M, f, V, C)
    limits = skeleton_limits([primitives[:, :, bodies]])
    labels = labels or [f"#{i}" for i in range(n)]
    for i, ax in enumerate(axes.flat):
        _blank(ax, limits, y_down)
        if i >= n:
            ax.set_visible(False)
            continue
        for tap in range(f):
            alpha = 0.15 + 0.85 * tap / max(f - 1, 1)
            for body in bodies:
                draw_skeleton(ax, primitives[i, tap, body], style, alpha=alpha, linewidth=0.9)
        ax.set_title(labels[i], fontsize=6, pad=1)
    fig.tight_layout(pad=0.2)
    return save_png(fig, out)


def render_decode_result(result, out: str | os.PathLike[str], *, mean: np.ndarray,
                         sequence: np.ndarray | None = None, name: str = "",
                         policy: str = "resample", highlight: Iterable[int] = (),
                         y_down: bool = False) -> Path:
    """A :class:`restcn_infer.decode.DecodeResult` drawn as the report draws it: the title
    says the predicted class and its probability, frames carry the recording's frame numbers
    (from ``sequence``, the raw input, and the model's window ``policy``)."""
    from restcn_infer.preprocess import fit_bodies, window_frames

    z = np.asarray(result.logits, np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    title = f"{name + ': ' if name else ''}{result.predicted} (p = {p.max():.2f})"
    frames = None
    if sequence is not None:
        raw = fit_bodies(np.asarray(sequence), result.input.shape[0])
        frames = window_frames(raw, result.input.shape[1], policy)
    return render_decoded(result.input, result.decoded, result.layers, result.layout, out,
                          mean=mean, title=title, source_frames=frames, highlight=highlight,
                          y_down=y_down)
