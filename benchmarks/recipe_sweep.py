"""Which recipe changes generalise? Res-TCN on NW-UCLA and UTD-MHAD, several seeds per variant,
chosen on a holdout carved from the *training* split -- never on the split that is reported.

    python benchmarks/recipe_sweep.py [--variants default,rot90,...] [--seeds 0,1,2]
                                      [--parallel N --lock ''] [--deadline SECONDS]
                                      [--train-args '--device cuda'] [--final]

Selection (the default) validates on a holdout that mimics each protocol inside the training
split: NW-UCLA (cross-view, trained on views 1+2) trains on view 1 and validates on view 2
(``--holdout-match _v02$``); UTD-MHAD (cross-subject, trained on subjects 1 3 5 7) holds out
subject 7 (``--holdout-match _s7_``). ``--final`` trains the variants on the whole training
split and validates on the reported split (view 3; subjects 2 4 6 8): only for the variants
chosen on the holdout, to report them.

Each variant is a set of restcn-train options added to the default recipe, the same for both
datasets, except that UTD-MHAD (about 430 training sequences) runs 1.5x the epochs of
NW-UCLA (about 1000), so both see a similar number of optimizer steps. Runs go to
``<out>/<selection|final>/<dataset>/<variant>/seed<k>/`` in seed-major order, so a sweep cut
short by ``--deadline`` (no new run starts after it) still compares every variant on the first
seeds; finished runs are skipped when the sweep is run again. It prints the final validation
accuracy, mean ± std over seeds, per variant and dataset, and writes ``summary.json`` there.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
from pathlib import Path

from fix_experiment import DATASETS, LOCK, REPO, run_jobs, train_command

BASE_EPOCHS = {"nw_ucla": 100, "utd_mhad": 150}
#: The holdout each dataset's recipes are chosen on (see the module docstring).
SELECTION = {"nw_ucla": ["--holdout-match", "_v02$"], "utd_mhad": ["--holdout-match", "_s7_"]}
VARIANTS = {  # name: restcn-train options on top of the defaults (EPOCHS: scaled epochs)
    "default": [],
    "tilt0": ["--tilt", "0"],  # the default recipe before --tilt
    "long": ["EPOCHS", "1.5"],
    "rot90": ["--rotate", "90", "--shift", "0.8"],
    "wd5e-4": ["--weight-decay", "5e-4"],
    "lr0.02": ["--lr", "0.02"],
    "nols": ["--label-smoothing", "0"],
    "b64lr0.02": ["--batch-size", "64", "--lr", "0.02"],
    "window100": ["--window", "100"],
    "drop0.3": ["--dropout", "0.3"],
    "crop0.5": ["--crop", "0.5"],
    "scale0.2": ["--scale", "0.2"],
    "plateau": ["--schedule", "plateau"],  # the paper's schedule
    "long2": ["EPOCHS", "2"],
    "bone": ["--modality", "bone"],
    "motion": ["--modality", "motion"],
    "bone-motion": ["--modality", "bone-motion"],
    # on top of twice the epochs, which won on both holdouts in the first sweep
    "l2-d3": ["EPOCHS", "2", "--dropout", "0.3"],
    "l2-d3-mix": ["EPOCHS", "2", "--dropout", "0.3", "--mixup", "0.2"],
    "l2-d3-roll": ["EPOCHS", "2", "--dropout", "0.3", "--roll", "10"],
    "l2-d3-rot90": ["EPOCHS", "2", "--dropout", "0.3", "--rotate", "90"],
    "l3-d3": ["EPOCHS", "3", "--dropout", "0.3"],
}
#: The recipe chosen on the holdouts (second sweep, README "Results"), and its four modalities:
#: the members of the ensemble.
RECIPE = ["EPOCHS", "2", "--dropout", "0.3", "--roll", "10"]
for _modality in ("joint", "bone", "motion", "bone-motion"):
    VARIANTS[f"recipe-{_modality}"] = [*RECIPE, "--modality", _modality]


def variant_command(dataset: str, variant: str, seed: int, out: Path, extra: list[str],
                    lock: str, final: bool) -> list[str]:
    options = list(VARIANTS[variant])
    epochs = BASE_EPOCHS[dataset]
    if options[:1] == ["EPOCHS"]:
        epochs, options = round(epochs * float(options[1])), options[2:]
    holdout = [] if final else SELECTION[dataset]
    return train_command(dataset, seed, out, epochs,
                         ["--model", "res-tcn", *options, *holdout, *extra], lock)


def summarise(args: argparse.Namespace) -> dict:
    summary: dict = {}
    what = "reported split" if args.final else "holdout of the training split"
    print(f"\nfinal validation accuracy on the {what}, mean ± std over seeds ({args.out})")
    width = max(len(v) for v in args.variants)
    print(f"{'variant':{width}} " + " ".join(f"{d:>24}" for d in args.datasets))
    for variant in args.variants:
        cells = []
        for dataset in args.datasets:
            runs = sorted((args.out / dataset / variant).glob("seed*/metrics.json"))
            accs = [json.loads(p.read_text())["final_val_accuracy"] for p in runs]
            secs = [json.loads(p.read_text())["train_seconds"] for p in runs]
            if not accs:
                cells.append(f"{'-':>24}")
                continue
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            summary.setdefault(variant, {})[dataset] = {
                "mean": statistics.fmean(accs), "std": std, "accuracies": accs,
                "train_seconds": statistics.fmean(secs)}
            cells.append(f"{statistics.fmean(accs):.4f} ± {std:.4f} (n={len(accs)})".rjust(24))
        print(f"{variant:{width}} " + " ".join(cells))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 1, 2])
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    parser.add_argument("--train-args", default="", help="more restcn-train options, every run")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "recipe")
    parser.add_argument("--parallel", type=int, default=1, help="runs trained at once")
    parser.add_argument("--lock", default=LOCK, help="flock file around each run ('' for none)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no new run starts")
    parser.add_argument("--final", action="store_true",
                        help="validate on the reported split (only for chosen variants)")
    args = parser.parse_args()
    args.out = args.out / ("final" if args.final else "selection")
    for name, known in (("variants", VARIANTS), ("datasets", DATASETS)):
        unknown = set(getattr(args, name)) - set(known)
        if unknown:
            parser.error(f"unknown {name} {sorted(unknown)}; expected {sorted(known)}")

    jobs = []
    for seed in args.seeds:
        for variant in args.variants:
            for dataset in args.datasets:
                out = args.out / dataset / variant / f"seed{seed}"
                if not (out / "metrics.json").exists():
                    jobs.append((variant_command(dataset, variant, seed, out,
                                                 shlex.split(args.train_args), args.lock,
                                                 args.final), out))
    failed = run_jobs(jobs, args.parallel, args.deadline)
    if failed:
        print("failed (left out of the table): " + ", ".join(str(out / "train.log")
                                                           for out in failed), flush=True)
    summarise(args)


if __name__ == "__main__":
    main()
