"""What every ``restcn-infer`` command shares: options, opening the model, runtime notices.

A command module imports these, so ``--model``/``--device``/``--threads`` and the input options
(``--layout``, ``--units``, ``--flip-y``, ``--accept-implausible``) read the same everywhere and
a bad model or device exits 1 with one line on stderr (printing and exit codes:
:mod:`restcn_cli.common`). Runtime only: importing this module never imports torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from restcn_cli.common import choice, domain_errors, print_note, print_warning
from restcn_infer.backends import RUNTIME_DEVICES as DEVICES
from restcn_infer.input_options import UNITS, InputOptions
from restcn_infer.layouts import BUILTIN_LAYOUTS
from restcn_infer.models import BUNDLED_MODELS, DEFAULT_MODEL

if TYPE_CHECKING:
    from restcn_infer.classifier import Classifier

Device = choice("Device", DEVICES)
Units = choice("Units", UNITS)

ModelOption = Annotated[Optional[Path], typer.Option(
    "--model", "-m", help="An .onnx model written by restcn-export, or a bundled NW-UCLA model "
    f"by name: {', '.join(BUNDLED_MODELS)} (default: {DEFAULT_MODEL}).", dir_okay=True)]
DeviceOption = Annotated[Device, typer.Option(
    help="auto: CUDA when onnxruntime can start it, else CPU (OpenVINO for a bf16 model on a CPU "
    "with native bf16); cuda: require CUDA; cpu: CPU only; tensorrt: TensorRT fp16 (engines "
    "cached), else CUDA, else CPU; openvino: the OpenVINO runtime (pip install "
    "'restcn[openvino]').")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    min=1, help="onnxruntime intra-op threads (default: one per physical core).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Sequences per session call.")]
LayoutOption = Annotated[Optional[str], typer.Option(
    "--layout", help="The input's joint layout: "
    f"{', '.join(sorted(BUILTIN_LAYOUTS))} or a layout .json file (default: guessed from the "
    "joint count, and checked against the bone lengths).")]
UnitsOption = Annotated[Units, typer.Option(
    "--units", help="The input's unit of length; converted to the metres 3-D models read (a "
    "2-D model reads its training keypoints' units, pixels or image fractions: not for it).")]
FlipYOption = Annotated[bool, typer.Option(
    "--flip-y", help="Negate y: for input whose y axis points the other way than the model's "
    "(image-style y down for a 3-D model, y up for a model of image keypoints).")]
AcceptImplausibleOption = Annotated[bool, typer.Option(
    "--accept-implausible", help="Classify input unlike the model's training data (other "
    "units, an inverted axis, another joint order) instead of refusing it; the verdict says "
    "so.")]
HoldoutMatchOption = Annotated[Optional[str], typer.Option(
    help="Use only the sequences of --split whose name matches this regular expression: the "
    "holdout a model was validated on with restcn-train --holdout-match, so that choices are "
    "made without the test split.")]
HoldoutFractionOption = Annotated[float, typer.Option(
    min=0.0, max=0.9, help="Use the stratified holdout fraction of --split that restcn-train "
    "--holdout-fraction carves (same --holdout-seed).")]
HoldoutSeedOption = Annotated[int, typer.Option(help="Seed of the --holdout-fraction draw.")]
#: The default of --batch-size.
BATCH_SIZE = 64


class _NoticeHandler(logging.Handler):
    """One ``warning: ...`` (or ``note: ...`` for INFO) line on the current stderr per record."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            print_warning(record.getMessage())
        else:
            print_note(record.getMessage())


def show_runtime_warnings() -> None:
    """Route the runtime's logged notices (CUDA fallback, joint mapping, a guessed layout) to
    stderr, a line each."""
    logger = logging.getLogger("restcn_infer")
    if not any(isinstance(h, _NoticeHandler) for h in logger.handlers):
        logger.addHandler(_NoticeHandler(logging.INFO))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def input_options(layout: str | None = None, units: Units = Units.m, flip_y: bool = False,
                  accept_implausible: bool = False) -> InputOptions:
    """The :class:`InputOptions` of the common options, or exit 1 naming a bad layout."""
    with domain_errors():
        return InputOptions.from_names(layout, units.value, flip_y, accept_implausible)


def open_classifier(model: Path | None, device: Device = Device.auto,
                    threads: int | None = None,
                    options: InputOptions | None = None) -> Classifier:
    """The :class:`~restcn_infer.classifier.Classifier` for a command, or exit 1 saying why."""
    from restcn_infer.classifier import Classifier

    show_runtime_warnings()
    with domain_errors():
        return Classifier(model, device=device.value, threads=threads, options=options)
