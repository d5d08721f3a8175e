"""JSON from untrusted input with its size, nesting depth and number lengths bounded *before*
the parser sees it: :func:`loads_bounded`.

Python's ``json.loads`` fails badly on hostile text: a 105 KB line of ``[[[[...`` raises
``RecursionError``, an integer of 5,000 digits ``ValueError`` (Python's int-conversion limit),
``1e999`` quietly becomes ``inf`` and ``NaN`` is accepted although it is not JSON. This loader
refuses each of them with one :class:`JsonInputError` (a ``ValueError``) saying which limit was
hit, so a reader or the stream protocol can report the input and go on.

Nesting depth is measured without recursion: string literals are blanked out with one regular
expression and the running count of ``[``/``{`` minus ``]``/``}`` is a numpy cumulative sum.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from restcn_infer.errors import RestcnError
from restcn_infer.limits import MAX_JSON_DEPTH, MAX_JSON_FILE_BYTES, MAX_JSON_INT_DIGITS

# A JSON string literal (escapes included); possessive, so it runs in linear time.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
# bytes.translate table: "[" and "{" -> 2, "]" and "}" -> 0, anything else -> 1 (then minus 1).
_STEPS = bytes(2 if b in b"[{" else 0 if b in b"]}" else 1 for b in range(256))


class JsonInputError(RestcnError, ValueError):
    """Text that is not JSON (``syntax``), or JSON beyond a limit; ``line`` is 1-based where
    known."""

    def __init__(self, message: str, line: int | None = None, syntax: bool = False) -> None:
        super().__init__(message)
        self.reason = message
        self.line = line
        self.syntax = syntax


class _Refused(Exception):
    """Internal: raised from a parse hook, turned into :class:`JsonInputError`."""


#: Bytes scanned per step of :func:`nesting_depth` (its memory beyond one copy of the text:
#: 8 bytes per byte of a chunk).
_DEPTH_CHUNK = 1 << 14


def nesting_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in ``data`` outside string literals (0 for a scalar)."""
    if b"[" not in data and b"{" not in data:
        return 0
    bare = _STRING.sub(b'""', data) if b'"' in data else data
    codes = np.frombuffer(bare.translate(_STEPS), dtype=np.int8)  # (N,) step + 1
    deepest = level = 0
    for start in range(0, len(codes), _DEPTH_CHUNK):
        levels = np.cumsum(codes[start:start + _DEPTH_CHUNK], dtype=np.int64)  # steps + 1
        levels -= np.arange(1, len(levels) + 1)  # the +1 of every byte
        levels += level
        deepest = max(deepest, int(levels.max(initial=level)))
        level = int(levels[-1])
    return deepest


def loads_bounded(text: str | bytes, *, max_bytes: int = MAX_JSON_FILE_BYTES,
                  max_depth: int = MAX_JSON_DEPTH,
                  max_int_digits: int = MAX_JSON_INT_DIGITS) -> Any:
    """Parse strict JSON (RFC 8259: no NaN/Infinity) within the given limits.

    Args:
        text: the document; bytes must be UTF-8.
        max_bytes: the longest document (UTF-8 bytes) accepted.
        max_depth: the deepest nesting of arrays and objects accepted.
        max_int_digits: the longest integer literal accepted.

    Raises:
        JsonInputError: not UTF-8, not JSON, or beyond a limit; the message says which.
    """
    if isinstance(text, str):
        if len(text) > max_bytes:  # a str is at least as long in UTF-8
            raise JsonInputError(f"longer than {max_bytes:,} bytes")
        data = text.encode("utf-8", errors="surrogatepass")
    else:
        data = bytes(text)
    if len(data) > max_bytes:
        raise JsonInputError(f"longer than {max_bytes:,} bytes")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise JsonInputError(f"nested {depth} levels deep, more than the limit of {max_depth}")
    try:
        decoded = data.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None

    def parse_int(literal: str) -> int:
        if len(literal.lstrip("-")) > max_int_digits:
            raise _Refused(f"an integer of {len(literal.lstrip('-')):,} digits, more than the "
                           f"limit of {max_int_digits}")
        return int(literal)

    def parse_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise _Refused(f"the number {literal[:40]} is out of range")
        return value

    def parse_constant(name: str) -> None:
        raise _Refused(f"{name} is not a JSON number")

    try:
        return json.loads(decoded, parse_int=parse_int, parse_float=parse_float,
                          parse_constant=parse_constant)
    except _Refused as exc:
        raise JsonInputError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"{exc.msg} (line {exc.lineno} column {exc.colno})",
                             line=exc.lineno, syntax=True) from None
    except RecursionError:  # the depth check makes this unreachable; never let it escape
        raise JsonInputError("nested too deeply") from None
