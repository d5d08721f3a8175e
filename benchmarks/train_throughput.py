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

    python benchmarks/train_throughput.py [--steps 3] [--device cpu|cuda|both] [--compile]

Run it under ``flock /tmp/restcn-cpu.lock`` on the shared CPU box.
"""

from __future__ import annotations

import argparse
import json
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


def plain_loop(device: torch.device, steps: int) -> float:
    """samples/s of plain eager SGD steps (one untimed warm-up step)."""
    torch.manual_seed(0)
    model = create_model("res-tcn", ResTCNConfig(BODIES * JOINTS * 3, CLASSES).to_dict()).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, T, BODIES * JOINTS * 3, device=device)  # (B, T, D)
    y = torch.randint(0, CLASSES, (BATCH,), device=device)
    for step in range(steps + 1):
        if step == 1:
            _sync(device)
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    return steps * BATCH / (time.perf_counter() - t0)


def project_loop(device: torch.device, steps: int, root: Path, compile: bool) -> float:
    """samples/s of one epoch (``steps`` batches) of the project's Trainer, its first step
    included (the plain loop before it has warmed the same kernels; with ``compile`` an
    untimed epoch compiles first)."""
    cfg = TrainConfig(data=str(root), train_split="train", val_split="test", window=T,
                      window_policy="pad", batch_size=BATCH, epochs=1,
                      augmentation=DEFAULT_AUGMENTATION, device=device.type,
                      compile=compile, out=str(root / "run"))
    trainer = Trainer(cfg)  # packs the data on the device, computes the mean: not timed
    if compile:
        trainer.train_epoch(0)
    _sync(device)
    t0 = time.perf_counter()
    trainer.train_epoch(0)
    _sync(device)
    return steps * BATCH / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop (CPU)")
    parser.add_argument("--cuda-steps", type=int, default=120, help="timed steps per loop (CUDA)")
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
            plain = plain_loop(device, steps)
            ours = project_loop(device, steps, root, args.compile)
        print(f"{device.type}: plain eager {plain:8.1f} samples/s | restcn-train loop "
              f"{ours:8.1f} samples/s | ratio {ours / plain:.2f}x ({steps} steps each)")
        print(f"{device.type}: one NTU60-xsub epoch ({NTU60_XSUB_TRAIN:,} sequences) at that "
              f"rate: {NTU60_XSUB_TRAIN / ours:.1f} s (plain eager: "
              f"{NTU60_XSUB_TRAIN / plain:.1f} s)")


if __name__ == "__main__":
    main()
