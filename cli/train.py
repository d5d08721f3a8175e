"""``restcn-train``: train Res-TCN / MS-Res-TCN on a PYSKL pickle, a packed NTU directory or a
CTR-GCN ``.npz``.

    restcn-train --data nw_ucla.pkl --train-split train --val-split val --out runs/nw-ucla

Runs on CPU or CUDA (``--device auto``), data-parallel under ``torchrun``, and continues an
interrupted run exactly with ``--resume``. Every default and choice comes from the library
(:class:`restcn_training.config.TrainConfig`, the registry, the window policies). Exit codes:
0 ok, 1 data/model error, 2 usage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from restcn_cli.common import choice, console, domain_errors, parse_int_list
from restcn_infer.layouts import BUILTIN_LAYOUTS
from restcn_infer.modality import MODALITIES
from restcn_infer.preprocess import WINDOW_POLICIES
from restcn_training.config import PRECISIONS, SCHEDULES, TrainConfig
from restcn_training.distributed import TRAIN_DEVICES
from restcn_training.registry import model_names

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

ModelName = choice("ModelName", model_names())
Modality = choice("Modality", MODALITIES)
WindowPolicy = choice("WindowPolicy", WINDOW_POLICIES)
Schedule = choice("Schedule", SCHEDULES)
Precision = choice("Precision", PRECISIONS)
Device = choice("Device", TRAIN_DEVICES)

_CONFIG = TrainConfig(data="")  # every default of the recipe, in one place
_AUGMENT = _CONFIG.augmentation


def _default(name: str) -> Any:
    return getattr(_CONFIG, name)


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
            f"  {row['seconds']:.1f}s", soft_wrap=True)


@app.command()
def main(
    data: Annotated[Path, typer.Option(help="PYSKL/mmaction2 pickle (splits inside), a packed "
                                            "NTU benchmark directory (meta.json) or a CTR-GCN "
                                            ".npz (splits train, test).")],
    out: Annotated[Path, typer.Option(help="Run directory: checkpoint.pt, last.pt, history.csv, "
                                           "metrics.json.")],
    train_split: Annotated[str, typer.Option(help="Split to train on.")] = _default("train_split"),
    val_split: Annotated[str, typer.Option(
        help="Split to validate on (final accuracy).")] = _default("val_split"),
    model: Annotated[ModelName, typer.Option(help="Architecture.")] = ModelName(_default("model")),
    modality: Annotated[Modality, typer.Option(
        help="What the network reads, computed inside it from the raw coordinates: joints, "
             "bones (joint minus parent), their motion (frame differences), or bone motion."
    )] = Modality(_default("modality")),
    window: Annotated[int, typer.Option(min=1, help="Frames per input (T).")] = _default("window"),
    window_policy: Annotated[WindowPolicy, typer.Option(
        help="resample: stretch the action to the window; pad: zero-pad (the paper's NTU input)."
    )] = WindowPolicy(_default("window_policy")),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = _default("epochs"),
    batch_size: Annotated[int, typer.Option(
        min=1, help="Batch size (per process); the paper used 128 on NTU.")] = _default(
        "batch_size"),
    lr: Annotated[float, typer.Option(min=0.0, help="Initial SGD learning rate.")] = _default("lr"),
    schedule: Annotated[Schedule, typer.Option(
        help="cosine: anneal to 0 over the epochs; plateau: lr x0.1 when the validation loss "
             "stops improving (the paper)."
    )] = Schedule(_default("schedule")),
    plateau_patience: Annotated[int, typer.Option(min=0, help="Epochs without val-loss "
                                                  "improvement before lr x0.1.")] = _default(
        "plateau_patience"),
    l1: Annotated[float, typer.Option(min=0.0, help="L1 weight on every conv kernel.")] = _default(
        "l1"),
    weight_decay: Annotated[float, typer.Option(
        min=0.0, help="SGD weight decay (L2).")] = _default("weight_decay"),
    dropout: Annotated[float, typer.Option(
        min=0.0, max=0.99, help="Dropout after every ReLU.")] = _default("dropout"),
    label_smoothing: Annotated[float, typer.Option(
        min=0.0, max=0.99, help="Label smoothing of the loss.")] = _default("label_smoothing"),
    rotate: Annotated[float, typer.Option(min=0.0, max=180.0, help="Augment: random rotation "
                                          "about the vertical axis, max degrees.")
                      ] = _AUGMENT.rotate,
    scale: Annotated[float, typer.Option(min=0.0, max=0.99, help="Augment: random scale "
                                         "1 +- this about the centroid.")] = _AUGMENT.scale,
    crop: Annotated[float, typer.Option(min=0.01, max=1.0, help="Augment: keep a random "
                                        "contiguous fraction >= this of the frames.")
                    ] = _AUGMENT.crop,
    shift: Annotated[float, typer.Option(min=0.0, help="Augment: random translation per axis, "
                                         "max metres.")] = _AUGMENT.shift,
    tilt: Annotated[float, typer.Option(min=0.0, max=90.0, help="Augment: random tilt about "
                                        "the horizontal axis (camera height), max degrees.")
                    ] = _AUGMENT.tilt,
    roll: Annotated[float, typer.Option(min=0.0, max=90.0, help="Augment: random roll about "
                                        "the depth axis (a camera tilted sideways), max "
                                        "degrees.")] = _AUGMENT.roll,
    mixup: Annotated[float, typer.Option(
        min=0.0, help="Mixup alpha: train on Beta(alpha, alpha) mixes of two sequences' raw "
        "coordinates and their labels. 0: off.")] = _default("mixup"),
    ema: Annotated[float, typer.Option(
        min=0.0, max=0.9999, help="Decay of an exponential moving average of the weights, "
        "updated every step; evaluation and checkpoint.pt use it. 0: off.")] = _default("ema"),
    seed: Annotated[int, typer.Option(
        help="Seed of weights, data order, augmentation.")] = _default("seed"),
    device: Annotated[Device, typer.Option(
        help="auto: CUDA when available.")] = Device(_default("device")),
    precision: Annotated[Precision, typer.Option(
        help="auto: bf16 (or fp16 + GradScaler) autocast on CUDA, fp32 on CPU.")
    ] = Precision(_default("precision")),
    compile: Annotated[bool, typer.Option(
        "--compile", help="torch.compile the training forward (faster on some GPUs; the "
        "first epoch pays the compilation).")] = False,
    layout: Annotated[Optional[str], typer.Option(
        help=f"Joint layout of the data: {', '.join(sorted(BUILTIN_LAYOUTS))} or a layout "
             ".json file; default: the layout the data set declares (restcn-build-dataset "
             "writes it), else the one of its joint count.")] = None,
    target_joints: Annotated[Optional[str], typer.Option(
        help="MS-Res-TCN targeted joints: a group (hands, arms, ...), indices 6,7,10, or a "
             "diagnosis.json from restcn-diagnose report (its suggested target).")] = None,
    holdout_fraction: Annotated[float, typer.Option(
        min=0.0, max=0.9, help="Validate on this stratified fraction of the training split "
        "instead of --val-split (never read then): for choosing recipes.")
    ] = _default("holdout_fraction"),
    holdout_match: Annotated[Optional[str], typer.Option(
        help="Validate on the training sequences whose name matches this regular expression "
             "(e.g. '_v02$': NW-UCLA view 2) instead of --val-split.")] = None,
    holdout_seed: Annotated[int, typer.Option(
        help="Seed of the --holdout-fraction draw (keep it fixed across a sweep).")
    ] = _default("holdout_seed"),
    resume: Annotated[bool, typer.Option(
        help="Continue the run in --out from its last.pt (a fresh start when there is none).")
    ] = False,
    channels: Annotated[Optional[str], typer.Option(
        hidden=True, help="Residual unit channels, e.g. 8,8,8,16,16,16,32,32,32 (tiny models).")
    ] = None,
) -> None:
    """Train a model and write the run directory."""
    from restcn_training.engine import train

    unit_channels = parse_int_list(channels, "channel counts")
    cfg = dataclasses.replace(
        _CONFIG, data=str(data), train_split=train_split, val_split=val_split,
        model=model.value, modality=modality.value, window=window,
        window_policy=window_policy.value, epochs=epochs,
        batch_size=batch_size, lr=lr, l1=l1, weight_decay=weight_decay, dropout=dropout,
        label_smoothing=label_smoothing, schedule=schedule.value,
        plateau_patience=plateau_patience,
        augmentation=dataclasses.replace(_AUGMENT, crop=crop, rotate=rotate, scale=scale,
                                         shift=shift, tilt=tilt, roll=roll), mixup=mixup,
        seed=seed, layout=layout, target_joints=target_joints,
        holdout_fraction=holdout_fraction, holdout_match=holdout_match, holdout_seed=holdout_seed,
        channels=tuple(unit_channels) if unit_channels else None, ema=ema,
        precision=precision.value, device=device.value, compile=compile, out=str(out),
        resume=resume, command=shlex.join(["restcn-train", *sys.argv[1:]]),
    )
    main_rank = os.environ.get("RANK", "0") == "0"
    live = main_rank and console.is_terminal
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
                        TimeElapsedColumn(), console=console, transient=True) if live else None
    reporter = RichReporter(progress) if main_rank else None
    with domain_errors(), progress if progress is not None else contextlib.nullcontext():
        metrics = train(cfg, reporter)
    if main_rank:
        console.print(
            f"final val accuracy {metrics['final_val_accuracy']:.4f} (best "
            f"{metrics['best_val_accuracy']:.4f} at epoch {metrics['best_epoch']}), "
            f"{metrics['train_samples_per_second']:.0f} samples/s; wrote {out}", soft_wrap=True)


if __name__ == "__main__":  # python -m restcn_cli.train (e.g. under torchrun -m)
    app()
