"""Typed errors of restcn. Libraries raise these; only CLIs print and choose exit codes.

Every domain error derives from :class:`RestcnError`, so a command catches that one base (exit 1,
the reason on stderr) and anything else — a real bug — keeps its traceback. Each error also keeps
the builtin base it had before (``ValueError``, ``RuntimeError``, ``ImportError``), so callers
that catch those still do.

Errors of the torch side live beside their code and derive from the same base:
``restcn_training.data.DataError``, ``restcn_export.onnx_export.ExportError``, ...
"""

from __future__ import annotations

from os import PathLike


class RestcnError(Exception):
    """Base of every restcn domain error: bad input, a model or device that cannot be used."""


class SkeletonFormatError(RestcnError, ValueError):
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

    def named(self, source: str | PathLike[str]) -> SkeletonFormatError:
        """This error with ``source`` as its file, if it had none (an array of that file)."""
        if self.source != "<array>":
            return self
        return SkeletonFormatError(source, self.reason, self.line)


class LayoutError(RestcnError, ValueError):
    """A joint layout name, group or index that does not exist, or layouts that do not map."""


class ModelError(RestcnError, ValueError):
    """A model file cannot be used: missing, corrupt, or with metadata the runtime cannot honour."""


class DeviceError(RestcnError, RuntimeError):
    """The requested device cannot be used (``device="cuda"`` without a working CUDA provider)."""


class MissingDependencyError(RestcnError, ImportError):
    """An optional package is not installed; the message is the install hint."""


class DataError(RestcnError, ValueError):
    """A data set cannot be used as asked (missing file, unknown split, bad labels, ...)."""
