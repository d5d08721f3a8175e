"""Does the fix the diagnosis suggests help? The paper's loop, run for real, 3 seeds per arm.

    python benchmarks/fix_experiment.py [--train-args RECIPE] [--seeds 0,1,2] [--out runs/fix]
        [--diagnosis utd_mhad=diag/utd/diagnosis.json --diagnosis nw_ucla=...]
        [--parallel N --lock '']   # e.g. on a GPU machine

Per dataset (UTD-MHAD xsub_train / xsub_val; NW-UCLA train / val, cross-view), the same recipe
(restcn-train's defaults plus ``--train-args``, for every arm alike) trains up to three arms::

    res-tcn               the baseline
    ms-res-tcn-hands      MS-Res-TCN with the paper's choice, --target-joints hands
    ms-res-tcn-diagnosed  MS-Res-TCN with --target-joints DIAGNOSIS.json: the joints that
                          ``restcn-diagnose report`` suggested for the baseline, diagnosed on
                          a holdout of the training split (never on the val split reported here).
                          Left out when that diagnosis suggests nothing ("nothing stands out").

into ``<out>/<dataset>/<arm>/seed<k>/`` (checkpoint.pt, metrics.json, train.log), one run at a
time under ``flock /tmp/restcn-cpu.lock`` unless ``--parallel``/``--lock ''``. Finished runs are
skipped and interrupted ones resumed, so the script can be rerun at will (and a baseline trained
elsewhere with the same command may be linked in). It prints the final validation accuracy,
mean ± std over seeds, per (dataset, arm), then ``restcn-diagnose compare`` of each MS-Res-TCN arm
against the baseline (per class, mean over seeds, classes the targeted joints carry marked), and
writes ``<out>/summary.json`` (entries of data sets not run this time are kept).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from restcn_infer.atomic import atomic_write_text
from restcn_training.compare import compare_runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DATASETS = {  # name: (pickle, train split, val split)
    "utd_mhad": (DATA / "utd_mhad" / "utd_mhad.pkl", "xsub_train", "xsub_val"),
    "nw_ucla": (DATA / "nw_ucla" / "nw_ucla.pkl", "train", "val"),
}
BASELINE = "res-tcn"
ARMS = ("res-tcn", "ms-res-tcn-hands", "ms-res-tcn-diagnosed")
LOCK = "/tmp/restcn-cpu.lock"


def arm_options(arm: str, diagnosis: Path | None) -> list[str] | None:
    """restcn-train options of ``arm``; None when the arm does not apply (no suggestion)."""
    if arm == "res-tcn":
        return ["--model", "res-tcn"]
    if arm == "ms-res-tcn-hands":
        return ["--model", "ms-res-tcn", "--target-joints", "hands"]
    if diagnosis is None:
        return None
    suggestion = json.loads(diagnosis.read_text())["suggested_target_joints"]
    if not suggestion["joints"]:
        return None
    return ["--model", "ms-res-tcn", "--target-joints", str(diagnosis)]


def train_command(dataset: str, seed: int, out: Path, epochs: int | None,
                  extra: list[str], lock: str = LOCK) -> list[str]:
    """The restcn-train command of one run; ``extra`` holds the model and recipe options."""
    data, train_split, val_split = DATASETS[dataset]
    cmd = (["flock", lock] if lock else []) + ["restcn-train", "--data", str(data),
                                               "--train-split", train_split,
           "--val-split", val_split, "--seed", str(seed), "--out", str(out)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    cmd += extra
    if (out / "last.pt").exists():
        cmd.append("--resume")
    return cmd


def run_all(args: argparse.Namespace) -> None:
    """Seed-major order, so an interrupted sweep still holds complete (baseline, refined) pairs."""
    todo = []
    for seed in args.seeds:
        for dataset in args.datasets:
            for arm in ARMS:
                options = arm_options(arm, args.diagnosis.get(dataset))
                out = args.out / dataset / arm / f"seed{seed}"
                if options is None or (out / "metrics.json").exists():
                    continue
                todo.append((train_command(dataset, seed, out, args.epochs,
                                           options + shlex.split(args.train_args), args.lock),
                             out))
    if args.dry_run:
        for cmd, _ in todo:
            print("$", shlex.join(cmd))
        return
    failed = run_jobs(todo, args.parallel)
    if failed:
        sys.exit("training failed; see " + ", ".join(str(out / "train.log") for out in failed))


def run_jobs(jobs: list[tuple[list[str], Path]], parallel: int,
             deadline: float | None = None) -> list[Path]:
    """Train ``(command, run dir)`` jobs in order, ``parallel`` at a time, each printed as it
    starts; none starts later than ``deadline`` seconds from now. Returns the failed run dirs."""
    stop_at = float("inf") if deadline is None else time.monotonic() + deadline

    def start(job: tuple[list[str], Path]) -> Path | None:
        if time.monotonic() > stop_at:
            return None
        print("$", shlex.join(job[0]), flush=True)
        return run_one(*job)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return [out for out in pool.map(start, jobs) if out is not None]


def run_one(cmd: list[str], out: Path) -> Path | None:
    """Train one run into ``out``; its path when it failed, else None."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "a") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        print(f"  {out}: training failed ({done.returncode})", flush=True)
        return out
    metrics = json.loads((out / "metrics.json").read_text())
    print(f"  {out}: final val accuracy {metrics['final_val_accuracy']:.4f}, "
          f"{metrics['train_seconds']:.0f} s", flush=True)
    return None


