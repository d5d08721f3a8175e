"""restcn-infer: classify skeleton files with an exported model (the bundled one by default).

    restcn-infer classify examples/nw_ucla_pick_up_with_one_hand.npy S001C001P001R001A001.skeleton
    restcn-infer classify --json --top-k 3 *.npy
    restcn-infer info MODEL.onnx

Runtime only (numpy + onnxruntime): no torch. Exit codes: 0 ok, 1 a file/model error (reason on
stderr; other files are still classified), 2 usage.

``--json`` output of ``classify`` (stable): a list with one object per classified file, in input
order, ``{"file": str, "top": [{"label": int, "name": str, "probability": float}, ...],
"input": {"plausible", "layout", "layout_guessed", "checked", "envelope", "scale"[,
"converted", "problems", "accepted_implausible"]}}`` (most likely first; ``input`` is the
plausibility verdict); files that fail (unreadable, implausible, non-finite scores) are left
out and reported on stderr. Strict JSON: never NaN.

Adding a command: write it in its own module using :mod:`restcn_cli.runtime`'s options and
``open_classifier``, then add its import and one ``app.command(...)(func)`` line at the bottom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import console, err_console, json_text, print_error, print_warning
from restcn_cli.runtime import (
    BATCH_SIZE,
    AcceptImplausibleOption,
    BatchSizeOption,
    Device,
    DeviceOption,
    FlipYOption,
    JsonOption,
    LayoutOption,
    ModelOption,
    ThreadsOption,
    Units,
    UnitsOption,
    input_options,
    open_classifier,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"restcn-infer {version('restcn')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Classify skeleton sequences with an exported restcn model (numpy + onnxruntime)."""


def classify(
    files: Annotated[list[Path], typer.Argument(
        help="Skeleton files: NTU .skeleton, .npy (T,V,C)/(M,T,V,C), .json, one-sequence .pkl, "
             "pose-estimator output (MMPose/RTMPose JSON, MediaPipe JSON, OpenPose folders); "
             "C = 3, or 2 for a 2-D model.")],
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes shown per file.")] = 5,
    json_out: JsonOption = False,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    batch_size: BatchSizeOption = BATCH_SIZE,
    layout: LayoutOption = None,
    units: UnitsOption = Units.m,
    flip_y: FlipYOption = False,
    accept_implausible: AcceptImplausibleOption = False,
) -> None:
    """Classify each FILE; a bad file is reported on stderr and the others still run.

    Input unlike the model's training data (other units, y pointing down, another joint order)
    is refused with what looks wrong and how to fix it: --units, --flip-y, --layout, or
    --accept-implausible.
    """
    from rich.progress import Progress

    options = input_options(layout, units, flip_y, accept_implausible)
    clf = open_classifier(model, device, threads, options)
    results, failed = [], 0
    with Progress(console=err_console, transient=True,
                  disable=json_out or len(files) <= batch_size) as progress:
        task = progress.add_task("classifying", total=len(files))
        for result in clf.classify_files(files, top_k=top_k, batch_size=batch_size):
            progress.advance(task)
            if result.error is not None:
                failed += 1
                print_error(result.error)
            else:
                results.append(result)
                if result.verdict is not None and result.verdict.accepted:
                    print_warning(f"{result.path}: classified although implausible: "
                                  + "; ".join(result.verdict.problems))
    if json_out:
        doc = [{"file": str(r.path), "top": [{"label": p.label, "name": p.name,
                                              "probability": p.probability} for p in r.top],
                "input": r.verdict.to_json()}
               for r in results]
        typer.echo(json_text(doc))
    else:
        _print_table(results)
    if failed:
        raise typer.Exit(1)


def _print_table(results: list) -> None:
    from rich.table import Table

    table = Table()
    table.add_column("file", overflow="fold")
    for column in ("rank", "class", "probability"):
        table.add_column(column)
    for result in results:
        for rank, pred in enumerate(result.top, 1):
            table.add_row(str(result.path) if rank == 1 else "", str(rank),
                          f"{pred.name} ({pred.label})", f"{pred.probability:.3f}",
                          end_section=rank == len(result.top))  # the console prints no markup
    if results:
        console.print(table)


def info(
    model: Annotated[Optional[Path], typer.Argument(
        help="An .onnx model written by restcn-export, or a bundled model by name: res-tcn "
        "(the default) or ms-res-tcn.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Show what MODEL says about itself: architecture, layout, classes, training, metrics."""
    from rich.text import Text

    clf = open_classifier(model, Device.cpu)
    meta = clf.metadata
    spec = meta.spec
    doc = {"model": str(clf.model_path), "format_version": meta.format_version,
           **spec.to_dict(), "decoder_layers": list(meta.decoder_layers),
           "export": dict(meta.export), "weights_verified": clf.weights_verified,
           "input_check": clf.checker.envelope.to_dict()}
    if json_out:
        typer.echo(json_text(doc))
        return
    training = spec.training
    rows = {
        "model": str(clf.model_path),
        "architecture": spec.architecture,
        "input": (f"{spec.input.layout.name}, {spec.input.coords}-D "
                  f"({'x, y, z' if spec.input.coords == 3 else 'x, y'}), {spec.input.bodies} "
                  f"bodies, window {spec.input.window} ({spec.input.policy}), D={spec.input.D}"),
        "classes": f"{spec.num_classes}: " + ", ".join(spec.classes),
        "decoder layers": ", ".join(map(str, meta.decoder_layers)) or "-",
        "target joints": ", ".join(map(str, spec.target_joints)) or "-",
        "trained by": training.get("command", "-"),
        "data": ", ".join(f"{k}={training[k]}" for k in ("data", "train_split", "val_split")
                          if k in training) or "-",
        "metrics": ", ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}"
                             for k, v in spec.metrics.items()
                             if isinstance(v, (int, float, str))) or "-",
        "export": ", ".join(f"{k}={v}" for k, v in meta.export.items()) or "-",
        "weights": ("verified against the digest in the metadata" if clf.weights_verified else
                    "no digest in the metadata (exported before digests existed)"),
        "input check": _envelope_line(clf.checker.envelope),
    }
    for key, value in rows.items():
        console.print(Text.assemble((f"{key:>15}", "bold"), "  ", str(value)), soft_wrap=True)


def _envelope_line(envelope) -> str:
    """The plausibility reference of a model in one line."""
    low, mid, high = envelope.scale
    parts = [f"{envelope.origin}" + (f" ({envelope.sequences} sequences)"
                                     if envelope.sequences else ""),
             f"median bone {mid:.3g} ({low:.3g}..{high:.3g})"]
    if envelope.up is not None:
        parts.append("up " + "(" + ", ".join(f"{v:.2f}" for v in envelope.up) + ")")
    if envelope.bone_ratios is not None:
        parts.append("bone proportions")
    if envelope.centre_low is not None:
        parts.append("positions")
    return ", ".join(parts)


app.command("classify")(classify)
app.command("info")(info)

from restcn_cli.infer_stream import serve, stream  # noqa: E402 - commands in their own module

app.command("stream")(stream)
app.command("serve")(serve)

from restcn_cli.infer_decode import decode  # noqa: E402 - commands in their own module
from restcn_cli.infer_evaluate import evaluate  # noqa: E402

app.command("decode")(decode)
app.command("evaluate")(evaluate)
