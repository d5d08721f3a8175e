"""The results table: each modality and their ensemble, final epoch, mean ± std over seeds,
measured through the runtime on the reported split.

    python benchmarks/ensemble_results.py [--runs runs/recipe/final] [--datasets nw_ucla,utd_mhad]
        [--fusion logprob] [--json results.json]

Reads the runs ``recipe_sweep.py --final --variants recipe-joint,recipe-bone,recipe-motion,
recipe-bone-motion`` trained (``<runs>/<dataset>/recipe-<modality>/seed<k>``). For every seed
whose four members all finished, each member and the ensemble of the four (equal weights, the
fusion rule chosen on the holdouts by ``ensemble_fusion.py``) are exported and evaluated with
:func:`restcn_infer.evaluate.evaluate` -- the path ``restcn-infer evaluate`` takes -- on the
split the runs validated on (NW-UCLA ``val``: view 3; UTD-MHAD ``xsub_val``). It prints one row
per modality and the ensemble: mean ± std over seeds and the per-seed figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from ensemble_fusion import runtime_accuracy
from fix_experiment import DATASETS, REPO

from restcn_infer.datasets import open_dataset
from restcn_infer.modality import MODALITIES
from restcn_training.ensemble import FUSIONS, ensemble_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "recipe" / "final")
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    parser.add_argument("--fusion", choices=FUSIONS, default="logprob")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            data_path, _, val_split = DATASETS[dataset]
            data = open_dataset(data_path)
            seeds = sorted({p.name for p in (args.runs / dataset / "recipe-joint").glob("seed*")})
            table = results.setdefault(dataset, {})
            for seed in seeds:
                members = [args.runs / dataset / f"recipe-{m}" / seed for m in MODALITIES]
                if not all((m / "metrics.json").exists() for m in members):
                    print(f"{dataset} {seed}: not every member finished; left out", flush=True)
                    continue
                for modality, run in zip(MODALITIES, members):
                    acc = runtime_accuracy(run, Path(tmp) / "m.onnx", data, val_split,
                                           f"{dataset} {seed} {modality}")
                    table.setdefault(modality, []).append(acc)
                acc = runtime_accuracy(ensemble_checkpoint(members, fusion=args.fusion),
                                       Path(tmp) / "e.onnx", data, val_split,
                                       f"{dataset} {seed} ensemble ({args.fusion})")
                table.setdefault("ensemble", []).append(acc)
    print(f"\nfinal-epoch accuracy through the runtime, mean ± std over seeds ({args.runs})")
    for dataset, table in results.items():
        for name, accs in table.items():
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"{dataset:9} {name:12} {statistics.fmean(accs):.4f} ± {std:.4f}  "
                  + " ".join(f"{a:.4f}" for a in accs) + f"  (n={len(accs)})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
