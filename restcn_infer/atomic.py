"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

One definition for every file restcn writes (checkpoints, run files, models, decoded arrays,
pictures, packed data sets): the content goes to a temporary file in the same folder, with an
unpredictable name (``tempfile.mkstemp``: no other process can guess or pre-create it), is
flushed and ``fsync``-ed, gets the permissions a shared file should have (``0o644``, not
mkstemp's owner-only ``0o600``), and is renamed over the target with ``os.replace`` (atomic on
POSIX and Windows). On any failure, interruption included, the temporary file is removed and the
target is untouched. Temporary names are ``.<target name>.<random>.tmp``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Permissions of written files: readable by everyone, writable by the owner.
FILE_MODE = 0o644
TEMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    For writers that want a file name (``onnx.save_model``, ``np.lib.format.open_memmap``).
    The body must have closed the file when it returns; it is then fsync-ed and renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object],
                 mode: int = FILE_MODE) -> Path:
    """Call ``write(binary_file)`` on a temporary file, then put it at ``path`` atomically."""
    path = Path(path)
    with atomic_path(path, mode) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_temporaries(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files an interrupted writer left under ``folder`` (any depth).

    Only for folders one process writes at a time (a data set build); returns how many.
    """
    count = 0
    for tmp in Path(folder).glob(f"**/.*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink()
            count += 1
    return count
