"""The export's domain error (its own module: the export modules all raise it)."""

from __future__ import annotations

from restcn_infer.errors import RestcnError


class ExportError(RestcnError, RuntimeError):
    """The model could not be exported, or the exported graph disagrees with torch."""
