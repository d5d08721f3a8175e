"""Which fusion rule for the ensemble? Chosen on a holdout of the training split, through the
runtime, never on the split that is reported.

    python benchmarks/ensemble_fusion.py RUN [RUN ...] --data D.pkl --split train \
        --holdout-match '_v02$' [--out fusion/]

The RUNs are members trained with the same ``--holdout-match`` (or ``--holdout-fraction``/
``--holdout-seed``), so the holdout is data none of them saw. Each member alone and the
ensemble under every fusion rule of :mod:`restcn_training.ensemble` (equal weights) are exported
to ``--out`` and evaluated with :func:`restcn_infer.evaluate.evaluate` on that holdout. It prints
the accuracy of each, members first, and the rule that wins.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from restcn_export.onnx_export import export_onnx
from restcn_infer.classifier import Classifier
from restcn_infer.datasets import open_dataset, with_holdout
from restcn_infer.evaluate import evaluate
from restcn_training.checkpoint import Checkpoint
from restcn_training.ensemble import FUSIONS, ensemble_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="member run directories")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", required=True, help="the split the holdout is carved from")
    parser.add_argument("--holdout-match", default=None)
    parser.add_argument("--holdout-fraction", type=float, default=0.0)
    parser.add_argument("--holdout-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the exported models here")
    parser.add_argument("--subsets", action="store_true",
                        help="then every subset of two or more members under the winning rule "
                        "(for a smaller ensemble)")
    args = parser.parse_args()

    dataset = open_dataset(args.data)
    dataset, holdout = with_holdout(dataset, args.split, fraction=args.holdout_fraction,
                                    match=args.holdout_match, seed=args.holdout_seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        sources = {}
        for run in args.runs:
            modality = Checkpoint.load(run).spec.config.get("modality", "joint")
            sources[f"member {run.parent.name}/{run.name} ({modality})"] = run
        for fusion in FUSIONS:
            sources[f"ensemble, fusion {fusion}"] = ensemble_checkpoint(args.runs, fusion=fusion)
        results = {name: runtime_accuracy(source, out / f"model{i}.onnx", dataset, holdout, name)
                   for i, (name, source) in enumerate(sources.items())}
        fused = {name: acc for name, acc in results.items() if name.startswith("ensemble")}
        best = max(fused, key=fused.get)
        print(f"best: {best} ({fused[best]:.4f})", flush=True)
        if args.subsets:
            fusion = best.rsplit(" ", 1)[1]
            names = list(sources)[:len(args.runs)]
            for size in range(2, len(args.runs)):
                for chosen in itertools.combinations(range(len(args.runs)), size):
                    label = "subset " + " + ".join(names[i].split("(")[1].rstrip(")")
                                                   for i in chosen)
                    runtime_accuracy(ensemble_checkpoint([args.runs[i] for i in chosen],
                                                         fusion=fusion),
                                     out / "subset.onnx", dataset, holdout, label)


def runtime_accuracy(source, path: Path, dataset, split: str, name: str) -> float:
    """Export ``source`` (a run or a Checkpoint) to ``path`` and evaluate it on ``split``
    through the runtime; prints the figure."""
    export_onnx(source, path, decoder_layers=())
    accuracy = evaluate(Classifier(path, device="cpu"), dataset, split).accuracy
    print(f"{name:40} {split} accuracy {accuracy:.4f} "
          f"({len(dataset.split(split))} sequences)", flush=True)
    return accuracy


if __name__ == "__main__":
    main()
