"""restcn-infer: classify skeleton files with an exported model (the bundled one by default).

    restcn-infer classify examples/nw_ucla_pick_up_with_one_hand.npy S001C001P001R001A001.skeleton
    restcn-infer classify --json --top-k 3 *.npy
    restcn-infer info MODEL.onnx

Runtime only (numpy + onnxruntime): no torch. Exit codes: 0 ok, 1 a file/model error (reason on
stderr; other files are still classified), 2 usage.

``--json`` output of ``classify`` (stable): a list with one object per classified file, in input
order, ``{"file": str, "top": [{"label": int, "name": str, "probability": float}, ...]}``
(most likely first); files that fail are left out and reported on stderr.

Adding a command: write it in its own module using :mod:`restcn_cli.runtime`'s options and
``open_classifier``, then add its import and one ``app.command(...)(func)`` line at the bottom.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.runtime import (
    Device,
    DeviceOption,
    JsonOption,
    ModelOption,
    ThreadsOption,
    console,
    err_console,
    fail,
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
        help="Skeleton files: NTU .skeleton, .npy (T,V,3)/(M,T,V,3), .json, one-sequence .pkl.")],
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes shown per file.")] = 5,
    json_out: JsonOption = False,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per session call.")] = 64,
) -> None:
    """Classify each FILE; a bad file is reported on stderr and the others still run."""
    from rich.progress import Progress

    clf = open_classifier(model, device, threads)
    results, failed = [], 0
    with Progress(console=err_console, transient=True,
                  disable=json_out or len(files) <= batch_size) as progress:
        task = progress.add_task("classifying", total=len(files))
        for result in clf.classify_files(files, top_k=top_k, batch_size=batch_size):
            progress.advance(task)
            if result.error is not None:
                failed += 1
                err_console.print(f"[red]error:[/red] {result.error}", soft_wrap=True)
            else:
                results.append(result)
    if json_out:
        doc = [{"file": str(r.path), "top": [{"label": p.label, "name": p.name,
                                              "probability": p.probability} for p in r.top]}
               for r in results]
        typer.echo(json.dumps(doc, indent=2))
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
                          end_section=rank == len(result.top))
    if results:
        console.print(table)


def info(
    model: Annotated[Optional[Path], typer.Argument(
        help="An .onnx model written by restcn-export, or a bundled model by name: res-tcn "
        "(the default) or ms-res-tcn.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Show what MODEL says about itself: architecture, layout, classes, training, metrics."""
    from dataclasses import asdict

    clf = open_classifier(model, Device.cpu)
    meta = clf.metadata
    export_info = clf.session.get_modelmeta().custom_metadata_map.get("restcn_export")
    doc = {"model": str(clf.model_path), **asdict(meta),
           "export": json.loads(export_info) if export_info else {}}
    if json_out:
        typer.echo(json.dumps(doc, indent=2))
        return
    for key in ("mean", "joint_names", "training", "metrics"):
        doc.pop(key)
    doc["trained by"] = meta.training.get("command", "-")
    doc["data"] = ", ".join(f"{k}={meta.training[k]}" for k in ("data", "train_split", "val_split")
                            if k in meta.training) or "-"
    doc["metrics"] = {k: round(v, 4) if isinstance(v, float) else v
                      for k, v in meta.metrics.items() if isinstance(v, (int, float, str))}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        console.print(f"[bold]{key:>15}[/bold]  {value}", soft_wrap=True, highlight=False)


app.command("classify")(classify)
app.command("info")(info)

from restcn_cli.infer_stream import serve, stream  # noqa: E402 - commands in their own module

app.command("stream")(stream)
app.command("serve")(serve)

from restcn_cli.infer_decode import decode  # noqa: E402 - commands in their own module

app.command("decode")(decode)
