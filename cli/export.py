"""restcn-export: a restcn checkpoint -> ONNX model with its metadata, checked against torch.

    restcn-export runs/nw-ucla/checkpoint.pt --out model.onnx --check-data nw_ucla.pkl

Writes nothing unless ``onnx.checker`` passes and onnxruntime matches torch (max abs diff
< 1e-4, printed). Exit codes: 0 ok, 1 checkpoint/export error (reason on stderr), 2 usage.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"


def parse_layers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated layer numbers, got {text!r}") from None


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint written by restcn-train.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(min=18, help="ONNX opset.")] = 18,
    decoder_layers: Annotated[Optional[str], typer.Option(
        help="Layers of the 'decoded' output, e.g. 1,4,7,10 (the default).")] = None,
    no_decoder: Annotated[bool, typer.Option(
        "--no-decoder", help="Export without the Feature Map Decoder head.")] = False,
    precision: Annotated[Precision, typer.Option(
        help="fp32, or fp16 weight storage (half the file, float32 compute).")] = Precision.fp32,
    check_data: Annotated[Optional[Path], typer.Option(
        help="Real input for the parity check: a skeleton file or a PYSKL pickle.")] = None,
) -> None:
    """Export CHECKPOINT to ONNX: input 'skeleton' (batch, time, D), outputs 'logits', 'decoded'."""
    if no_decoder and decoder_layers is not None:
        raise typer.BadParameter("give either --decoder-layers or --no-decoder, not both")
    layers = [] if no_decoder else (parse_layers(decoder_layers) if decoder_layers else None)

    from restcn_export.onnx_export import ExportError, export_onnx
    from restcn_infer.errors import SkeletonFormatError

    try:
        with console.status("exporting and checking parity"):
            report = export_onnx(checkpoint, out, opset=opset, decoder_layers=layers,
                                 precision=precision.value, check_data=check_data)
    except (ExportError, SkeletonFormatError, ValueError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    for name, diff in report.max_abs_diff.items():
        console.print(f"parity {name:>12}: max abs diff {diff:.3g}")
    layers_text = ",".join(map(str, report.decoder_layers)) or "none"
    console.print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.precision}, "
                  f"opset {report.opset}, {report.exporter} exporter, decoder layers {layers_text})",
                  soft_wrap=True)
