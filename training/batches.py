"""Training batches made on the device: a split held as one tensor, windowing and augmentation
as batched tensor operations (the same on CPU and CUDA).

A split is packed once (:class:`DeviceSplit`): every sequence in the model's joint layout and
body count, frames end to end in one tensor ``(F, M, V, C)`` with each sequence's valid span
(first to last frame with a body), on the training device when it fits, else in pinned host
memory from which each batch's frames are gathered and copied. A batch is then a few index
operations, for any number of sequences at once:

1. the crop (augmentation): ``keep`` of the span's ``t`` frames from ``first``, then the leading
   and trailing empty frames of the crop dropped (as ``fit_window`` does);
2. the window policy of :mod:`restcn_infer.preprocess`: the positions
   ``linspace(0, t'-1, window)`` (``pad``: ``0..t'-1`` then zeros when ``t' <= window``), their
   two neighbouring frames ``lo``, ``hi`` and weights ``w``, computed exactly as numpy does;
3. the rigid transform (augmentation) of those frames about the crop's centroid -- from prefix
   sums of the packed frames, so no per-sequence loop -- with absent joints kept at zero (2-D
   keypoints: its image-plane block, as :mod:`restcn_training.augment` defines it);
4. ``x = f[lo] * (1 - w) + f[hi] * w``, flattened body-major to ``(B, window, D)``.

The numpy definitions stay the reference: ``restcn_infer.spec.InputSpec.prepare`` (the window
policy) and :meth:`restcn_training.augment.Augmentation.apply` (the transforms, given the same
draws); ``tests/training/test_batches.py`` pins this module to them. Random draws come from a
CPU ``torch.Generator`` (the same on every device), a few numbers per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from restcn_infer.datasets import LabelledSplit
from restcn_infer.errors import DataError
from restcn_infer.preprocess import fit_bodies, valid_span
from restcn_infer.spec import InputSpec
from restcn_training.augment import Augmentation

#: Host memory may hold the frames when the device lacks this much free memory for them.
DEVICE_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class BatchDraws:
    """Random draws of a batch, ``(B,)`` each (``offset (B, 3)``), as :class:`Augmentation.draw`
    makes them one sequence at a time; ``offset`` is None when coordinates do not move."""

    keep: torch.Tensor
    first: torch.Tensor
    angle: torch.Tensor | None = None
    factor: torch.Tensor | None = None
    offset: torch.Tensor | None = None
    tilt: torch.Tensor | None = None
    roll: torch.Tensor | None = None

    @classmethod
    def draw(cls, augmentation: Augmentation, frames: torch.Tensor,
             generator: torch.Generator) -> BatchDraws:
        """Draws for sequences of ``frames`` valid frames ``(B,)`` (CPU int64), from ``generator``
        (same distributions as the per-sample reference; see :meth:`Augmentation.draw`)."""
        b = len(frames)

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            u = torch.rand(*(shape or (b,)), generator=generator, dtype=torch.float64)
            return low + (high - low) * u

        keep, first = frames.clone(), torch.zeros(b, dtype=torch.int64)
        if augmentation.crop < 1.0:
            crop = frames > 1
            wanted = torch.round(frames * uniform(augmentation.crop, 1.0)).long().clamp(min=1)
            keep = torch.where(crop, wanted, frames)
            first = torch.floor(torch.rand(b, generator=generator, dtype=torch.float64)
                                * (frames - keep + 1)).long()
        if not augmentation.moves:
            return cls(keep, first)
        radians = np.pi / 180.0
        return cls(keep, first,
                   angle=uniform(-augmentation.rotate, augmentation.rotate) * radians,
                   factor=uniform(1.0 - augmentation.scale, 1.0 + augmentation.scale),
                   offset=uniform(-augmentation.shift, augmentation.shift, b, 3),
                   tilt=uniform(-augmentation.tilt, augmentation.tilt) * radians,
                   roll=uniform(-augmentation.roll, augmentation.roll) * radians)

    def rotation(self) -> torch.Tensor:
        """``Rz(roll) @ Rx(tilt) @ (factor * Ry(angle))``, float64 ``(B, 3, 3)``."""
        zero, one = torch.zeros_like(self.angle), torch.ones_like(self.angle)

        def matrix(rows):
            return torch.stack([torch.stack(row, -1) for row in rows], -2)  # (B, 3, 3)

        c, s = torch.cos(self.angle), torch.sin(self.angle)
        ry = self.factor[:, None, None] * matrix([[c, zero, s], [zero, one, zero],
                                                  [-s, zero, c]])
        ca, sa = torch.cos(self.tilt), torch.sin(self.tilt)
        rx = matrix([[one, zero, zero], [zero, ca, -sa], [zero, sa, ca]])
        cr, sr = torch.cos(self.roll), torch.sin(self.roll)
        rz = matrix([[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
        return rz @ rx @ ry


class DeviceSplit:
    """A split packed for batched windowing on ``device`` (see the module docstring).

    Args:
        split: the labelled sequences.
        spec: the model's input (layout, bodies, window, policy).
        device: where batches are made.
        indices: the sequences of ``split`` to hold (a DDP rank's shard), default all.
    """

    def __init__(self, split: LabelledSplit, spec: InputSpec, device: torch.device,
                 indices: np.ndarray | None = None) -> None:
        indices = np.arange(len(split)) if indices is None else np.asarray(indices)
        self.spec = spec
        self.device = device
        chunks, spans = [], []
        offset = 0
        for i in indices:
            seq = fit_bodies(split.sequence(int(i)), spec.bodies)  # (M, T, V, C)
            start, stop = valid_span(seq)
            if stop == start:
                raise DataError(f"sequence {split.names[int(i)]}: no frame with a body")
            chunks.append(np.ascontiguousarray(seq[:, start:stop].transpose(1, 0, 2, 3),
                                               dtype=np.float32))  # (t, M, V, C)
            spans.append((offset, offset + stop - start))
            offset += stop - start
        frames = torch.from_numpy(np.concatenate(chunks))  # (F, M, V, C)
        self.coords = c = frames.shape[-1]
        span = torch.tensor(spans, dtype=torch.int64)  # (N, 2)
        self.labels = torch.as_tensor(np.asarray(split.labels)[indices], dtype=torch.int64)
        self.start, self.stop = span[:, 0], span[:, 1]
        # Per frame: is any joint present; prefix sums of the present points and their count
        # (the centroid of any frame range in O(1)); nearest non-empty frame either side.
        present = (frames != 0).any(dim=-1)  # (F, M, V)
        nonempty = present.flatten(1).any(dim=1)  # (F,)
        sums = frames.double().sum(dim=(1, 2))  # (F, C): absent points are zeros
        counts = present.flatten(1).sum(dim=1).double()  # (F,)
        self.sum_prefix = torch.cat([torch.zeros(1, c, dtype=torch.float64), sums.cumsum(0)])
        self.count_prefix = torch.cat([torch.zeros(1, dtype=torch.float64), counts.cumsum(0)])
        positions = torch.arange(len(frames))
        big = torch.full_like(positions, len(frames))
        marks = torch.where(nonempty, positions, big)
        self.next_nonempty = torch.flip(torch.cummin(torch.flip(marks, [0]), 0).values, [0])
        self.prev_nonempty = torch.cummax(torch.where(nonempty, positions, -1), 0).values
        on_device = self._fits(frames, device)
        store = device if on_device else torch.device("cpu")
        self.frames = frames.to(store)
        if not on_device and device.type == "cuda":
            self.frames = self.frames.pin_memory()
        for name in ("labels", "start", "stop", "sum_prefix", "count_prefix", "next_nonempty",
                     "prev_nonempty"):
            setattr(self, name, getattr(self, name).to(store))
        self.on_device = on_device

    @staticmethod
    def _fits(frames: torch.Tensor, device: torch.device) -> bool:
        if device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(device)
        return frames.numel() * frames.element_size() * 2 < DEVICE_MEMORY_SHARE * free

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> torch.Tensor:
        """Valid frames of every sequence ``(N,)``."""
        return self.stop - self.start

    def batch(self, index: torch.Tensor, draws: BatchDraws | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Network inputs ``(B, window, D)`` and labels ``(B,)`` on the device for sequences
        ``index (B,)`` (int64, positions in this split), augmented by ``draws`` when given."""
        store = self.frames.device
        index = index.to(store)
        start, stop = self.start[index], self.stop[index]  # (B,)
        if draws is not None:  # the crop, then its empty ends dropped (unless it is all empty)
            first = start + draws.first.to(store)
            last = first + draws.keep.to(store)  # exclusive
            cut_start = self.next_nonempty[first]
            cut_stop = self.prev_nonempty[last - 1] + 1
            keep = cut_start < cut_stop
            start = torch.where(keep, cut_start, start)
            stop = torch.where(keep, cut_stop, stop)
        lo, hi, w, inside = self._positions(start, stop)  # (B, window) each
        a, b = self.frames[lo], self.frames[hi]  # (B, window, M, V, C)
        a, b, w, inside = (t.to(self.device, non_blocking=True) for t in (a, b, w, inside))
        if draws is not None and draws.offset is not None:
            c = self.coords
            center = self._centroid(start, stop).float().to(self.device)  # (B, C), as numpy's
            rotation = draws.rotation()[:, :c, :c].float().to(self.device)  # (B, C, C)
            shift = (center.double() + draws.offset[:, :c].to(self.device)).float()  # (B, C)
            a, b = (self._move(p, center, rotation, shift) for p in (a, b))
        # the interpolation weights carry the padding mask: frames outside the sequence are 0
        wb = (w * inside)[..., None, None, None]  # (B, window, 1, 1, 1)
        wa = ((1.0 - w) * inside)[..., None, None, None]
        x = a * wa + b * wb  # (B, window, M, V, C)
        return x.flatten(2), self.labels[index].to(self.device)  # (B, window, D), (B,)

    def _positions(self, start: torch.Tensor, stop: torch.Tensor):
        """Frame indices ``lo``, ``hi`` (absolute), weights ``w`` (float32) and the mask of
        output frames inside the sequence, all ``(B, window)``: the window policy of
        ``restcn_infer.preprocess.fit_window`` with numpy's ``linspace`` arithmetic."""
        window, t = self.spec.window, stop - start  # t: (B,)
        j = torch.arange(window, device=t.device, dtype=torch.float64)  # (window,)
        if window > 1:
            step = (t - 1).double() / (window - 1)  # (B,)
            pos = j[None, :] * step[:, None]  # (B, window)
            pos[:, -1] = (t - 1).double()  # linspace ends exactly at the last frame
        else:
            pos = torch.zeros(len(t), 1, dtype=torch.float64, device=t.device)
        inside = torch.ones(pos.shape, dtype=torch.bool, device=t.device)
        if self.spec.policy == "pad":
            short = (t <= window)[:, None]  # zero-pad instead of stretching
            pos = torch.where(short, j[None, :].expand_as(pos), pos)
            inside = ~short | (j[None, :] < t[:, None])
        lo = torch.floor(pos).long()
        hi = torch.minimum(lo + 1, (t - 1)[:, None])
        w = (pos - lo).float()
        lo, hi = torch.minimum(lo, (t - 1)[:, None]), hi  # padding positions read the last
        return start[:, None] + lo, start[:, None] + hi, w, inside

    def _centroid(self, start: torch.Tensor, stop: torch.Tensor) -> torch.Tensor:
        """Mean of the present points in frames ``[start, stop)``: ``(B, C)`` float64."""
        total = self.sum_prefix[stop] - self.sum_prefix[start]  # (B, C)
        count = (self.count_prefix[stop] - self.count_prefix[start]).clamp(min=1)  # (B,)
        return total / count[:, None]

    @staticmethod
    def _move(points: torch.Tensor, center: torch.Tensor, rotation: torch.Tensor,
              shift: torch.Tensor) -> torch.Tensor:
        """``R (p - c) + c + o`` for the present points of ``(B, W, M, V, C)``; absent stay 0."""
        b = points.shape[0]
        flat = points.reshape(b, -1, points.shape[-1])  # (B, P, C)
        present = (flat != 0).any(dim=-1, keepdim=True)  # (B, P, 1)
        moved = torch.baddbmm(shift[:, None, :], flat - center[:, None, :],
                              rotation.transpose(1, 2))  # (B, P, C): (p - c) R^T + (c + o)
        return moved.mul_(present).reshape(points.shape)  # absent points stay exactly 0


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one epoch's order and draws: a function of (seed, epoch, rank), so a
    resumed run sees exactly what an uninterrupted one would."""
    sequence = np.random.SeedSequence([seed, epoch, rank])
    return torch.Generator().manual_seed(int(sequence.generate_state(1, np.uint64)[0] >> 1))
