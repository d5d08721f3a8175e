"""``restcn-diagnose report``: diagnose a model on a labelled split, as numbers and a page.

    restcn-diagnose report runs/nw-ucla --data nw_ucla.pkl --split val --out diag/
    restcn-diagnose report model.onnx --data ntu60-xsub/ --split test --out diag/ \
        --max-sequences 3000

SOURCE is a run directory, a checkpoint (exported to ONNX in a temporary folder first: the
diagnosis measures the model as it is deployed), an ``.onnx`` or a bundled model name. Writes
``OUT/diagnosis.json`` and ``OUT/report.html`` (one self-contained page). Registered into the
diagnose app by ``restcn_cli.diagnose``. Exit codes: 0 ok, 1 model/data error, 2 usage.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from restcn_cli.common import console, domain_errors, err_console
from restcn_cli.runtime import HoldoutFractionOption, HoldoutMatchOption, HoldoutSeedOption


def report(
    source: Annotated[str, typer.Argument(
        help="A run directory, a checkpoint, an .onnx model or a bundled model name.")],
    data: Annotated[Path, typer.Option(
        help="Labelled data set: PYSKL pickle, packed NTU directory or CTR-GCN .npz.")],
    split: Annotated[str, typer.Option(help="Split of --data to diagnose.")],
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="Folder for diagnosis.json and report.html.")],
    max_sequences: Annotated[Optional[int], typer.Option(
        min=2, help="Diagnose at most this many sequences, evenly from every class.")] = None,
    holdout_match: HoldoutMatchOption = None,
    holdout_fraction: HoldoutFractionOption = 0.0,
    holdout_seed: HoldoutSeedOption = 0,
    threads: Annotated[Optional[int], typer.Option(
        min=1, help="onnxruntime intra-op threads (default: one per physical core).")] = None,
) -> None:
    """Diagnose SOURCE on --split of --data: accuracy, emphasis, responses, confusion in decoded
    space, view invariance, and the suggested fix; written as JSON and as a page."""

    from restcn_infer.datasets import open_dataset, with_holdout
    from restcn_infer.diagnosis import DiagnosisOptions
    from restcn_infer.diagnosis_summary import diagnose
    from restcn_infer.output_paths import check_output_dir
    from restcn_infer.report import write_report

    with domain_errors(), contextlib.ExitStack() as stack:
        check_output_dir(out, what="--out (diagnosis.json, report.html)")
        dataset = open_dataset(data)
        if holdout_match or holdout_fraction:
            dataset, split = with_holdout(dataset, split, fraction=holdout_fraction,
                                          match=holdout_match, seed=holdout_seed)
        model = stack.enter_context(_deployed(source))
        from restcn_infer.classifier import Classifier

        classifier = Classifier(model, device="cpu", threads=threads)
        bar = stack.enter_context(Progress(
            TextColumn("diagnosing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=True))
        task = bar.add_task("diagnose", total=None)
        result = diagnose(classifier, dataset, split,
                          options=DiagnosisOptions(max_sequences=max_sequences),
                          target_file=str(out / "diagnosis.json"),
                          progress=lambda done, total: bar.update(task, completed=done,
                                                                  total=total))
        json_path, html_path = write_report(result, out)
    doc = result.document
    console.print(f"accuracy {doc['accuracy']:.4f} on {doc['sequences']} sequences of "
                  f"{data.name} [{split}]")
    console.print("weak classes: " + (", ".join(doc["finding"]["weak_classes"]) or "none"))
    target = doc["suggested_target_joints"]
    console.print(f"finding: {target['reason']}", soft_wrap=True)
    if target["command"]:
        console.print(f"fix: {target['command']}", soft_wrap=True)
    console.print(f"wrote {json_path} and {html_path}")


@contextlib.contextmanager
def _deployed(source: str):
    """The ``.onnx`` to diagnose: SOURCE itself, or a checkpoint's export in a temp folder."""
    path = Path(source)
    checkpoint = path.is_dir() or path.suffix.lower() in (".pt", ".pth")
    if not checkpoint:
        yield source  # an .onnx or a bundled name: the classifier resolves (and checks) it
        return
    from restcn_export.onnx_export import export_onnx

    with tempfile.TemporaryDirectory(prefix="restcn-diagnose-") as tmp:
        yield export_onnx(path, Path(tmp) / "model.onnx").path
