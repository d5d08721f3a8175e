"""Reading a line-based input (stdin of ``restcn-infer stream``) safely and ahead of its use.

Never more than ``max_bytes + 1`` of one line in memory (:func:`read_lines`: a longer line is
read on in chunks, dropped, and reported as :class:`Overlong`), and a reader thread that keeps
reading while the caller works (:func:`iter_line_batches`), at most
:data:`MAX_READ_AHEAD_BYTES` ahead, so under load many lines arrive as one batch and when idle a
single line is handled at once. A failure of the input ends the batches with a
:class:`ReadFailure`, never a hang or a lost traceback.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

#: Longest accepted line in bytes; 2 bodies x 25 joints of long floats fit many times over.
MAX_LINE_BYTES = 1 << 20
#: Bytes of input lines read ahead of their use at most.
MAX_READ_AHEAD_BYTES = 64 << 20


@dataclass(frozen=True)
class Overlong:
    """A line longer than :data:`MAX_LINE_BYTES`: skipped while reading, never held whole."""

    length: int


@dataclass(frozen=True)
class ReadFailure:
    """Reading the input failed; ``reason`` says how. Nothing more comes after it."""

    reason: str


LineItem = tuple[int, "str | bytes | Overlong | ReadFailure"]


def read_lines(fh: IO[Any], max_bytes: int = MAX_LINE_BYTES) -> Iterator[str | bytes | Overlong]:
    """The lines of ``fh`` (binary or text), never more than ``max_bytes + 1`` of one line in
    memory: a longer line is read on in chunks, dropped, and yields :class:`Overlong`."""
    while True:
        chunk = fh.readline(max_bytes + 1)
        if not chunk:
            return
        if len(chunk) <= max_bytes or chunk[-1:] in (b"\n", "\n"):
            yield chunk
            continue
        length = len(chunk)
        while chunk and chunk[-1:] not in (b"\n", "\n"):
            chunk = fh.readline(max_bytes)
            length += len(chunk)
        yield Overlong(length)


class _ReadAhead:
    """A queue of lines between the reader thread and the decisions, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.items: deque[tuple[Any, int]] = deque()
        self.size = 0
        self.max_bytes = max_bytes
        self.cond = threading.Condition()

    def put(self, item: Any, size: int) -> None:
        with self.cond:
            while self.items and self.size + size > self.max_bytes:
                self.cond.wait()
            self.items.append((item, size))
            self.size += size
            self.cond.notify_all()

    def get(self, block: bool) -> Any:
        """The next item; ``_EMPTY`` when not blocking and there is none."""
        with self.cond:
            while block and not self.items:
                self.cond.wait()
            if not self.items:
                return _EMPTY
            item, size = self.items.popleft()
            self.size -= size
            self.cond.notify_all()
            return item


_EMPTY = object()
_END = object()


def iter_line_batches(fh: IO[Any], max_lines: int = 4096,
                      max_bytes: int = MAX_LINE_BYTES) -> Iterator[list[LineItem]]:
    """Lines of ``fh`` as batches of ``(line_number, item)``: whatever has arrived, at most
    ``max_lines``, waiting only for the first line of a batch. An item is the line (bytes from
    a binary file), :class:`Overlong`, or a final :class:`ReadFailure`.

    A reader thread keeps reading while the caller works on a batch (at most
    :data:`MAX_READ_AHEAD_BYTES` ahead), so under load many streams' frames land in one batch
    (one session call) and when idle a single line is handled at once. Whatever goes wrong in
    the reader thread ends the batches with a :class:`ReadFailure`, never a hang.
    """
    ahead = _ReadAhead(MAX_READ_AHEAD_BYTES)

    def read() -> None:
        try:
            for item in read_lines(fh, max_bytes):
                ahead.put(item, len(item) if isinstance(item, (str, bytes)) else 1)
        except BaseException as exc:  # noqa: BLE001 - any failure must reach the consumer
            ahead.put(ReadFailure(f"{type(exc).__name__}: {exc}"[:300]), 1)
        else:
            ahead.put(_END, 1)

    threading.Thread(target=read, name="restcn-stdin", daemon=True).start()
    number = 0
    while True:
        item = ahead.get(block=True)
        if item is _END:
            return
        batch: list[LineItem] = []
        while True:
            number += 1
            batch.append((number, item))
            if isinstance(item, ReadFailure) or len(batch) >= max_lines:
                break
            item = ahead.get(block=False)
            if item is _EMPTY:
                break
            if item is _END:
                yield batch
                return
        yield batch
        if isinstance(batch[-1][1], ReadFailure):
            return
