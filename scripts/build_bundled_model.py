"""Rebuild a bundled model (``restcn_infer/models/*.onnx``) and ``examples/``.

    flock /tmp/restcn-cpu.lock python scripts/build_bundled_model.py --name ms-res-tcn \
        --checkpoint RUN/checkpoint.pt [--data ../shared/data/nw_ucla/nw_ucla.pkl]
        [--precisions fp32 fp16 int8] [--measure-only]
    ... --name ensemble --checkpoint JOINT BONE MOTION BONE_MOTION [--fusion logprob]

The checkpoints come from ``restcn-train`` on NW-UCLA's ``train`` split (views 1+2); their
training commands and metrics travel into the model's metadata. Several checkpoints are fused
into one ensemble graph (``restcn-export --ensemble``). Steps:

1. export it as each of ``--precisions`` (default ``fp32``, ``fp16`` weight storage and
   ``int8``, each parity-checked against torch on random and real NW-UCLA input by
   ``restcn-export``; int8 calibrated on the run's own training split and gated by export on
   its holdout of that split, never on ``val``);
2. measure ``val`` (view 3) accuracy of each through the runtime (:class:`Classifier`, the same
   path ``restcn-infer classify`` takes);
3. ship the first of ``int8``, ``fp16``, ``fp32`` that is within 0.5 points of ``fp32`` on
   ``val`` (``--measure-only``: print the figures, replace nothing);
4. save one ``val`` sequence of three classes as ``examples/nw_ucla_<class>.npy`` (float32
   (M, T, V, 3)): the first of each class that every bundled model classifies correctly.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from restcn_export.onnx_export import export_onnx
from restcn_infer.classifier import Classifier
from restcn_infer.models import BUNDLED_MODELS
from restcn_infer.readers.pyskl import read_pyskl
from restcn_training.ensemble import FUSIONS, ensemble_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CLASSES = ("pick up with one hand", "sit down", "throw")
MAX_DROP_POINTS = 0.5


def accuracy(clf: Classifier, annotations) -> float:
    """Top-1 accuracy (%) of ``clf`` on PYSKL annotations, through prepare -> run -> predict."""
    preds = clf.classify([a.keypoint for a in annotations], top_k=1)
    return 100.0 * np.mean([p[0].label == a.label for p, a in zip(preds, annotations)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", choices=list(BUNDLED_MODELS), required=True,
                        help="which bundled model to replace")
    parser.add_argument("--checkpoint", type=Path, nargs="+", required=True,
                        help="a run or checkpoint; several: the members of an ensemble")
    parser.add_argument("--fusion", choices=FUSIONS, default="logprob",
                        help="the ensemble's fusion rule")
    parser.add_argument("--data", type=Path,
                        default=REPO.parent / "shared" / "data" / "nw_ucla" / "nw_ucla.pkl")
    parser.add_argument("--split", default="val")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "fp16", "int8"],
                        choices=["fp32", "fp16", "int8", "bf16"])
    parser.add_argument("--measure-only", action="store_true",
                        help="export and measure, but replace no bundled model or example")
    args = parser.parse_args()
    if "fp32" not in args.precisions:
        args.precisions.insert(0, "fp32")

    val = read_pyskl(args.data).split(args.split)
    source = (ensemble_checkpoint(args.checkpoint, fusion=args.fusion)
              if len(args.checkpoint) > 1 else args.checkpoint[0])
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for precision in args.precisions:
            report = export_onnx(source, Path(tmp) / f"{precision}.onnx",
                                 precision=precision, check_data=args.data,
                                 calibration=args.data if precision in ("int8", "bf16") else None)
            device = "openvino" if precision == "bf16" else "cpu"
            acc = accuracy(Classifier(report.path, device=device), val)
            results[precision] = (report, acc)
            gate = ("" if report.gate is None else
                    f", export gate fp32 {100 * report.gate['accuracy']['fp32']:.2f}% vs "
                    f"{100 * report.gate['accuracy'][precision]:.2f}% on "
                    f"{report.metadata.export['calibration']['validation']}")
            print(f"{precision}: {report.size_bytes / 1e6:.2f} MB, parity "
                  f"{max(report.max_abs_diff.values()):.2g}, {args.split} accuracy {acc:.2f}% "
                  f"({len(val)} sequences){gate}", flush=True)
        chosen = next(p for p in ("int8", "fp16", "fp32") if p in results
                      and results["fp32"][1] - results[p][1] <= MAX_DROP_POINTS)
        drop = results["fp32"][1] - results[chosen][1]
        target = REPO / "restcn_infer" / "models" / BUNDLED_MODELS[args.name]
        if args.measure_only:
            print(f"would ship {chosen} ({drop:+.2f} points vs fp32 dropped) -> {target}")
            return
        shutil.copyfile(results[chosen][0].path, target)
        print(f"shipped {chosen} ({drop:+.2f} points vs fp32 dropped) -> {target}")

    models = [Classifier(target.parent / file, device="cpu") for file in BUNDLED_MODELS.values()
              if (target.parent / file).is_file()]
    examples = REPO / "examples"
    examples.mkdir(exist_ok=True)
    for name in EXAMPLE_CLASSES:
        label = models[0].spec.classes.index(name)
        for ann in (a for a in val if a.label == label):
            if all(m.classify([ann.keypoint], top_k=1)[0][0].label == label for m in models):
                path = examples / f"nw_ucla_{name.replace(' ', '_')}.npy"
                np.save(path, ann.keypoint.astype(np.float32))
                print(f"example {path.name}: {ann.frame_dir}, {ann.keypoint.shape}")
                break


if __name__ == "__main__":
    main()
