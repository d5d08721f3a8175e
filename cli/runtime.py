"""What every ``restcn-infer`` command shares: options, opening the model, error reporting.

A command module imports these, so ``--model``/``--device``/``--threads`` read the same
everywhere and a bad model or device exits 1 with one line on stderr. Runtime only: importing
this module never imports torch.
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from restcn_infer.classifier import Classifier

console = Console()
err_console = Console(stderr=True, highlight=False)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ModelOption = Annotated[Optional[Path], typer.Option(
    "--model", "-m", help="An .onnx model written by restcn-export, or a bundled NW-UCLA model "
    "by name: res-tcn (the default) or ms-res-tcn.", dir_okay=True)]
DeviceOption = Annotated[Device, typer.Option(
    help="auto: CUDA when onnxruntime can start it, else CPU; cuda: require CUDA; cpu: CPU only.")]
ThreadsOption = Annotated[Optional[int], typer.Option(
    min=1, help="onnxruntime intra-op threads (default: one per physical core).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: object) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1 (a file, model or device error)."""
    err_console.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)
    raise typer.Exit(1)


class _WarningHandler(logging.Handler):
    """One ``warning: ...`` line on the current stderr per logged record."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {escape(record.getMessage())}",
                          soft_wrap=True)


def show_runtime_warnings() -> None:
    """Route the runtime's logged notices (CUDA fallback, joint mapping) to stderr, one line each."""
    logger = logging.getLogger("restcn_infer")
    if not any(isinstance(h, _WarningHandler) for h in logger.handlers):
        logger.addHandler(_WarningHandler(logging.WARNING))


def open_classifier(model: Path | None, device: Device = Device.auto,
                    threads: int | None = None) -> Classifier:
    """The :class:`~restcn_infer.classifier.Classifier` for a command, or exit 1 saying why."""
    from restcn_infer.classifier import Classifier
    from restcn_infer.errors import ModelError
    from restcn_infer.session import DeviceError

    show_runtime_warnings()
    try:
        return Classifier(model, device=device.value, threads=threads)
    except (ModelError, DeviceError) as exc:
        fail(exc)
