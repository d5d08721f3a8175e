"""``restcn-build-ntu``: pack raw NTU RGB+D ``.skeleton`` files into benchmark directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from restcn_cli.common import domain_errors
from restcn_cli.common import err_console as console
from restcn_infer.ntu import BENCHMARKS
from restcn_training.ntu_builder import DEFAULT_BENCHMARKS, build_ntu_benchmarks

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    skeleton_dir: Annotated[Path, typer.Argument(help="Folder of raw NTU *.skeleton files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable).")],
    benchmark: Annotated[list[str] | None, typer.Option(
        "--benchmark", "-b",
        help=f"Benchmark to pack; repeat for several. One of: {', '.join(BENCHMARKS)} "
             f"(default: {', '.join(DEFAULT_BENCHMARKS)}).")] = None,
    missing_list: Annotated[Path | None, typer.Option(
        help="Official missing-skeleton list; its samples are left out.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Parser processes (default: all CPUs).")] = None,
) -> None:
    """Parse every .skeleton file (in parallel, cached in OUT/cache) and write OUT/<benchmark>/."""
    with Progress(TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("parse", total=None)
        with domain_errors():
            report = build_ntu_benchmarks(
                skeleton_dir, out, benchmarks=benchmark or DEFAULT_BENCHMARKS,
                missing_list=missing_list, workers=workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total))

    table = Table("benchmark", "train", "test", title=f"NTU benchmarks in {report.out_dir}")
    for name, counts in report.splits.items():
        table.add_row(name, f"{counts['train']:,}", f"{counts['test']:,}")
    console.print(table)
    console.print(f"parsed {report.parsed:,} files, reused {report.cached:,} from the cache, "
                  f"skipped {len(report.skipped):,} (listed in {report.out_dir / 'skipped.json'})")
    for entry in report.skipped[:10]:
        console.print(Text.assemble(("  skipped ", "yellow"),
                                    f"{entry['file']}: {entry['reason']}"))
