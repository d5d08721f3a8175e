"""Training throughput (samples/s): the project's loop vs a plain eager loop, same run, same model.

NTU shape: T=300, D=150 (2 bodies x 25 joints x 3), 60 classes, batch 128.

- baseline: plain eager PyTorch - random tensors already in memory, ``cross_entropy``,
  ``SGD(lr).step()``; no data pipeline, no L1, no mixed precision.
- project: :class:`restcn_training.engine.Trainer` on a synthetic packed NTU directory (the
  builder's format) - the real path: the split held as one tensor on the device, batches made
  there (window policy, crop, rotation about three axes, scale, shift: the default recipe's
  augmentation), L1 on conv kernels, Nesterov SGD, and on CUDA bf16/fp16 autocast
  (``--compile``: torch.compile too).

It also prints what that throughput means for one epoch of NTU60 cross-subject (40,091
training sequences).

    python benchmarks/train_throughput.py [--steps 3] [--rounds 3] [--device cpu|cuda|both]
                                          [--compile]

Run it under ``flock /tmp/restcn-cpu.lock`` on the shared CPU box.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restcn_training.config import DEFAULT_AUGMENTATION, TrainConfig
from restcn_training.engine import Trainer
from restcn_training.registry import create_model
from restcn_training.res_tcn import ResTCNConfig

T, BODIES, JOINTS, CLASSES, BATCH = 300, 2, 25, 60, 128
NTU60_XSUB_TRAIN = 40_091


def write_packed(root: Path, samples: int) -> None:
    """A synthetic packed NTU benchmark: ``samples`` sequences of 300 frames, 2 bodies."""
    rng = np.random.default_rng(0)
    for split, n in (("train", samples), ("test", 2)):
        x = rng.normal(0, 0.5, (n * T, BODIES, JOINTS, 3)).astype(np.float32)
        x[..., 2] += 3.0
        np.save(root / f"{split}_x.npy", x)
        np.save(root / f"{split}_offsets.npy", np.arange(n + 1, dtype=np.int64) * T)
        np.save(root / f"{split}_label.npy", np.arange(n, dtype=np.int64) % CLASSES)
        np.save(root / f"{split}_names.npy", np.array([f"S{i:04d}" for i in range(n)]))
    (root / "meta.json").write_text(json.dumps({
        "dataset": "synthetic", "benchmark": "throughput", "layout": "ntu25", "bodies": BODIES,
        "classes": [f"a{i}" for i in range(CLASSES)], "splits": {"train": samples, "test": 2}}))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainLoop:
    """Plain eager SGD steps on random tensors already in memory."""

    def __init__(self, device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.model = create_model("res-tcn", ResTCNConfig(BODIES * JOINTS * 3,
                                                          CLASSES).to_dict()).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.x = torch.randn(BATCH, T, BODIES * JOINTS * 3, device=device)  # (B, T, D)
        self.y = torch.randint(0, CLASSES, (BATCH,), device=device)

    def run(self, steps: int) -> float:
        """samples/s of ``steps`` steps."""
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(self.model(self.x), self.y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        _sync(self.device)
        return steps * BATCH / (time.perf_counter() - t0)


class ProjectLoop:
    """Epochs of the project's Trainer on the synthetic packed set (``steps`` batches each)."""

    def __init__(self, device: torch.device, root: Path, compile: bool, **recipe) -> None:
        """``recipe``: more TrainConfig fields (e.g. ``modality``, ``dropout``)."""
        recipe = {"augmentation": DEFAULT_AUGMENTATION, **recipe}
        cfg = TrainConfig(data=str(root), train_split="train", val_split="test", window=T,
                          window_policy="pad", batch_size=BATCH, epochs=1000,
                          device=device.type, compile=compile, out=str(root / "run"), **recipe)
        self.device = device
        self.trainer = Trainer(cfg)  # packs the data on the device, computes the mean
        self.epoch = 0

    def run(self, steps: int) -> float:
        """samples/s of one epoch (``steps`` batches)."""
        _sync(self.device)
        t0 = time.perf_counter()
        self.trainer.train_epoch(self.epoch)
        self.epoch += 1
        _sync(self.device)
        return steps * BATCH / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop (CPU)")
    parser.add_argument("--cuda-steps", type=int, default=120, help="timed steps per loop (CUDA)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating (plain, project) rounds after one untimed warm-up "
                        "round; the ratio is the median over rounds")
    parser.add_argument("--device", choices=("cpu", "cuda", "both"), default="both")
    parser.add_argument("--compile", action="store_true", help="torch.compile the project loop")
    args = parser.parse_args()
    devices = []
    if args.device in ("cpu", "both"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "both"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        else:
            print("cuda: not available on this machine, skipped")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; NTU shape T={T} "
          f"D={BODIES * JOINTS * 3} classes={CLASSES} batch={BATCH}")
    for device in devices:
        steps = args.steps if device.type == "cpu" else args.cuda_steps
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_packed(root, steps * BATCH)
            plain, project = PlainLoop(device), ProjectLoop(device, root, args.compile)
            plain.run(1)
            project.run(steps)  # warm-up (and compilation with --compile), not timed
            rounds = []
            for _ in range(args.rounds):  # alternating, so a load change hits both alike
                rounds.append((plain.run(steps), project.run(steps)))
        ratios = sorted(ours / base for base, ours in rounds)
        ours = statistics.median(o for _, o in rounds)
        base = statistics.median(b for b, _ in rounds)
        print(f"{device.type}: plain eager {base:8.1f} samples/s | restcn-train loop "
              f"{ours:8.1f} samples/s | ratio {statistics.median(ratios):.2f}x "
              f"(median of {args.rounds} rounds of {steps} steps, range "
              f"{ratios[0]:.2f}-{ratios[-1]:.2f})")
        print(f"{device.type}: one NTU60-xsub epoch ({NTU60_XSUB_TRAIN:,} sequences) at that "
              f"rate: {NTU60_XSUB_TRAIN / ours:.1f} s (plain eager: "
              f"{NTU60_XSUB_TRAIN / base:.1f} s)")


if __name__ == "__main__":
    main()
