"""What every ``restcn-infer`` command shares: options, opening the model, runtime warnings.

A command module imports these, so ``--model``/``--device``/``--threads`` read the same
everywhere and a bad model or device exits 1 with one line on stderr (printing and exit codes:
:mod:`restcn_cli.common`). Runtime only: importing this module never imports torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from restcn_cli.common import choice, domain_errors, print_warning
from restcn_infer.models import BUNDLED_MODELS, DEFAULT_MODEL
from restcn_infer.session import DEVICES

if TYPE_CHECKING:
    from restcn_infer.classifier import Classifier

Device = choice("Device", DEVICES)

ModelOption = Annotated[Optional[Path], typer.Option(
    "--model", "-m", help="An .onnx model written by restcn-export, or a bundled NW-UCLA model "
    f"by name: {', '.join(BUNDLED_MODELS)} (default: {DEFAULT_MODEL}).", dir_okay=True)]
DeviceOption = Annotated[Device, typer.Option(
    help="auto: CUDA when onnxruntime can start it, else CPU; cuda: require CUDA; cpu: CPU only.")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    min=1, help="onnxruntime intra-op threads (default: one per physical core).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Sequences per session call.")]
#: The default of --batch-size.
BATCH_SIZE = 64


class _WarningHandler(logging.Handler):
    """One ``warning: ...`` line on the current stderr per logged record."""

    def emit(self, record: logging.LogRecord) -> None:
        print_warning(record.getMessage())


def show_runtime_warnings() -> None:
    """Route the runtime's logged notices (CUDA fallback, joint mapping) to stderr, a line
    each."""
    logger = logging.getLogger("restcn_infer")
    if not any(isinstance(h, _WarningHandler) for h in logger.handlers):
        logger.addHandler(_WarningHandler(logging.WARNING))


def open_classifier(model: Path | None, device: Device = Device.auto,
                    threads: int | None = None) -> Classifier:
    """The :class:`~restcn_infer.classifier.Classifier` for a command, or exit 1 saying why."""
    from restcn_infer.classifier import Classifier

    show_runtime_warnings()
    with domain_errors():
        return Classifier(model, device=device.value, threads=threads)
