"""How long does the four-stream ensemble take to train on NTU60? A projection from measured
throughput, for when the data is there (none is on the development machine).

    python benchmarks/ntu_ensemble_time.py [--device cpu|cuda] [--steps 3] [--epochs 80]

For each member of the ensemble (the chosen recipe -- dropout 0.3, roll 10 -- on the joint, bone,
motion and bone-motion modalities) it times one epoch of ``steps`` batches of the project's
Trainer at the paper's NTU input (T=300 zero-padded, 2 bodies x 25 joints, batch 128; a
synthetic packed set, since throughput does not depend on the values) after one untimed
warm-up epoch, and projects ``epochs`` epochs of NTU60 cross-subject (40,091 training
sequences) and cross-view (37,646). The plain eager loop of ``train_throughput.py`` runs in the
same process as the baseline. The ensemble is trained member by member, so its time is the sum.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from train_throughput import BATCH, PlainLoop, ProjectLoop, write_packed

from restcn_infer.modality import MODALITIES
from restcn_training.config import DEFAULT_AUGMENTATION

NTU60_TRAIN = {"xsub": 40_091, "xview": 37_646}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed batches per member")
    parser.add_argument("--epochs", type=int, default=80, help="epochs of the projected run")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("cuda: not available on this machine")
    device = torch.device(args.device)
    print(f"torch {torch.__version__} on {device}; {args.steps} timed batches of {BATCH} per "
          f"member; projection for {args.epochs} epochs")
    total = dict.fromkeys(NTU60_TRAIN, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_packed(root, args.steps * BATCH)
        plain = PlainLoop(device)
        plain.run(1)
        base = plain.run(args.steps)
        print(f"plain eager loop (baseline): {base:.1f} samples/s")
        for modality in MODALITIES:
            loop = ProjectLoop(device, root, False, modality=modality, dropout=0.3,
                               augmentation=replace(DEFAULT_AUGMENTATION, roll=10.0))
            loop.run(args.steps)  # warm-up
            rate = loop.run(args.steps)
            hours = {b: n * args.epochs / rate / 3600 for b, n in NTU60_TRAIN.items()}
            for b in total:
                total[b] += hours[b]
            print(f"{modality:12} {rate:8.1f} samples/s ({rate / base:.2f}x plain) -> "
                  + ", ".join(f"{b} {h:.2f} h" for b, h in hours.items()))
    print("ensemble (members in turn): " + ", ".join(f"{b} {h:.2f} h" for b, h in total.items()))


if __name__ == "__main__":
    main()
