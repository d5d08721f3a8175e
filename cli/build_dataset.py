"""``restcn-build-dataset``: recordings of one's own and a labels table -> a PYSKL pickle.

    restcn-build-dataset clips/ --labels labels.csv --layout coco17 --out mine/mine.pkl
    restcn-build-dataset clips/ --labels labels.csv --split-by subject --val 2,4 --out d.pkl

``labels.csv`` has a header with ``file`` and ``label`` (and optionally ``split``, ``name`` and
any columns a split rule reads); see :mod:`restcn_infer.labels_csv`. Writes ``--out`` and
``label_map.txt`` beside it; train with ``restcn-train --data OUT``. Exit codes: 0 written (the
recordings that could not be read are listed), 1 nothing written, 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from restcn_cli.common import choice, domain_errors, fail
from restcn_cli.common import err_console as console
from restcn_infer.dataset_builder import DEFAULT_BODIES, build_dataset
from restcn_infer.readers import FORMATS
from restcn_infer.readers.keypoints import DEFAULT_MIN_CONFIDENCE

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])
Format = choice("Format", FORMATS)
#: Skipped recordings listed on the terminal (all of them are counted).
SHOWN_SKIPPED = 20


@app.command()
def main(
    folder: Annotated[Path, typer.Argument(help="Folder the table's 'file' paths are in.")],
    labels: Annotated[Path, typer.Option(help="labels.csv: file,label[,split][,name][,...].")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .pkl to write.")],
    layout: Annotated[Optional[str], typer.Option(
        help="Output layout: a built-in name or a layout .json (default: the first "
             "recording's).")] = None,
    source_layout: Annotated[Optional[str], typer.Option(
        help="Layout of recordings that do not name one (e.g. .npy of a shared joint count).")
    ] = None,
    format: Annotated[Format, typer.Option(help="Reader format of every recording.")
                      ] = Format("auto"),
    split_by: Annotated[Optional[str], typer.Option(
        help="Column whose --val values form split 'val' (the rest: 'train').")] = None,
    val: Annotated[Optional[str], typer.Option(
        help="Comma-separated values of --split-by held out, e.g. 2,4.")] = None,
    classes: Annotated[Optional[Path], typer.Option(
        help="Class names, one per line, in label order (default: order of appearance).")
    ] = None,
    bodies: Annotated[int, typer.Option(min=1, help="Bodies kept per recording.")
                      ] = DEFAULT_BODIES,
    min_confidence: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Joints scored below this are zeroed (absent).")
    ] = DEFAULT_MIN_CONFIDENCE,
) -> None:
    """Read every recording of LABELS under FOLDER and write one PYSKL pickle."""
    held = [v.strip() for v in val.split(",") if v.strip()] if val else []
    names = None
    if classes is not None:
        try:
            names = [ln.strip() for ln in classes.read_text(encoding="utf-8").splitlines()
                     if ln.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{classes}: cannot read the class list ({exc})")
    with Progress(TextColumn("reading"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("read", total=None)
        with domain_errors():
            report = build_dataset(
                folder, labels, out, layout=layout, source_layout=source_layout,
                format=format.value, split_by=split_by, val=held, classes=names, bodies=bodies,
                min_confidence=min_confidence,
                progress=lambda done, total: bar.update(task, completed=done, total=total))

    table = Table("split", "sequences")
    for name, count in report.splits.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"wrote {report.out} ({report.layout.name}, {report.coords}-D, up to "
                  f"{report.bodies} bodies) and {report.label_map} ({len(report.classes)} "
                  "classes)", soft_wrap=True)
    if report.skipped:
        console.print(f"left out {len(report.skipped):,} recordings that could not be used:")
        for entry in report.skipped[:SHOWN_SKIPPED]:
            reason = str(entry["reason"])
            if str(entry["file"]) not in reason:  # say which file whatever the reason says
                reason = f"{entry['file']}: {reason}"
            console.print(Text.assemble(("  line ", "yellow"), f"{entry['line']}: ", reason),
                          soft_wrap=True)
