"""Classification latency: the runtime (onnxruntime, :class:`Classifier`) vs eager PyTorch.

The same random Res-TCN weights (T=300, D=150, 60 classes: the paper's NTU network; weights do
not change the cost) run through

    eager     ResTCN.forward under torch.inference_mode, torch's default threads (the baseline)
    runtime   Classifier.run on the model restcn-export writes (decoder head compiled in and
              skipped: logits only), the path restcn-infer classify takes

at each batch size, in alternating blocks so a shared machine's load hits both alike.
Prints median latency, sequences/s and the speedup, then where the runtime's time goes (an
onnxruntime profile: share of kernel time per operator type).

    flock /tmp/restcn-cpu.lock python benchmarks/infer_latency.py [--batch 1 16 128]
        [--repeats 20] [--threads N] [--precision fp32|fp16]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from decoder_cost import WINDOW, D, write_checkpoint  # the same random T=300, D=150 network

from restcn_export.onnx_export import export_onnx
from restcn_infer.classifier import Classifier
from restcn_training.checkpoint import Checkpoint


def median_seconds(fns: dict, repeats: int, rounds: int = 3) -> dict[str, float]:
    """Median wall time per function, in alternating blocks of ``repeats`` calls.

    Blocks, not call-by-call interleaving: onnxruntime's and torch's worker threads spin for a
    while after each call and would steal the cores from the other framework's next call.
    Alternating blocks still spreads a shared machine's load drift over both.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()  # warm-up (first call allocates; the other framework's threads settle)
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def profile_ops(model_path: Path, x: np.ndarray, threads: int | None) -> list[tuple[str, float]]:
    """Share of onnxruntime kernel time per operator type over 3 logits-only runs."""
    import onnxruntime as ort

    from restcn_infer.session import session_options

    options = session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model_path), options,
                                       providers=["CPUExecutionProvider"])
        feed = {"skeleton": x, "decode": np.array(False)}
        for _ in range(4):
            session.run(["logits"], feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    return [(op, 100.0 * us / total) for op, us in per_op.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds at batch 1 "
                        "(fewer at larger batches: about the same total work)")
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: one per physical core)")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "res_tcn.pt"
        write_checkpoint(ckpt)
        report = export_onnx(ckpt, Path(tmp) / "res_tcn.onnx", precision=args.precision)
        model = Checkpoint.load(ckpt).build_model()
        clf = Classifier(report.path, device="cpu", threads=args.threads)
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), model "
              f"{report.size_bytes / 1e6:.1f} MB {args.precision}, providers {clf.providers}")
        print(f"{'batch':>5} {'eager ms':>9} {'seq/s':>7} {'runtime ms':>11} {'seq/s':>7} "
              f"{'speedup':>8}")
        for batch in args.batch:
            x = np.random.default_rng(batch).normal(size=(batch, WINDOW, D)).astype(np.float32)
            xt = torch.from_numpy(x)

            def eager(xt=xt):
                with torch.inference_mode():
                    return model(xt)

            t = median_seconds({"eager": eager, "runtime": lambda x=x: clf.run(x)},
                               max(1, args.repeats // max(1, batch // 4)))
            print(f"{batch:>5} {1e3 * t['eager']:>9.2f} {batch / t['eager']:>7.0f} "
                  f"{1e3 * t['runtime']:>11.2f} {batch / t['runtime']:>7.0f} "
                  f"{t['eager'] / t['runtime']:>7.2f}x", flush=True)
        x = np.random.default_rng(0).normal(size=(16, WINDOW, D)).astype(np.float32)
        shares = profile_ops(report.path, x, args.threads)
        print("runtime kernel time by operator (batch 16): " +
              ", ".join(f"{op} {share:.1f}%" for op, share in shares[:8]))


if __name__ == "__main__":
    main()
