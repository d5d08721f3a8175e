"""restcn-export: a restcn checkpoint -> ONNX model with its metadata, checked against torch.

    restcn-export runs/nw-ucla/checkpoint.pt --out model.onnx --check-data nw_ucla.pkl

Writes nothing unless ``onnx.checker`` passes and onnxruntime matches torch (max abs diff
< 1e-4, printed). Exit codes: 0 ok, 1 checkpoint/export error (reason on stderr), 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import choice, console, domain_errors, parse_int_list
from restcn_export.onnx_export import DEFAULT_OPSET, PRECISIONS

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
Precision = choice("Precision", PRECISIONS)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="Checkpoint written by restcn-train (or its run directory).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(min=DEFAULT_OPSET, help="ONNX opset.")] = DEFAULT_OPSET,
    decoder_layers: Annotated[Optional[str], typer.Option(
        help="Layers of the 'decoded' output, e.g. 1,4,7,10 (the default).")] = None,
    no_decoder: Annotated[bool, typer.Option(
        "--no-decoder", help="Export without the Feature Map Decoder head.")] = False,
    precision: Annotated[Precision, typer.Option(
        help="fp32, or fp16 weight storage (half the file, float32 compute).")] = Precision("fp32"),
    check_data: Annotated[Optional[Path], typer.Option(
        help="Real input for the parity check: a skeleton file or a data set.")] = None,
) -> None:
    """Export CHECKPOINT to ONNX: input 'skeleton' (batch, time, D), outputs 'logits', 'decoded'."""
    if no_decoder and decoder_layers is not None:
        raise typer.BadParameter("give either --decoder-layers or --no-decoder, not both")
    layers = [] if no_decoder else parse_int_list(decoder_layers, "layer numbers")

    from restcn_export.onnx_export import export_onnx

    with domain_errors(), console.status("exporting and checking parity"):
        report = export_onnx(checkpoint, out, opset=opset, decoder_layers=layers,
                             precision=precision.value, check_data=check_data)
    for name, diff in report.max_abs_diff.items():
        console.print(f"parity {name:>12}: max abs diff {diff:.3g}")
    layers_text = ",".join(map(str, report.decoder_layers)) or "none"
    console.print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.precision}, "
                  f"opset {report.opset}, {report.exporter} exporter, "
                  f"decoder layers {layers_text})",
                  soft_wrap=True)
