"""Typed reading of JSON-like documents (model metadata, checkpoint specs, data set files).

JSON carries no types a reader can trust: ``"classes": 5`` or ``"window": "64"`` parse fine and
fail later, far from the file. :class:`Fields` reads one object field by field, checks each
value's type and range at once, and raises the caller's error class naming the document and
the field, e.g. ``model.onnx: metadata field 'classes' must be a list of strings, got 5``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_MISSING = object()


class Fields:
    """Checked access to the fields of one JSON object.

    Args:
        raw: the parsed object (anything: a non-dict is refused here).
        where: what to name in messages, e.g. ``"model.onnx: metadata"``.
        error: the exception class to raise (a :class:`~restcn_infer.errors.RestcnError`).
    """

    def __init__(self, raw: Any, where: str, error: type[Exception]) -> None:
        if not isinstance(raw, Mapping):
            raise error(f"{where} must be a JSON object, got {type(raw).__name__}")
        self.raw = raw
        self.where = where
        self.error = error

    def fail(self, name: str, why: str) -> Exception:
        """The error for field ``name``: ``<where> field '<name>' <why>``."""
        return self.error(f"{self.where} field {name!r} {why}")

    def _get(self, name: str, default: Any) -> Any:
        if name in self.raw:
            return self.raw[name]
        if default is _MISSING:
            raise self.error(f"{self.where} lacks the field {name!r}")
        return default

    def int(self, name: str, default: Any = _MISSING, *, low: int | None = None,
            high: int | None = None) -> int:
        """An integer (``True`` is not one) in ``[low, high]``."""
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {_show(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'' if low is None else low}..{'' if high is None else high}"
            raise self.fail(name, f"must lie in {bounds}, got {value}")
        return value

    def str(self, name: str, default: Any = _MISSING, *,
            choices: tuple[str, ...] | None = None) -> str:
        """A non-empty string, one of ``choices`` when given."""
        value = self._get(name, default)
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"must be a non-empty string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.fail(name, f"is {value!r}, expected one of {list(choices)}")
        return value

    def str_list(self, name: str, default: Any = _MISSING, *, unique: bool = False) -> list[str]:
        """A list of non-empty strings (distinct when ``unique``)."""
        value = self._get(name, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, f"must be a list of non-empty strings, got {_show(value)}")
        if unique and len(set(value)) != len(value):
            repeated = sorted({v for v in value if value.count(v) > 1})
            raise self.fail(name, f"repeats {repeated}")
        return list(value)

    def int_list(self, name: str, default: Any = _MISSING, *, low: int | None = None,
                 high: int | None = None) -> list[int]:
        """A list of integers, each in ``[low, high]``."""
        value = self._get(name, default)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int)
                                              for v in value):
            raise self.fail(name, f"must be a list of integers, got {_show(value)}")
        bad = [v for v in value if (low is not None and v < low) or (high is not None and v > high)]
        if bad:
            raise self.fail(name, f"must lie in {low}..{high}, got {bad[:5]}")
        return list(value)

    def float_list(self, name: str, default: Any = _MISSING) -> list[float]:
        """A list of finite numbers."""
        value = self._get(name, default)
        if not isinstance(value, list) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise self.fail(name, f"must be a list of numbers, got {_show(value)}")
        if not all(math.isfinite(v) for v in value):
            raise self.fail(name, "must hold finite numbers only (no NaN or infinity)")
        return [float(v) for v in value]

    def object(self, name: str, default: Any = _MISSING) -> dict[str, Any]:
        """A JSON object (a dict with string keys)."""
        value = self._get(name, default)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.fail(name, f"must be a JSON object, got {_show(value)}")
        return dict(value)


def _show(value: Any, limit: int = 60) -> str:
    """A short rendering of a bad value for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
