"""``restcn-infer evaluate``: accuracy, per-class accuracy and confusion of a model on a split.

    restcn-infer evaluate res-tcn --data nw_ucla.pkl --split val
    restcn-infer evaluate model.onnx --data ntu60-xsub/ --split test --json

Through the runtime (what ``classify`` does), on any labelled data set restcn reads (PYSKL
pickle, packed NTU directory, CTR-GCN ``.npz``). Registered on the ``restcn-infer`` app in
``cli/infer.py``. Exit codes: 0 ok, 1 a model or data error, 2 usage.

``--json`` (stable): ``{"model", "data", "split", "samples", "accuracy", "classes",
"per_class_accuracy" {name: float or null}, "support" [int], "confusion_matrix" [[int]] (row:
true class), "errors" [{"sample", "error"}]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import Progress
from rich.table import Table

from restcn_cli.common import console, domain_errors, err_console, json_text, print_warning
from restcn_cli.runtime import (
    BATCH_SIZE,
    AcceptImplausibleOption,
    BatchSizeOption,
    Device,
    DeviceOption,
    FlipYOption,
    HoldoutFractionOption,
    HoldoutMatchOption,
    HoldoutSeedOption,
    JsonOption,
    ThreadsOption,
    Units,
    UnitsOption,
    input_options,
    open_classifier,
)


def evaluate(
    model: Annotated[Optional[Path], typer.Argument(
        help="An .onnx model or a bundled model name (default: the default bundled model).")
    ] = None,
    data: Annotated[Path, typer.Option(
        help="Labelled data set: PYSKL pickle, packed NTU directory or CTR-GCN .npz.")] = ...,
    split: Annotated[str, typer.Option(help="Split of --data to evaluate on.")] = ...,
    json_out: JsonOption = False,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    batch_size: BatchSizeOption = BATCH_SIZE,
    units: UnitsOption = Units.m,
    flip_y: FlipYOption = False,
    accept_implausible: AcceptImplausibleOption = False,
    holdout_match: HoldoutMatchOption = None,
    holdout_fraction: HoldoutFractionOption = 0.0,
    holdout_seed: HoldoutSeedOption = 0,
) -> None:
    """Accuracy of MODEL on --split of --data, per class, with the confusion matrix.

    Sequences that cannot be classified (unreadable, implausible, non-finite scores) are left
    out of every figure, counted and listed (the first 20 on stderr, all in --json).
    """
    from restcn_infer.datasets import open_dataset, with_holdout
    from restcn_infer.evaluate import evaluate as run_evaluation

    options = input_options(None, units, flip_y, accept_implausible)
    clf = open_classifier(model, device, threads, options)
    with domain_errors():
        dataset = open_dataset(data)
        if holdout_match or holdout_fraction:
            dataset, split = with_holdout(dataset, split, fraction=holdout_fraction,
                                          match=holdout_match, seed=holdout_seed)
        with Progress(console=err_console, transient=True, disable=json_out) as bar:
            task = bar.add_task(f"evaluating {split}", total=None)
            result = run_evaluation(clf, dataset, split, batch_size=batch_size,
                                    progress=lambda done, total: bar.update(
                                        task, completed=done, total=total))
    for sample, reason in list(result.errors.items())[:20]:
        print_warning(f"{sample}: skipped: {reason}")
    if json_out:
        doc = {"model": str(clf.model_path), "data": str(data), "split": split,
               **result.to_json()}
        typer.echo(json_text(doc))
        return
    confusion = result.confusion()
    table = Table(title=f"{clf.model_path.name} on {data.name} [{split}]", title_justify="left")
    for column in ("class", "accuracy", "support", "most confused with"):
        table.add_column(column, justify="left" if column in ("class", "most confused with")
                         else "right")
    for i, name in enumerate(result.classes):
        row = confusion[i].copy()
        row[i] = 0
        other = (f"{result.classes[int(row.argmax())]} ({int(row.max())})" if row.max() else "-")
        accuracy = result.per_class_accuracy()[name]
        table.add_row(name, "-" if accuracy is None else f"{accuracy:.3f}",
                      str(int(confusion[i].sum())), other)
    console.print(table)
    console.print(f"accuracy {result.accuracy:.4f} on {len(result.labels)} sequences"
                  + (f" ({len(result.errors)} skipped)" if result.errors else ""))
