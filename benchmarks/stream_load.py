"""How many live 30-fps skeleton streams one process keeps up with, batched vs unbatched.

Simulates N streams in real time: stream i delivers frame k at ``offset_i + k / 30`` s (offsets
spread over one hop period, so decisions fall due evenly), each frame is pushed into a
:class:`~restcn_infer.streaming.StreamClassifier` when its time has come (all frames that have
come since the last round: one ``push`` each, or one ``push_many`` for all of them), and the
loop polls for decisions between pushes. A decision's latency runs from the scheduled arrival of
the frame that made it due to the end of the poll that returned it, so a backlog shows up as
latency; windows still undecided when a trial ends count with their waiting time so far. N is
*sustained* when the p99 latency over the measured part of the trial (after a warm-up) is under
``--slo-ms``; a missed trial is rerun ``--retries`` times, since load from other processes
causes misses.

Modes (``--modes``), in the same run on the same model and machine:

    unbatched   the naive per-stream loop: one push per frame, one session call per due window
                (max_batch 1)
    batched     one push per frame, one session call per poll for every due window of every
                stream (max_batch 256)
    many        batched, and the frames of a round go in with one ``push_many``: frame checks,
                ring writes and window preparation in whole-array steps

each without and with ``--decode`` (the decoded skeletons of every window are returned too,
and every decision is rendered as its JSON line, as ``restcn-infer stream`` writes it), for each
``--models`` entry ``PRECISION@DEVICE``: by default ``fp32@cpu``, ``int8@cpu`` (the export's
quantized graph) and ``bf16@openvino`` (the fp32 graph on OpenVINO's bf16 arithmetic); on a GPU
(``scripts/cuda_checks.sh``) ``fp32@cuda fp32@tensorrt int8@tensorrt``. The frames are pushed by
one Python loop, which bounds what one process can feed; ``many`` is that bound raised.
The model is a random-weight Res-TCN of the bundled model's size (kinect20, 1 body, D=60,
window 64, 10 classes, decoder layers 1,4,7,10); ``--ntu`` uses the paper's NTU size instead
(ntu25, 2 bodies, D=150, window 300, 60 classes). Weights do not change the cost.

    flock /tmp/restcn-cpu.lock python benchmarks/stream_load.py            # ~10 min
    flock /tmp/restcn-cpu.lock python benchmarks/stream_load.py --models int8@cpu --no-decode
    flock /tmp/restcn-cpu.lock python benchmarks/stream_load.py --modes batched many --start 256
    flock /tmp/restcn-cpu.lock python benchmarks/stream_load.py --ntu --hop 30
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from low_precision_models import lowered_model

from restcn_infer.classifier import Classifier
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import KINECT20, NTU25
from restcn_infer.stream_protocol import render_decision
from restcn_infer.streaming import StreamClassifier

FPS = 30.0
#: ``PRECISION@DEVICE`` of the models compared by default.
MODELS = ("fp32@cpu", "int8@cpu", "bf16@openvino")
#: Ways of feeding the engine, the baseline first.
MODES = ("unbatched", "batched", "many")


@dataclass(frozen=True)
class Trial:
    streams: int
    p50_ms: float
    p99_ms: float
    decisions: int  # decided in the measured part
    due: int  # due in the measured part
    mean_batch: float  # windows per session call, whole trial


def export_model(out: Path, ntu: bool) -> Path:
    """A random-weight full-size Res-TCN as ONNX with decoder layers 1,4,7,10."""
    import torch

    from restcn_export.onnx_export import export_onnx
    from restcn_infer.spec import InputSpec
    from restcn_training.checkpoint import untrained_checkpoint

    layout, bodies, window, classes, policy = (
        (NTU25, 2, 300, 60, "pad") if ntu else (KINECT20, 1, 64, 10, "resample"))
    spec = InputSpec(layout=layout, bodies=bodies, window=window, policy=policy)
    mean = torch.randn(spec.D, generator=torch.Generator().manual_seed(1)) * 0.5
    checkpoint = untrained_checkpoint("res-tcn", spec, [f"class{i}" for i in range(classes)],
                                      mean=mean).save(out / "model.pt")
    path = out / "model.onnx"
    export_onnx(checkpoint, path, decoder_layers=(1, 4, 7, 10))
    return path


def motion_bank(count: int, frames: int, bodies: int, joints: int) -> np.ndarray:
    """``count`` smooth random skeleton sequences ``(count, frames, bodies, joints, 3)``."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(count, 1, bodies, joints, 3))
    steps = rng.normal(scale=0.01, size=(count, frames, bodies, joints, 3))
    return (start + steps.cumsum(axis=1)).astype(np.float32)


