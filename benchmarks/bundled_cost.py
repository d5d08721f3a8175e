"""What each bundled model costs per window, against the single Res-TCN, in the same run.

    python benchmarks/bundled_cost.py [--batch 1 64] [--rounds 5] [--repeats 30] [--decode]

Each model runs the same windows (the bundled examples, prepared to the model's input, repeated
to the batch size) through ``Classifier.run``, the session call ``classify`` and ``stream``
make; rounds alternate between the models so load from other processes falls on all of them
alike. Prints the median time per window and its ratio to ``res-tcn``, and each file's size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from restcn_infer.classifier import Classifier
from restcn_infer.models import BUNDLED_MODELS, bundled_model_path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "res-tcn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per round")
    parser.add_argument("--decode", action="store_true", help="also return decoded skeletons")
    args = parser.parse_args()

    models = {name: Classifier(name, device="cpu") for name in BUNDLED_MODELS}
    examples = [np.load(p) for p in sorted((REPO / "examples").glob("*.npy"))]
    windows = {name: np.stack([clf.prepare(seq) for seq in examples])  # (E, T, D)
               for name, clf in models.items()}
    print(f"providers {models[BASELINE].providers}; {len(examples)} example windows; "
          f"decode {args.decode}")
    for batch in args.batch:
        times: dict[str, list[float]] = {name: [] for name in models}
        inputs = {name: np.resize(w, (batch, *w.shape[1:])) for name, w in windows.items()}
        for name, clf in models.items():  # warm-up
            clf.run(inputs[name], decode=args.decode)
        for _ in range(args.rounds):
            for name, clf in models.items():
                start = time.perf_counter()
                for _ in range(args.repeats):
                    clf.run(inputs[name], decode=args.decode)
                times[name].append((time.perf_counter() - start) / (args.repeats * batch))
        base = statistics.median(times[BASELINE])
        print(f"\nbatch {batch}: | model | precision | size | ms per window | vs {BASELINE} |")
        for name, clf in models.items():
            per = statistics.median(times[name])
            size = bundled_model_path(name).stat().st_size / 1e6
            print(f"| {name} | {clf.metadata.export.get('precision', '?')} | {size:.1f} MB | "
                  f"{1000 * per:.3f} | {per / base:.2f}x |")


if __name__ == "__main__":
    main()
