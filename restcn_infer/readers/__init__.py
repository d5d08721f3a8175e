"""One entry point for every skeleton file format: :func:`load_sequence`.

Every reader returns float32 ``(M, T, V, 3)``: M bodies (zeros where a body is absent), T frames,
V joints in the file's layout, xyz. Formats by suffix:

- ``.skeleton``: NTU RGB+D raw text (:mod:`.ntu_skeleton`).
- ``.npy``: a (T, V, 3) or (M, T, V, 3) float array; ``.json``: see :mod:`.arrays`.
- ``.pkl``: a PYSKL/mmaction2 annotation pickle holding one annotation (:mod:`.pyskl`).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.readers.arrays import read_json_sequence, read_npy_sequence
from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton
from restcn_infer.readers.pyskl import read_pyskl_sequence

_READERS = {
    ".skeleton": read_ntu_skeleton,
    ".npy": read_npy_sequence,
    ".json": read_json_sequence,
    ".pkl": read_pyskl_sequence,
    ".pickle": read_pyskl_sequence,
}


def load_sequence(path: str | PathLike[str]) -> np.ndarray:
    """Read one skeleton sequence as float32 ``(M, T, V, 3)``.

    Raises:
        SkeletonFormatError: the file is missing, unreadable, of an unknown suffix, or malformed;
            the message names the file, the line where known, and what was expected.
    """
    path = Path(path)
    if path.is_dir():
        raise SkeletonFormatError(path, "is a directory, expected a skeleton file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise SkeletonFormatError(
            path, f"unknown file type {path.suffix!r}; expected one of {sorted(_READERS)}"
        )
    if not path.is_file():
        raise SkeletonFormatError(path, "no such file")
    return reader(path)


__all__ = ["load_sequence", "read_json_sequence", "read_npy_sequence", "read_ntu_skeleton",
           "read_pyskl_sequence"]