class CountingClassifier:
    """Delegates to a Classifier and counts session calls and the windows they held."""

    def __init__(self, inner: Classifier) -> None:
        self.inner, self.metadata, self.calls, self.windows = inner, inner.metadata, 0, 0
        self.spec, self.options, self.providers = inner.spec, inner.options, inner.providers
        self.prepare, self.predict = inner.prepare, inner.predict

    def run(self, batch, *, decode=False):
        self.calls += 1
        self.windows += len(batch)
        return self.inner.run(batch, decode=decode)


def push_arrived(sc: StreamClassifier, bank: np.ndarray, pushed: np.ndarray,
                 arrived: np.ndarray, many: bool) -> None:
    """Push every frame that has come since the last round (stream by stream, oldest first):
    one ``push`` each, or one ``push_many`` for all of them."""
    bank_frames = bank.shape[1]
    if not many:
        for i in np.flatnonzero(arrived > pushed):
            frames = bank[i % len(bank)]
            for k in range(pushed[i], arrived[i]):
                sc.push(i, frames[k % bank_frames])
        pushed[:] = np.maximum(pushed, arrived)
        return
    need = np.maximum(arrived - pushed, 0)  # (n,) frames per stream this round
    total = int(need.sum())
    if total:
        who = np.repeat(np.arange(len(need)), need)  # (total,) stream of each frame
        first = np.cumsum(need) - need  # (n,) where each stream's frames start
        k = np.repeat(pushed, need) + np.arange(total) - np.repeat(first, need)  # frame numbers
        sc.push_many(who.tolist(), bank[who % len(bank), k % bank_frames])  # (total, M, V, C)
        pushed += need


def run_trial(classifier: Classifier, n: int, *, mode: str, decode: bool, hop: int,
              seconds: float, warmup: float, bank: np.ndarray) -> Trial:
    """N streams in real time for ``warmup + seconds``; latency stats of the measured part."""
    counting = CountingClassifier(classifier)
    sc = StreamClassifier(counting, hop=hop, decode=decode, top_k=5,
                          max_batch=1 if mode == "unbatched" else 256, max_streams=n + 1)
    offsets = np.arange(n) * (hop / FPS) / n  # (n,) start of each stream, spread over a hop
    pushed = np.zeros(n, dtype=np.int64)  # frames pushed per stream
    layers = list(classifier.metadata.decoder_layers)
    end = warmup + seconds
    latencies: list[float] = []
    decided: dict[int, list[int]] = {}  # stream -> frame counts decided in the measured part
    t0 = time.perf_counter()
    while True:
        now = time.perf_counter() - t0
        if now >= end:
            break
        arrived = np.floor((now - offsets) * FPS).astype(np.int64) + 1  # (n,) frames by now
        np.clip(arrived, 0, None, out=arrived)
        push_arrived(sc, bank, pushed, arrived, many=mode == "many")
        decisions = sc.poll()
        if decode:  # the output a client gets: one JSON line per decision
            for d in decisions:
                render_decision(d, stream=str(d.stream), decoder_layers=layers)
        done = time.perf_counter() - t0
        for d in decisions:
            arrival = offsets[d.stream] + (d.frame - 1) / FPS
            if warmup <= arrival < end:
                latencies.append(done - arrival)
                decided.setdefault(d.stream, []).append(d.frame)
        if not decisions:  # idle until the next frame is due
            next_frame = float(np.min(offsets + pushed / FPS))
            pause = next_frame - (time.perf_counter() - t0)
            if pause > 0:
                time.sleep(pause)
    # Windows due in the measured part but undecided at the end have waited at least this long.
    t_end = time.perf_counter() - t0
    due_frames = np.arange(hop, int(end * FPS) + hop + 1, hop)  # 1-based frame counts
    due = 0
    for i in range(n):
        arrivals = offsets[i] + (due_frames - 1) / FPS
        in_part = (arrivals >= warmup) & (arrivals < end)
        due += int(in_part.sum())
        late = in_part & ~np.isin(due_frames, decided.get(i, []))
        latencies.extend(t_end - arrivals[late])
    all_ms = np.asarray(latencies) * 1000.0
    p50, p99 = np.percentile(all_ms, [50, 99]) if all_ms.size else (float("nan"),) * 2
    made = sum(len(frames) for frames in decided.values())
    return Trial(n, float(p50), float(p99), made, due, counting.windows / max(counting.calls, 1))


