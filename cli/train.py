"""``restcn-train``: train Res-TCN / MS-Res-TCN on a PYSKL pickle or a packed NTU directory.

    restcn-train --data nw_ucla.pkl --train-split train --val-split val --out runs/nw-ucla

Runs on CPU or CUDA (``--device auto``), data-parallel under ``torchrun``, and continues an
interrupted run exactly with ``--resume``. Exit codes: 0 ok, 1 data/model error, 2 usage.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
console = Console()


class ModelName(str, Enum):
    res_tcn = "res-tcn"
    ms_res_tcn = "ms-res-tcn"


class WindowPolicy(str, Enum):
    resample = "resample"
    pad = "pad"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Schedule(str, Enum):
    cosine = "cosine"
    plateau = "plateau"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class RichReporter:
    """Progress bar per epoch (on a terminal) and one line per epoch (always)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task = None

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps,
                                               loss=0.0, acc=0.0)

    def on_step(self, step: int, loss: float, accuracy: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss, acc=accuracy)

    def on_epoch_end(self, row: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.remove_task(self.task)
        console.print(
            f"epoch {row['epoch']:>3}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}"
            f"  {row['seconds']:.1f}s", highlight=False, soft_wrap=True)


def _channels(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


@app.command()
def main(
    data: Annotated[Path, typer.Option(help="PYSKL/mmaction2 pickle (splits inside) or a packed "
                                            "NTU benchmark directory (meta.json).")],
    out: Annotated[Path, typer.Option(help="Run directory: checkpoint.pt, last.pt, history.csv, "
                                           "metrics.json.")],
    train_split: Annotated[str, typer.Option(help="Split to train on.")] = "train",
    val_split: Annotated[str, typer.Option(help="Split to validate on (final accuracy).")] = "val",
    model: Annotated[ModelName, typer.Option(help="Architecture.")] = ModelName.res_tcn,
    window: Annotated[int, typer.Option(min=1, help="Frames per input (T).")] = 64,
    window_policy: Annotated[WindowPolicy, typer.Option(
        help="resample: stretch the action to the window; pad: zero-pad (the paper's NTU input)."
    )] = WindowPolicy.resample,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 100,
    batch_size: Annotated[int, typer.Option(
        min=1, help="Batch size (per process); the paper used 128 on NTU.")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="Initial SGD learning rate.")] = 0.01,
    schedule: Annotated[Schedule, typer.Option(
        help="cosine: anneal to 0 over the epochs; plateau: lr x0.1 when the validation loss "
             "stops improving (the paper)."
    )] = Schedule.cosine,
    plateau_patience: Annotated[int, typer.Option(min=0, help="Epochs without val-loss "
                                                  "improvement before lr x0.1.")] = 10,
    l1: Annotated[float, typer.Option(min=0.0, help="L1 weight on every conv kernel.")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="SGD weight decay (L2).")] = 0.0,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.99, help="Dropout after every ReLU.")] = 0.5,
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.99,
                                                   help="Label smoothing of the loss.")] = 0.1,
    rotate: Annotated[float, typer.Option(min=0.0, max=180.0, help="Augment: random rotation "
                                          "about the vertical axis, max degrees.")] = 60.0,
    scale: Annotated[float, typer.Option(min=0.0, max=0.99, help="Augment: random scale "
                                         "1 +- this about the centroid.")] = 0.1,
    crop: Annotated[float, typer.Option(min=0.01, max=1.0, help="Augment: keep a random "
                                        "contiguous fraction >= this of the frames.")] = 0.8,
    shift: Annotated[float, typer.Option(min=0.0, help="Augment: random translation per axis, "
                                         "max metres.")] = 0.5,
    tilt: Annotated[float, typer.Option(min=0.0, max=90.0, help="Augment: random tilt about "
                                        "the horizontal axis (camera height), max degrees.")] = 15.0,
    ema: Annotated[float, typer.Option(
        min=0.0, max=0.9999, help="Decay of an exponential moving average of the weights, "
        "updated every step; evaluation and checkpoint.pt use it. 0: off.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of weights, data order, augmentation.")] = 0,
    device: Annotated[Device, typer.Option(help="auto: CUDA when available.")] = Device.auto,
    precision: Annotated[Precision, typer.Option(
        help="auto: bf16 (or fp16 + GradScaler) autocast on CUDA, fp32 on CPU.")] = Precision.auto,
    workers: Annotated[Optional[int], typer.Option(
        min=0, help="DataLoader workers (default 0 on CPU; on CUDA the CPUs per "
        "local process, at most 8).")] = None,
    layout: Annotated[Optional[str], typer.Option(
        help="Joint layout (ntu25, kinect20); default from the data.")] = None,
    target_joints: Annotated[Optional[str], typer.Option(
        help="MS-Res-TCN targeted joints: a group (hands, arms, ...) or indices 6,7,10.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last.pt (a fresh start when there is none).")] = False,
    channels: Annotated[Optional[str], typer.Option(
        hidden=True, help="Residual unit channels, e.g. 8,8,8,16,16,16,32,32,32 (tiny models).")
    ] = None,
) -> None:
    """Train a model and write the run directory."""
    from restcn_training.augment import Augmentation
    from restcn_training.engine import TrainConfig, train

    try:
        cfg = TrainConfig(
            data=str(data), train_split=train_split, val_split=val_split, model=model.value,
            window=window, window_policy=window_policy.value, epochs=epochs,
            batch_size=batch_size, lr=lr, l1=l1, weight_decay=weight_decay, dropout=dropout,
            label_smoothing=label_smoothing, schedule=schedule.value,
            plateau_patience=plateau_patience,
            augmentation=Augmentation(crop=crop, rotate=rotate, scale=scale, shift=shift,
                                      tilt=tilt), seed=seed,
            layout=layout, target_joints=target_joints, channels=_channels(channels), ema=ema,
            precision=precision.value, device=device.value, workers=workers, out=str(out),
            resume=resume, command=shlex.join(["restcn-train", *sys.argv[1:]]),
        )
        main_rank = os.environ.get("RANK", "0") == "0"
        live = main_rank and console.is_terminal
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
                            TimeElapsedColumn(), console=console, transient=True) if live else None
        reporter = RichReporter(progress) if main_rank else None
        with progress if progress is not None else contextlib.nullcontext():
            metrics = train(cfg, reporter)
    except (ValueError, OSError) as exc:  # DataError, SkeletonFormatError, FileExistsError, ...
        typer.echo(f"restcn-train: error: {exc}", err=True)
        raise typer.Exit(1) from None
    if main_rank:
        console.print(
            f"final val accuracy {metrics['final_val_accuracy']:.4f} (best "
            f"{metrics['best_val_accuracy']:.4f} at epoch {metrics['best_epoch']}), "
            f"{metrics['train_samples_per_second']:.0f} samples/s; wrote {out}", highlight=False, soft_wrap=True)


if __name__ == "__main__":  # python -m restcn_cli.train (e.g. under torchrun -m)
    app()
