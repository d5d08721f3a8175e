"""restcn-diagnose: look inside a trained run (the paper's "diagnose" step).

    restcn-diagnose primitives runs/nw_ucla/res-tcn --out diag/
    restcn-diagnose responses runs/nw_ucla/res-tcn --data ../shared/data/nw_ucla/nw_ucla.pkl \\
        --split val --class "pick up with one hand" --out diag/responses.png
    restcn-diagnose compare RUN_A RUN_B
    restcn-diagnose report RUN --data nw_ucla.pkl --split val --out diag/

Torch side (reads checkpoints). Drawing needs the ``viz`` extra. Exit codes: 0 ok, 1 a run,
data or missing-matplotlib error (reason on stderr), 2 usage.

Adding a command: write it in its own module, then add its import and one
``app.command(...)(func)`` line at the bottom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import console, domain_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])

RunArgument = Annotated[Path, typer.Argument(
    help="A restcn-train run directory (its checkpoint.pt) or a checkpoint file.")]
SourceArgument = Annotated[Path, typer.Argument(
    help="A run directory, a checkpoint, an exported .onnx or a bundled model name.")]


def primitives(
    run: SourceArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for primitives.png.")],
    scale: Annotated[Optional[float], typer.Option(
        min=0.0, help="Multiply filter weights by this before adding the mean skeleton "
                      "(default: the largest joint offset becomes 1/4 of the skeleton's height).")
    ] = None,
    top: Annotated[Optional[int], typer.Option(
        min=1, help="Draw only the TOP filters of largest weight norm (default: all).")] = None,
) -> None:
    """Draw every conv1 filter as a moving skeleton (motion primitives, paper Figure 3)."""
    with domain_errors():
        from restcn_infer.models import BUNDLED_MODELS
        from restcn_infer.output_paths import check_output_dir

        check_output_dir(out, what="--out (primitives.png)")

        bundled = not run.exists() and str(run) in BUNDLED_MODELS
        deployed = run.suffix.lower() == ".onnx" or bundled
        if not deployed:  # a run directory or a checkpoint (a missing path is reported as one)
            from restcn_training.diagnose import write_primitives

            path, used = write_primitives(run, out, scale=scale, top=top)
        else:  # a deployed model: its 'filters' output
            from restcn_infer.classifier import Classifier
            from restcn_infer.primitives import write_model_primitives

            path, used = write_model_primitives(Classifier(run, device="cpu"), out,
                                                scale=scale, top=top)
    console.print(f"motion primitives (weights x {used:.3g} + mean skeleton) -> {path}")


def responses(
    run: RunArgument,
    data: Annotated[Path, typer.Option(
        help="The data set: a PYSKL pickle or a packed benchmark directory.")],
    split: Annotated[str, typer.Option(help="Split of --data to take the sequences from.")],
    class_name: Annotated[str, typer.Option("--class", help="Class name, as in label_map.txt.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")],
    samples: Annotated[int, typer.Option(min=1, help="Sequences of the class to plot.")] = 5,
) -> None:
    """Plot conv1 filter response magnitudes over time for sequences of a class (Figure 8)."""
    from restcn_training.diagnose import write_responses

    with domain_errors():
        from restcn_infer.output_paths import check_output_file

        check_output_file(out, what="--out", suffixes=(".png",))
        path = write_responses(run, data, split, class_name, out, samples=samples)
    console.print(f"responses of {class_name!r} -> {path}")


app.command("primitives")(primitives)
app.command("responses")(responses)

from restcn_cli.diagnose_compare import compare  # noqa: E402 - commands in their own module
from restcn_cli.diagnose_report import report  # noqa: E402

app.command("compare")(compare)
app.command("report")(report)