def sustained(classifier: Classifier, *, mode: str, decode: bool, args,
              bank: np.ndarray) -> tuple[Trial | None, list[Trial]]:
    """The largest N with p99 < SLO: doubling from ``--start``, then ``--refine`` bisections."""
    def trial(n: int) -> Trial:
        for _ in range(1 + args.retries):  # a shared machine's load spikes cause misses
            t = run_trial(classifier, n, mode=mode, decode=decode, hop=args.hop,
                          seconds=args.seconds, warmup=args.warmup, bank=bank)
            ok = "ok " if t.p99_ms < args.slo_ms else "MISS"
            print(f"    N={n:5d}  p50 {t.p50_ms:7.1f} ms  p99 {t.p99_ms:8.1f} ms  {ok}  "
                  f"decisions {t.decisions}/{t.due}  mean batch {t.mean_batch:5.1f}", flush=True)
            if t.p99_ms < args.slo_ms:
                break
        return t

    trials, best, low, high = [], None, 0, None
    n = args.start
    while high is None and n <= args.max_streams:
        t = trial(n)
        trials.append(t)
        if t.p99_ms < args.slo_ms:
            best, low, n = t, n, n * 2
        else:
            high = n
    for _ in range(args.refine if high is not None else 0):
        mid = (low + high) // 2
        if mid <= low or mid >= high:
            break
        t = trial(mid)
        trials.append(t)
        if t.p99_ms < args.slo_ms:
            best, low = t, mid
        else:
            high = mid
    return best, trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="use this .onnx (with decoder) instead of "
                        "exporting a random one")
    parser.add_argument("--ntu", action="store_true", help="NTU size: D=150, window 300")
    parser.add_argument("--hop", type=int, default=8, help="frames between decisions")
    parser.add_argument("--slo-ms", type=float, default=100.0, help="p99 latency bound")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per trial")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured start per trial")
    parser.add_argument("--start", type=int, default=64, help="first N tried")
    parser.add_argument("--max-streams", type=int, default=8192)
    parser.add_argument("--refine", type=int, default=2, help="bisection steps after doubling")
    parser.add_argument("--retries", type=int, default=1, help="reruns of a missed trial")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--no-decode", action="store_true", help="skip the --decode modes")
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help="PRECISION@DEVICE: precision fp32, int8 or bf16; a runtime device")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                        help="ways of feeding the engine (the first is the baseline of the "
                             "ratios)")
    args = parser.parse_args()

    classifiers = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_model(Path(tmp), args.ntu)
        for entry in args.models:
            precision, _, device = entry.partition("@")
            path = (model if precision == "fp32"
                    else lowered_model(Path(model), precision, Path(tmp) / f"{precision}.onnx"))
            # Random motion is no body: the plausibility check runs, and lets it through.
            classifiers[entry] = Classifier(path, device=device or "cpu",
                                                threads=args.threads,
                                                options=InputOptions(accept_implausible=True))
    spec = next(iter(classifiers.values())).spec
    bank = motion_bank(64, 2 * spec.input.window, spec.input.bodies, spec.input.num_joints)
    print(f"model: {spec.input.layout.name}, {spec.input.bodies} body, D={spec.input.D}, "
          f"window {spec.input.window}, {spec.num_classes} classes; hop {args.hop} at "
          f"{FPS:.0f} fps ({FPS / args.hop:.2f} decisions/s per stream); p99 SLO "
          f"{args.slo_ms:.0f} ms; models {', '.join(args.models)}")

    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)", flush=True)
    rows = []  # (precision, decode, mode, best)
    for precision, classifier in classifiers.items():
        for decode in (False, True)[: 1 if args.no_decode else 2]:
            for mode in args.modes:
                print(f"  {label(precision, decode, mode)} ({classifier.providers[0]}):",
                      flush=True)
                best, _ = sustained(classifier, mode=mode, decode=decode, args=args, bank=bank)
                rows.append((precision, decode, mode, best))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    print("\n| mode | streams sustained | decisions/s | p50 ms | p99 ms | mean batch |")
    print("|---|---|---|---|---|---|")
    for precision, decode, mode, best in rows:
        name = label(precision, decode, mode)
        if best is None:
            print(f"| {name} | < {args.start} | | | | |")
            continue
        print(f"| {name} | {best.streams} | {best.streams * FPS / args.hop:.0f} | "
              f"{best.p50_ms:.1f} | {best.p99_ms:.1f} | {best.mean_batch:.1f} |")
    found = {(p, d, m): best for p, d, m, best in rows}
    base_mode, first = args.modes[0], args.models[0]
    for precision, decode, mode, best in rows:
        # each mode against the baseline mode, many against batched, each precision against
        # the first, all in the same run
        bases = [(precision, decode, base_mode)] + ([(precision, decode, "batched")]
                                                    if mode == "many" and base_mode != "batched"
                                                    else [])
        bases += [(first, decode, mode)]
        for key in bases:
            base = found.get(key)
            if key != (precision, decode, mode) and best and base:
                print(f"{label(precision, decode, mode)}: {best.streams / base.streams:.2f}x "
                      f"the streams of {label(*key)}")


def label(precision: str, decode: bool, mode: str) -> str:
    return f"{precision} {mode}" + (" + decode" if decode else "")

if __name__ == "__main__":
    main()