def summarise(args: argparse.Namespace) -> dict:
    """Print and write the summary of ``args.datasets``; the other data sets' entries of an
    existing ``summary.json`` are kept, so one data set can be (re)run on its own."""
    path = args.out / "summary.json"
    summary: dict = json.loads(path.read_text()) if path.exists() else {}
    print(f"\nfinal validation accuracy, mean ± std over seeds ({args.out})")
    print(f"{'dataset':10} {'arm':21} {'runs':>4} {'mean':>7} {'std':>7}  per seed")
    for dataset in args.datasets:
        summary[dataset] = {}
        for arm in ARMS:
            runs = sorted((args.out / dataset / arm).glob("seed*/metrics.json"))
            accs = [json.loads(p.read_text())["final_val_accuracy"] for p in runs]
            if not accs:
                continue
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            summary[dataset][arm] = {"mean": statistics.fmean(accs), "std": std,
                                     "accuracies": accs, "runs": [str(p.parent) for p in runs]}
            print(f"{dataset:10} {arm:21} {len(accs):4d} {statistics.fmean(accs):7.4f} "
                  f"{std:7.4f}  " + " ".join(f"{a:.4f}" for a in accs))
    from restcn_cli.diagnose_compare import compare  # renders the table

    for dataset in args.datasets:
        for arm in ARMS[1:]:
            if arm not in summary[dataset] or BASELINE not in summary[dataset]:
                continue
            print(f"\n{dataset}: {arm} against {BASELINE}, per class, mean over seeds "
                  f"(* = the targeted joints carry more of the class's motion than the split's "
                  f"median)")
            a, b = args.out / dataset / BASELINE, args.out / dataset / arm
            compare(a, b, target_joints=None, data=None, as_json=False)
            summary[dataset][f"compare_{arm}"] = compare_runs(a, b).to_json()
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every run (default: restcn-train's)")
    parser.add_argument("--train-args", default="",
                        help="more restcn-train options for EVERY run, e.g. '--schedule cosine'")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 1, 2])
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "fix")
    parser.add_argument("--parallel", type=int, default=1, help="runs trained at once")
    parser.add_argument("--lock", default=LOCK,
                        help="flock file around each run, so CPU benchmarks don't overlap "
                        "('' for none)")
    parser.add_argument("--diagnosis", action="append", default=[], metavar="DATASET=JSON",
                        help="the baseline's diagnosis.json for DATASET (its holdout): adds the "
                        "ms-res-tcn-diagnosed arm")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--summary-only", action="store_true", help="train nothing")
    args = parser.parse_args()
    try:
        args.diagnosis = {k: Path(v) for k, v in (item.split("=", 1) for item in args.diagnosis)}
    except ValueError:
        parser.error("--diagnosis takes DATASET=PATH")
    unknown = (set(args.datasets) | set(args.diagnosis)) - set(DATASETS)
    if unknown:
        parser.error(f"unknown datasets {sorted(unknown)}; expected {sorted(DATASETS)}")
    if not args.summary_only:
        run_all(args)
    if not args.dry_run:
        summarise(args)


if __name__ == "__main__":
    main()
