"""Classification latency: eager PyTorch, and the runtime graphs step by step to int8 and bf16.

One random Res-TCN (T=300, D=150, 60 classes: the paper's NTU network; weights do not change
the cost, so calibration uses random windows) runs as

    eager            ResTCN.forward under torch.inference_mode (torch's threads)
    fp32 per-conv    the export before the trunk pass: Unsqueeze -> Conv -> Squeeze per conv
    fp32             the export: the whole trunk in one 4-D layout (passes/trunk_layout)
    int8 naive       quantize_static of the per-conv graph with every default (the floor)
    int8 4-D         quantize_int8 of the 4-D graph (decoder reads dequantized; BN in fp32)
    int8 spinning    + BatchNorm as depthwise conv (passes/bn_as_conv): restcn-export's int8,
                     with onnxruntime's worker threads spinning between calls (its default)
    int8             the same with the runtime's session options (threads sleep between calls)
    bf16 OpenVINO    the fp32 graph on OpenVINO with bf16 arithmetic (restcn-export's bf16)
    int8 OpenVINO    the int8 graph on OpenVINO

and with ``--gpu`` (``scripts/cuda_checks.sh``) instead

    fp32 CUDA        the fp32 graph on onnxruntime's CUDA provider (the baseline)
    TensorRT fp16    the fp32 graph on its TensorRT provider, float16 kernels, engines cached
    int8 TensorRT    the int8 graph on TensorRT

logits only (the decoder head skipped), at each batch size, in rotating blocks so a shared
machine's load hits all alike. Prints median latency, sequences/s and the ratio to fp32 (all
measured in the same run), then where each onnxruntime graph's time goes (profile by operator
at batch 16: median kernel time per node over the runs, summed per operator type).

    flock /tmp/restcn-cpu.lock python benchmarks/infer_latency.py [--batch 1 16 128]
        [--repeats 20] [--threads N] [--variants eager fp32 int8 ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from decoder_cost import WINDOW, D, write_checkpoint  # the same random T=300, D=150 network

from restcn_export import onnx_export
from restcn_export.onnx_export import export_onnx
from restcn_export.passes.bn_as_conv import batchnorm_as_depthwise_conv
from restcn_export.quantize import quantize_int8
from restcn_infer.openvino_session import OpenVINOSession, openvino_available
from restcn_infer.session import session_options
from restcn_training.checkpoint import Checkpoint

VARIANTS = ("eager", "fp32 per-conv", "fp32", "int8 naive", "int8 4-D", "int8 spinning", "int8",
            "bf16 OpenVINO", "int8 OpenVINO")
GPU_VARIANTS = ("fp32 CUDA", "TensorRT fp16", "int8 TensorRT")
BASELINE = "fp32"


def median_seconds(fns: dict[str, Callable[[], object]], repeats: int,
                   rounds: int = 3) -> dict[str, float]:
    """Median wall time per function, in blocks of ``repeats`` calls, rotating the order each
    round.

    Blocks, not call-by-call interleaving: onnxruntime's, OpenVINO's and torch's worker threads
    spin for a while after each call and would steal the cores from another engine's next call.
    Rotating blocks still spreads a shared machine's load drift over all.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fns[name]()  # warm-up (first call allocates; the other engines' threads settle)
            for _ in range(repeats):
                start = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def ort_session(path: Path, threads: int | None, spin: bool = False, profile: str | None = None):
    """An onnxruntime CPU session with the runtime's options (``spin``: worker threads spinning
    between calls, onnxruntime's own default)."""
    options = session_options(threads)
    if spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def profile_ops(path: Path, x: np.ndarray, threads: int | None,
                runs: int = 10) -> list[tuple[str, float]]:
    """Share of kernel time per operator type: each node's median over ``runs`` logits-only
    runs (a preempted run does not count), summed per type."""
    with tempfile.TemporaryDirectory() as tmp:
        session = ort_session(path, threads, profile=str(Path(tmp) / "profile"))
        for _ in range(runs):
            session.run(["logits"], {"skeleton": x, "decode": np.array(False)})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["args"]["op_name"], e["name"])].append(e["dur"])
    per_op: collections.Counter[str] = collections.Counter()
    for (op, _), durations in per_node.items():
        per_op[op] += statistics.median(durations)
    total = sum(per_op.values())
    return [(op, 100.0 * us / total) for op, us in per_op.most_common()]


