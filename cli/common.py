"""What every restcn command shares: printing, exit codes, parsers, choices from the library.

- Errors, warnings and notes go to stderr as one ``error: ...`` / ``warning: ...`` /
  ``note: ...`` line; ``--json`` documents are strict JSON (:func:`json_text`). Messages are
  printed as plain text, never as rich markup: a file named ``clip[/b].npy`` is shown as it is.
  The consoles here have markup off; styling is added with :class:`rich.text.Text` only.
- Exit codes: 0 ok, 1 a domain error (any :class:`~restcn_infer.errors.RestcnError`: bad input,
  a model or device that cannot be used), 2 usage. Commands catch only ``RestcnError`` (plus
  per-file resource errors where a batch must go on), so a real bug shows its traceback.
- Option choices are built from the library's own tuples (:func:`choice`), so the CLI never
  re-declares what an architecture, device or policy can be.

Runtime only: importing this module imports neither torch nor the training code.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from restcn_infer.errors import RestcnError

console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)


def print_error(message: object) -> None:
    """``error: message`` on stderr, the message as plain text."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), soft_wrap=True)


def print_warning(message: object) -> None:
    """``warning: message`` on stderr, the message as plain text."""
    err_console.print(Text.assemble(("warning:", "yellow"), " ", str(message)), soft_wrap=True)


def print_note(message: object) -> None:
    """``note: message`` on stderr (something the user should know, nothing wrong)."""
    err_console.print(Text.assemble(("note:", "cyan"), " ", str(message)), soft_wrap=True)


def json_text(doc: object) -> str:
    """``doc`` as indented strict JSON: NaN or infinity raise instead of being written."""
    return json.dumps(doc, indent=2, allow_nan=False)


def fail(message: object) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1 (a domain error)."""
    print_error(message)
    raise typer.Exit(1)


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a :class:`RestcnError` raised in the block into ``error: ...`` and exit 1."""
    try:
        yield
    except RestcnError as exc:
        fail(exc)


def choice(name: str, values: Iterable[str]) -> type[Enum]:
    """A ``str`` Enum of ``values`` for a Typer option's choices (values as they are)."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def parse_int_list(text: str | None, what: str) -> list[int] | None:
    """``"1,4,7"`` -> ``[1, 4, 7]``; ``None`` stays ``None``; anything else is a usage error."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated {what}, got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"no {what} given")
    return values
