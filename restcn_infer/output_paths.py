"""Output paths checked before any work starts: a command that would fail to write its result
after minutes of work says so at once instead.

:func:`check_output_file` for a file (``--out x.npz``, ``--render x.png``),
:func:`check_output_dir` for a folder (a training run's ``--out``). Both create missing parent
folders (as the writers would) and probe that the folder accepts a new file, so a read-only
mount, a path under an existing *file* or a directory where a file is meant are refused with
:class:`OutputPathError`, naming the path and the reason.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from restcn_infer.errors import RestcnError


class OutputPathError(RestcnError, ValueError):
    """An output path that cannot be written."""


def _writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{folder}: exists and is not a folder, so {what} cannot be "
                              "written under it") from None
    except OSError as exc:
        raise OutputPathError(f"{folder}: cannot create the folder for {what} "
                              f"({exc.strerror or exc})") from None
    try:  # os.access says nothing about read-only mounts or ACLs: try it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputPathError(f"{folder}: not writable, so {what} cannot be written there "
                              f"({exc.strerror or exc})") from None


def check_output_file(path: str | os.PathLike[str], *, what: str = "the output",
                      suffixes: Iterable[str] | None = None) -> Path:
    """``path`` if a file can be written there (an existing file is replaced).

    Args:
        what: how to name the output in messages (``"--out"``).
        suffixes: accepted file name endings (lower case, with the dot), if restricted.

    Raises:
        OutputPathError: a directory, a wrong suffix, or a folder that cannot take the file.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a directory; {what} names the file to write")
    if suffixes is not None:
        allowed = tuple(suffixes)
        if path.suffix.lower() not in allowed:
            raise OutputPathError(f"{path}: {what} must end in {' or '.join(allowed)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{path}: exists and is not writable")
    _writable_folder(path.parent, what)
    return path


def check_output_dir(path: str | os.PathLike[str], *, what: str = "the output") -> Path:
    """``path`` if it is (or can become) a folder that accepts new files.

    Raises:
        OutputPathError: an existing file, or a folder that cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: exists and is a file; {what} names a folder")
    _writable_folder(path, what)
    return path