def build_graphs(tmp: Path, ckpt: Path) -> dict[str, Path]:
    """The graph of every onnxruntime step, each from the library functions export uses."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    graphs = {"fp32": export_onnx(ckpt, tmp / "fp32.onnx").path}
    keep = onnx_export.trunk_in_4d
    onnx_export.trunk_in_4d = lambda proto: 0  # the export as it was before the trunk pass
    try:
        graphs["fp32 per-conv"] = export_onnx(ckpt, tmp / "per_conv.onnx").path
    finally:
        onnx_export.trunk_in_4d = keep
    rng = np.random.default_rng(0)
    spec = Checkpoint.load(ckpt).spec
    calibration = (spec.mean_array + rng.standard_normal((32, WINDOW, D))).astype(np.float32)

    class Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"skeleton": calibration[i:i + 16], "decode": np.array(False)}
                             for i in range(0, len(calibration), 16)])

        def get_next(self):
            return next(self._it, None)

    graphs["int8 naive"] = tmp / "naive.onnx"
    quantize_static(str(graphs["fp32 per-conv"]), str(graphs["int8 naive"]), Windows(),
                    quant_format=QuantFormat.QDQ, per_channel=True)
    onnx.save_model(quantize_int8(graphs["fp32"], calibration), str(tmp / "int8_4d.onnx"))
    graphs["int8 4-D"] = tmp / "int8_4d.onnx"
    proto = onnx.load(str(graphs["fp32"]))
    batchnorm_as_depthwise_conv(proto)
    onnx.save_model(proto, str(tmp / "fp32_bn.onnx"))
    onnx.save_model(quantize_int8(tmp / "fp32_bn.onnx", calibration), str(tmp / "int8.onnx"))
    graphs["int8"] = tmp / "int8.onnx"
    return graphs


def runners(graphs: dict[str, Path], ckpt: Path, threads: int | None,
            wanted: list[str]) -> dict[str, Callable[[np.ndarray], object]]:
    """``variant -> run(x)`` for the wanted variants this machine can run."""
    out: dict[str, Callable[[np.ndarray], object]] = {}
    decode_off = np.array(False)
    for name in wanted:
        if name in GPU_VARIANTS:
            from restcn_infer.backends import create_session

            device = "cuda" if name == "fp32 CUDA" else "tensorrt"
            session = create_session(graphs["int8" if name.startswith("int8") else "fp32"],
                                     device=device, threads=threads)
            print(f"{name}: providers {session.get_providers()}")
            out[name] = (lambda x, s=session: s.run(["logits"],
                                                    {"skeleton": x, "decode": decode_off}))
        elif name == "eager":
            model = Checkpoint.load(ckpt).build_model()

            def eager(x, model=model):
                with torch.inference_mode():
                    return model(torch.from_numpy(x))
            out[name] = eager
        elif "OpenVINO" in name:
            if not openvino_available():
                print(f"skipping {name}: pip install 'restcn[openvino]'")
                continue
            path = graphs["fp32" if name.startswith("bf16") else "int8"]
            session = OpenVINOSession(path.read_bytes(), ort_session(path, 1),
                                      precision="bf16" if name.startswith("bf16") else "f32",
                                      threads=threads)
            out[name] = (lambda x, s=session: s.run(["logits"],
                                                    {"skeleton": x, "decode": decode_off}))
        else:
            graph = graphs["int8" if name == "int8 spinning" else name]
            session = ort_session(graph, threads, spin=name == "int8 spinning")
            out[name] = (lambda x, s=session: s.run(["logits"],
                                                    {"skeleton": x, "decode": decode_off}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per block at batch "
                        "1 (fewer at larger batches: about the same total work)")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per variant")
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime/OpenVINO threads (default: one per physical core)")
    parser.add_argument("--variants", nargs="+", default=None,
                        choices=VARIANTS + GPU_VARIANTS)
    parser.add_argument("--gpu", action="store_true", help="the GPU variants (CUDA, TensorRT)")
    args = parser.parse_args()
    global BASELINE
    if args.gpu:
        BASELINE = "fp32 CUDA"
    args.variants = args.variants or list(GPU_VARIANTS if args.gpu else VARIANTS)
    if BASELINE not in args.variants:
        args.variants.insert(0, BASELINE)

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "res_tcn.pt"
        write_checkpoint(ckpt)
        graphs = build_graphs(Path(tmp), ckpt)
        fns = runners(graphs, ckpt, args.threads, args.variants)
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
              f"{ort.__version__}, T={WINDOW}, D={D}, 60 classes, logits only; ratio = "
              f"{BASELINE} time / variant time, same run")
        results: dict[int, dict[str, float]] = {}
        for batch in args.batch:
            x = np.random.default_rng(batch).normal(size=(batch, WINDOW, D)).astype(np.float32)
            results[batch] = median_seconds({name: (lambda f=f, x=x: f(x))
                                             for name, f in fns.items()},
                                            max(1, args.repeats // max(1, batch // 4)),
                                            args.rounds)
            print(f"  batch {batch} measured", flush=True)
        head = "".join(f" | batch {b}: ms, seq/s, ratio" for b in args.batch)
        print(f"\n| variant{head} |\n|---|" + "---|" * len(args.batch))
        for name in fns:
            cells = "".join(f" | {1e3 * results[b][name]:.2f}, {b / results[b][name]:.0f}, "
                            f"{results[b][BASELINE] / results[b][name]:.2f}x" for b in args.batch)
            print(f"| {name}{cells} |")
        x = np.random.default_rng(0).normal(size=(16, WINDOW, D)).astype(np.float32)
        print("\nkernel time by operator (onnxruntime, batch 16):")
        for name, path in graphs.items():
            if name in fns and not args.gpu:
                shares = profile_ops(path, x, args.threads)
                print(f"  {name}: " + ", ".join(f"{op} {s:.1f}%" for op, s in shares[:7]))


if __name__ == "__main__":
    main()
