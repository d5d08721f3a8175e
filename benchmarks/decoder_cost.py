"""What the Feature Map Decoder head costs at run time (onnxruntime, CPU by default).

Exports one random Res-TCN (T=300, D=150, 60 classes; weights do not change the cost) twice:
with the decoder head (layers 1,4,7,10) and with ``--no-decoder`` as the baseline. Then times,
per batch size, the median latency of

    baseline      no-decoder model, fetch logits
    logits only   decoder model, fetch logits            (does onnxruntime skip the head?)
    + decoded     decoder model, fetch logits + decoded

and prints each, and the ratios to the baseline. It also profiles one logits-only run and
counts the decoder's ``Resize`` kernels that onnxruntime executed: onnxruntime runs every node of
the graph whatever outputs are fetched, so not fetching ``decoded`` saves the copy, not the work.

    flock /tmp/restcn-cpu.lock python benchmarks/decoder_cost.py [--repeats 50] [--batch 1 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from restcn_export.onnx_export import export_onnx
from restcn_infer.layouts import NTU25
from restcn_infer.spec import InputSpec
from restcn_training.checkpoint import untrained_checkpoint

WINDOW, BODIES, CLASSES = 300, 2, 60
D = BODIES * NTU25.num_joints * 3  # 150


def write_checkpoint(path: Path) -> None:
    spec = InputSpec(layout=NTU25, bodies=BODIES, window=WINDOW, policy="pad")
    untrained_checkpoint("res-tcn", spec, [f"class{i}" for i in range(CLASSES)],
                         mean=torch.randn(D, generator=torch.Generator().manual_seed(1)) * 0.5
                         ).save(path)


def median_ms(runs: dict[str, tuple[ort.InferenceSession, list[str]]], x: np.ndarray,
              repeats: int) -> dict[str, float]:
    """Median latency (ms) per configuration, interleaved round by round (in a rotating order)
    so drift in a shared machine's load and position effects hit every configuration alike."""
    for sess, outputs in runs.values():  # warm-up
        for _ in range(3):
            sess.run(outputs, {"skeleton": x})
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            sess, outputs = runs[name]
            start = time.perf_counter()
            sess.run(outputs, {"skeleton": x})
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def decoder_kernels_run(path: Path, outputs: list[str], x: np.ndarray) -> int:
    """How many ``Resize`` kernels (only the decoder has them) one profiled run executed."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        sess.run(outputs, {"skeleton": x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    return sum(1 for e in events if e.get("cat") == "Node"
               and e.get("args", {}).get("op_name") == "Resize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "random.pt"
        write_checkpoint(ckpt)
        with_head, without = Path(tmp) / "decoder.onnx", Path(tmp) / "plain.onnx"
        export_onnx(ckpt, with_head, decoder_layers=(1, 4, 7, 10))
        export_onnx(ckpt, without, decoder_layers=())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        dec = ort.InferenceSession(str(with_head), options, providers=["CPUExecutionProvider"])
        plain = ort.InferenceSession(str(without), options, providers=["CPUExecutionProvider"])

        print(f"onnxruntime {ort.__version__} CPU, torch threads default, T={WINDOW}, D={D}, "
              f"{CLASSES} classes, decoder layers 1,4,7,10, median of {args.repeats}")
        print(f"{'batch':>5} {'baseline ms':>12} {'logits only ms':>15} {'+ decoded ms':>13} "
              f"{'logits-only/base':>17} {'+decoded/base':>14}")
        rng = np.random.default_rng(0)
        for batch in args.batch:
            x = rng.standard_normal((batch, WINDOW, D)).astype(np.float32)
            ms = median_ms({"base": (plain, ["logits"]), "logits": (dec, ["logits"]),
                            "both": (dec, ["logits", "decoded"])}, x, args.repeats)
            base, logits_only, both = ms["base"], ms["logits"], ms["both"]
            print(f"{batch:>5} {base:>12.2f} {logits_only:>15.2f} {both:>13.2f} "
                  f"{logits_only / base:>17.2f} {both / base:>14.2f}")
        x = rng.standard_normal((1, WINDOW, D)).astype(np.float32)
        print(f"decoder Resize kernels executed when fetching logits only: "
              f"{decoder_kernels_run(with_head, ['logits'], x)} "
              f"(with decoded: {decoder_kernels_run(with_head, ['logits', 'decoded'], x)})")


if __name__ == "__main__":
    main()
