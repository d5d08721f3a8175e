"""``restcn-diagnose compare RUN_A RUN_B``: per-class accuracy of a baseline and a refined run.

    restcn-diagnose compare runs/fix/nw_ucla/res-tcn runs/fix/nw_ucla/ms-res-tcn

Registered into the diagnose app by ``restcn_cli.diagnose``. Exit codes: 0 ok, 1 run/data error,
2 usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from restcn_cli.common import console, domain_errors


def compare(
    run_a: Annotated[Path, typer.Argument(
        help="Baseline: a restcn-train run directory, or a directory of runs (seeds; averaged).")],
    run_b: Annotated[Path, typer.Argument(
        help="Refined model: a run directory or a directory of runs, same classes and split.")],
    target_joints: Annotated[Optional[str], typer.Option(
        help="Joints that mark classes (group like hands, or indices 6,7,10); default: the "
             "refined run's targeted joints, else the layout's hands.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        help="Dataset for the motion criterion; default: the data the runs trained on.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object: a, b (architecture, runs, accuracy, "
                       "accuracy_std, accuracies), target_joints, target_joint_names, criterion, "
                       "classes [{name, a, b, delta, targeted_share, targeted}], accuracy_delta, "
                       "mean_class_delta, mean_class_delta_targeted, mean_class_delta_other.")
    ] = False,
) -> None:
    """Per-class validation accuracy of two runs side by side (the paper's Table 2).

    Classes marked * are those whose motion is carried by the targeted joints more than usual:
    the median share of the targeted joints' body-relative motion energy over the class's
    validation sequences exceeds the median over all validation sequences.
    """
    from restcn_training.compare import compare_runs

    with domain_errors():
        result = compare_runs(run_a, run_b, target_joints, data)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return

    a, b = result.a, result.b
    table = Table(title="Per-class validation accuracy", title_justify="left")
    table.add_column("class")
    table.add_column(f"A {a.architecture}", justify="right")
    table.add_column(f"B {b.architecture}", justify="right")
    table.add_column("B - A", justify="right")
    table.add_column("share", justify="right")
    for row in result.rows:
        name = f"* {row.name}" if row.targeted else f"  {row.name}"
        share = "-" if row.targeted_share is None else f"{row.targeted_share:.2f}"
        delta = Text(f"{row.delta:+.4f}", style="green" if row.delta > 0 else "")
        table.add_row(name, f"{row.a:.4f}", f"{row.b:.4f}", delta, share)
    console.print(table)

    def overall(side) -> str:
        std = f" ± {side.accuracy_std:.4f}" if len(side.runs) > 1 else ""
        return f"{side.accuracy:.4f}{std} ({len(side.runs)} run{'s' * (len(side.runs) > 1)})"

    console.print(f"overall accuracy  A {overall(a)}   B {overall(b)}")
    console.print(f"mean per-class delta (B - A) {result.mean_delta:+.4f}")
    marked, other = result.mean_delta_of(True), result.mean_delta_of(False)
    names = ", ".join(result.target_joint_names)
    if "error" in result.criterion:
        console.print(f"classes not marked: {result.criterion['error']}")
    elif marked is not None and other is not None:
        console.print(f"  * classes ({names}): {marked:+.4f}   other classes: {other:+.4f}",
                      highlight=False)
