"""What the TA stream costs: MS-Res-TCN vs Res-TCN in the same run, printed as ratios.

    flock /tmp/restcn-cpu.lock python benchmarks/ms_cost.py [--repeats 5]

Per input shape (NW-UCLA: T=64, D=60, 10 classes; NTU: T=300, D=150, 60 classes):
parameters, forward GFLOP (torch's FLOP counter, batch 1), training samples/s (SGD step:
forward + cross-entropy + backward + update, batch 64 / 32) and eager inference latency
(``torch.inference_mode``, batch 1 and 16). Timings are medians over ``--repeats`` after a
warm-up; the two models alternate so a busy machine slows both alike. Targeted joints: the
layout's ``hands`` (both bodies for NTU). The TA stream's conv1 reads only the targeted dims
(gathered, not masked): its parameters are reported against a full-width masked conv1.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from restcn_infer.layouts import KINECT20, NTU25, JointLayout
from restcn_training.ms_res_tcn import MSResTCN, MSResTCNConfig
from restcn_training.res_tcn import ResTCN, ResTCNConfig

SHAPES = [  # name, layout, bodies, classes, T, training batch
    ("NW-UCLA", KINECT20, 1, 10, 64, 64),
    ("NTU", NTU25, 2, 60, 300, 32),
]


def build(layout: JointLayout, bodies: int, classes: int) -> dict[str, torch.nn.Module]:
    d = bodies * layout.num_joints * 3
    return {
        "res-tcn": ResTCN(ResTCNConfig(d, classes)),
        "ms-res-tcn": MSResTCN(MSResTCNConfig(d, classes, num_joints=layout.num_joints,
                                              bodies=bodies,
                                              target_joints=layout.groups["hands"])),
    }


def timed(fn: Callable[[], None], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               opt: torch.optim.Optimizer) -> Callable[[], None]:
    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def infer(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            model(x)
    return run


def measure(name: str, layout: JointLayout, bodies: int, classes: int, T: int, batch: int,
            repeats: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    models = build(layout, bodies, classes)
    d = bodies * layout.num_joints * 3
    out: dict[str, dict[str, float]] = {k: {} for k in models}
    for key, model in models.items():
        out[key]["params (M)"] = sum(p.numel() for p in model.parameters()) / 1e6
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(torch.randn(1, T, d))
        out[key]["GFLOP/forward"] = counter.get_total_flops() / 1e9
    x, y = torch.randn(batch, T, d), torch.randint(0, classes, (batch,))
    steps = {k: train_step(m.train(), x, y, torch.optim.SGD(m.parameters(), lr=1e-3,
                                                            momentum=0.9, nesterov=True))
             for k, m in models.items()}
    for _ in range(repeats):  # alternate the models
        for key, step in steps.items():
            out[key].setdefault("_train", []).append(timed(step, 1))
    for key in models:
        out[key]["train samples/s"] = batch / statistics.median(out[key].pop("_train"))
    for b in (1, 16):
        xb = torch.randn(b, T, d)
        for key, model in models.items():
            model.eval()
            out[key][f"latency b={b} (ms)"] = 1e3 * timed(infer(model, xb), repeats * 3)
    ms = models["ms-res-tcn"]
    full = ms.trunk.conv1.weight.numel()  # a masked TA conv1 would be as wide as the main one
    print(f"[{name}] TA conv1 over {len(ms.config.target_dims())} gathered dims: "
          f"{ms.ta_trunk.conv1.weight.numel():,} weights instead of {full:,} for a masked "
          f"full-width conv1 (D={d})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per number")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, eager fp32 CPU")
    for name, layout, bodies, classes, T, batch in SHAPES:
        res = measure(name, layout, bodies, classes, T, batch, args.repeats)
        print(f"\n{name}: T={T}, D={bodies * layout.num_joints * 3}, {classes} classes, "
              f"training batch {batch}")
        print(f"{'':24}{'Res-TCN':>12}{'MS-Res-TCN':>12}{'MS / Res':>10}")
        for metric in res["res-tcn"]:
            a, b = res["res-tcn"][metric], res["ms-res-tcn"][metric]
            print(f"{metric:24}{a:12.3f}{b:12.3f}{b / a:10.2f}")


if __name__ == "__main__":
    main()
