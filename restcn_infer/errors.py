"""Typed errors of the runtime. Libraries raise these; only CLIs print and choose exit codes."""

from __future__ import annotations

from os import PathLike


class SkeletonFormatError(ValueError):
    """A skeleton file or sequence is not what it claims to be.

    The message always names the source (file path or ``<array>``), the line where it is
    known (1-based), and what was expected, e.g.
    ``S001C001P001R001A001.skeleton:4: expected 25 joint lines of 12 numbers, file ends``.
    """

    def __init__(
        self,
        source: str | PathLike[str] | None,
        message: str,
        line: int | None = None,
    ) -> None:
        self.source = str(source) if source is not None else "<array>"
        self.line = line
        self.reason = message
        where = self.source if line is None else f"{self.source}:{line}"
        super().__init__(f"{where}: {message}")


class ModelError(ValueError):
    """A model file cannot be used: missing, corrupt, or with metadata the runtime cannot honour."""
