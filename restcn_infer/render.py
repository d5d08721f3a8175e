"""Draw skeleton sequences: decoded layers beside the input (paper Figures 4-6), motion primitives
(Figure 3).

matplotlib (the ``viz`` extra) is imported inside the functions that draw; without it they raise
:class:`MissingVizError` whose message is the install hint. Figures are drawn on an Agg canvas
without pyplot, so nothing global changes. Skeletons are drawn as a front view: x to the right,
y up (the Kinect camera frame), bones from the layout.

Output by suffix: ``.png`` a strip (one row per panel, a few evenly spaced frames across),
``.gif`` an animation (one panel per column).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restcn_infer.atomic import atomic_write
from restcn_infer.errors import MissingDependencyError

VIZ_HINT = "drawing needs matplotlib: pip install 'restcn[viz]'"
INPUT_COLOR, DECODED_COLOR = "#222222", "#1f5fbf"


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


def present_bodies(seq: np.ndarray) -> list[int]:
    """Bodies of ``(M, T, V, 3)`` with any non-zero coordinate (absent bodies are all zeros)."""
    return [m for m in range(seq.shape[0]) if np.any(seq[m] != 0)] or [0]


def skeleton_limits(seqs: Sequence[np.ndarray], margin: float = 0.08) -> tuple[float, ...]:
    """``(x0, x1, y0, y1)`` of a square front view holding every joint of every ``(..., V, 3)``."""
    xy = np.concatenate([s[..., :2].reshape(-1, 2) for s in seqs])  # (N, 2)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    lo, hi = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    centre, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 1e-3) * (1 + margin)
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def draw_skeleton(ax, joints: np.ndarray, bones: Sequence[tuple[int, int]], color: str,
                  alpha: float = 1.0, linewidth: float = 1.4) -> None:
    """One skeleton ``(V, 3)`` as bones plus joint dots, projected to (x, y)."""
    for child, parent in bones:
        ax.plot(joints[[child, parent], 0], joints[[child, parent], 1], color=color, alpha=alpha,
                linewidth=linewidth, solid_capstyle="round")
    ax.scatter(joints[:, 0], joints[:, 1], s=linewidth * 2, color=color, alpha=alpha, linewidths=0)


def _blank(ax, limits: tuple[float, ...]) -> None:
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.4)
        spine.set_color("#999999")


def _draw_frame(ax, seq: np.ndarray, t: int, bodies: list[int], bones, color: str) -> None:
    for body in bodies:
        draw_skeleton(ax, seq[body, t], bones, color)


def render_sequences(panels: Sequence[tuple[str, np.ndarray]], bones: Sequence[tuple[int, int]],
                     out: str | os.PathLike[str], *, frames: int = 6, title: str | None = None,
                     max_gif_frames: int = 48, fps: int = 10, dpi: int = 80) -> Path:
    """Draw named sequences ``(M, T, V, 3)`` (same ``T``) as a PNG strip or an animated GIF.

    The first panel is drawn in dark grey (the input), the others in blue (decoded); only the
    bodies present in the first panel are drawn in every panel. Each panel has its own view
    (decoded layers can be several times larger than the input); a panel zoomed out more than
    15% from the first is labelled with its scale, e.g. ``layer 4 (1/3.9 scale)``.

    Args:
        panels: ``(title, sequence)`` pairs, e.g. ``[("input", x), ("layer 1", d1), ...]``.
        bones: ``(child, parent)`` joint pairs of the layout.
        out: ``.png`` (``frames`` evenly spaced frames per row) or ``.gif``.
        max_gif_frames: a GIF shows every k-th frame so that it has at most this many.

    Raises:
        MissingVizError: matplotlib is not installed.
        ValueError: unknown suffix.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"{out}: expected a .png or .gif file name")
    bodies = present_bodies(panels[0][1])
    # Each panel gets its own view: decoded layers can be many times larger than the input, and a
    # shared view shrinks the input to a few pixels. The label says how far a panel is zoomed out.
    limits = [skeleton_limits([seq[bodies]]) for _, seq in panels]
    zoom = [(lim[1] - lim[0]) / (limits[0][1] - limits[0][0]) for lim in limits]
    names = [name if z < 1.15 else f"{name}\n(1/{z:.1f} scale)" for (name, _), z in
             zip(panels, zoom)]
    colors = [INPUT_COLOR] + [DECODED_COLOR] * (len(panels) - 1)
    length = panels[0][1].shape[1]
    if suffix == ".png":
        times = np.linspace(0, length - 1, min(frames, length)).round().astype(int)
        height = 1.1 * len(panels) + (0.3 if title else 0)
        fig = new_figure(1.05 * len(times) + 0.9, height, dpi)
        axes = fig.subplots(len(panels), len(times), squeeze=False)
        for row, ((_, seq), color) in enumerate(zip(panels, colors)):
            for col, t in enumerate(times):
                ax = axes[row, col]
                _blank(ax, limits[row])
                _draw_frame(ax, seq, t, bodies, bones, color)
                if row == 0:
                    ax.set_title(f"frame {t}", fontsize=7)
            axes[row, 0].set_ylabel(names[row], fontsize=8)
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - (0.3 / height if title else 0)))
        return save_png(fig, out)

    step = max(1, math.ceil(length / max_gif_frames))
    fig = new_figure(1.6 * len(panels), 2.0 + (0.2 if title else 0), dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    images = []
    for t in range(0, length, step):
        for ax, (_, seq), color, lim, name in zip(axes, panels, colors, limits, names):
            ax.clear()
            _blank(ax, lim)
            ax.set_title(name, fontsize=8)
            _draw_frame(ax, seq, t, bodies, bones, color)
        fig.suptitle(f"{title + '  ' if title else ''}frame {t}", fontsize=8)
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
                   bones: Sequence[tuple[int, int]], out: str | os.PathLike[str], *,
                   title: str | None = None, frames: int = 6) -> Path:
    """The input ``(M, T, V, 3)`` beside its decoded layers ``(L, M, T, V, 3)`` (Figures 4-6)."""
    panels = [("input", input_seq)] + [(f"layer {layer}", seq)
                                       for layer, seq in zip(layers, decoded)]
    return render_sequences(panels, bones, out, frames=frames, title=title)


def render_primitives(primitives: np.ndarray, bones: Sequence[tuple[int, int]],
                      out: str | os.PathLike[str], *, columns: int = 8, dpi: int = 80,
                      labels: Sequence[str] | None = None) -> Path:
    """Motion primitives ``(N, f, M, V, 3)`` as a grid of cells, one per filter (Figure 3).

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
    bodies = present_bodies(primitives[0].swapaxes(0, 1))  # (f, M, V, 3) -> (M, f, V, 3)
    limits = skeleton_limits([primitives[:, :, bodies]])
    labels = labels or [f"#{i}" for i in range(n)]
    for i, ax in enumerate(axes.flat):
        _blank(ax, limits)
        if i >= n:
            ax.set_visible(False)
            continue
        for tap in range(f):
            alpha = 0.15 + 0.85 * tap / max(f - 1, 1)
            for body in bodies:
                draw_skeleton(ax, primitives[i, tap, body], bones, DECODED_COLOR, alpha=alpha,
                              linewidth=0.9)
        ax.set_title(labels[i], fontsize=6, pad=1)
    fig.tight_layout(pad=0.2)
    return save_png(fig, out)
