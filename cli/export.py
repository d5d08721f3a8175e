"""restcn-export: a restcn checkpoint -> ONNX model with its metadata, checked against torch.

    restcn-export runs/nw-ucla/checkpoint.pt --out model.onnx --check-data nw_ucla.pkl
    restcn-export --ensemble runs/joint runs/bone runs/motion --out ensemble.onnx

Writes nothing unless ``onnx.checker`` passes and onnxruntime matches torch (max abs diff
< 1e-4, printed). Exit codes: 0 ok, 1 checkpoint/export error (reason on stderr), 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import choice, console, domain_errors, parse_int_list
from restcn_export.onnx_export import DEFAULT_OPSET, PRECISIONS
from restcn_training.ensemble import FUSIONS

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
Precision = choice("Precision", PRECISIONS)
Fusion = choice("Fusion", FUSIONS)


@app.command()
def export(
    checkpoints: Annotated[list[Path], typer.Argument(
        help="Checkpoint written by restcn-train (or its run directory); with --ensemble, "
             "several: the members.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(min=DEFAULT_OPSET, help="ONNX opset.")] = DEFAULT_OPSET,
    decoder_layers: Annotated[Optional[str], typer.Option(
        help="Layers of the 'decoded' output, e.g. 1,4,7,10 (the default).")] = None,
    no_decoder: Annotated[bool, typer.Option(
        "--no-decoder", help="Export without the Feature Map Decoder head.")] = False,
    precision: Annotated[Precision, typer.Option(
        help="fp32; fp16 weight storage (half the file, float32 compute); int8 (onnxruntime "
             "static quantization, calibrated) or bf16 (OpenVINO bf16 compute), each written only "
             "within 0.5 accuracy points of fp32.")] = Precision("fp32"),
    calibration: Annotated[Optional[Path], typer.Option(
        help="int8/bf16: the data set to calibrate and validate on (default: the checkpoint's "
             "own training data).")] = None,
    calibration_split: Annotated[Optional[str], typer.Option(
        help="int8/bf16: its split (default: the run's training split, else 'train').")] = None,
    check_data: Annotated[Optional[Path], typer.Option(
        help="Real input for the parity check: a skeleton file or a data set.")] = None,
    ensemble: Annotated[bool, typer.Option(
        "--ensemble", help="Fuse the CHECKPOINTS (same classes, layout, bodies, window) into "
        "one graph: one 'skeleton' input, each member's modality computed inside, 'logits' "
        "fused by --fusion, 'decoded' from the first joint member.")] = False,
    weights: Annotated[Optional[str], typer.Option(
        help="With --ensemble: one weight per member, e.g. 2,1,1 (default: equal).")] = None,
    fusion: Annotated[Fusion, typer.Option(
        help="With --ensemble: logprob (weighted mean of log-probabilities), prob (of "
             "probabilities) or logit (weighted sum of logits).")] = Fusion("logprob"),
    triton_repo: Annotated[Optional[Path], typer.Option(
        help="Also write the model into this Triton model repository (NAME/config.pbtxt, "
             "NAME/1/model.onnx; NAME_decoded with the decoder head).")] = None,
    triton_name: Annotated[Optional[str], typer.Option(
        help="The model's name in --triton-repo (default: the --out file's stem).")] = None,
) -> None:
    """Export CHECKPOINTS to ONNX: input 'skeleton' (batch, time, D), outputs 'logits',
    'decoded'."""
    if no_decoder and decoder_layers is not None:
        raise typer.BadParameter("give either --decoder-layers or --no-decoder, not both")
    if len(checkpoints) > 1 and not ensemble:
        raise typer.BadParameter("several checkpoints are exported as one model only with "
                                 "--ensemble")
    if ensemble and len(checkpoints) < 2:
        raise typer.BadParameter("--ensemble needs at least two checkpoints")
    if weights is not None and not ensemble:
        raise typer.BadParameter("--weights applies to --ensemble")
    if triton_name is not None and triton_repo is None:
        raise typer.BadParameter("--triton-name applies to --triton-repo")
    if triton_repo is not None:
        from restcn_export.triton import check_repository

        with domain_errors():
            check_repository(triton_repo, triton_name or out.stem)
    layers = [] if no_decoder else parse_int_list(decoder_layers, "layer numbers")
    try:
        member_weights = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {weights!r}",
                                 param_hint="--weights") from None

    from restcn_export.onnx_export import export_onnx
    from restcn_training.ensemble import ensemble_checkpoint

    with domain_errors(), console.status("exporting and checking parity"):
        source = (ensemble_checkpoint(checkpoints, member_weights, fusion.value) if ensemble
                  else checkpoints[0])
        report = export_onnx(source, out, opset=opset, decoder_layers=layers,
                             precision=precision.value, check_data=check_data,
                             calibration=calibration, calibration_split=calibration_split)
    for name, diff in report.max_abs_diff.items():
        console.print(f"parity {name:>12}: max abs diff {diff:.3g}")
    if getattr(report, "gate", None) is not None:  # a gated (int8, bf16) export
        calib = report.metadata.export["calibration"]
        accuracy = report.gate["accuracy"]
        console.print(f"accuracy fp32 {accuracy['fp32']:.4f}, {report.precision} "
                      f"{accuracy[report.precision]:.4f} on {calib['validation_sequences']} "
                      f"sequences ({calib['validation']}); calibrated on {calib['windows']} "
                      f"windows of {calib['data']} split {calib['split']}", soft_wrap=True)
    layers_text = ",".join(map(str, report.decoder_layers)) or "none"
    console.print(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, {report.precision}, "
                  f"opset {report.opset}, {report.exporter} exporter, "
                  f"decoder layers {layers_text})",
                  soft_wrap=True)
    if triton_repo is not None:
        from restcn_export.triton import write_triton_repository

        with domain_errors():
            served = write_triton_repository(report.path, triton_repo, triton_name)
        for model in served:
            outputs = ", ".join(name for name, _, _ in model.outputs)
            console.print(f"wrote Triton model {model.name} ({outputs}) in {model.folder}",
                          soft_wrap=True)
