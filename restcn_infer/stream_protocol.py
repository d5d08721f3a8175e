"""The JSON-lines protocol of ``restcn-infer stream`` (stdin/stdout) and ``restcn-infer serve``
(one WebSocket message per line).

In, one frame per line (``t`` optional, any number that does not go back within a stream)::

    {"stream": "cam1", "joints": [[x, y, z], ...]}                  one body, V joints
    {"stream": "cam1", "joints": [[[x, y, z], ...], ...], "t": 0.033}  bodies x V joints

V is the model layout's joint count or another layout's that maps to it by joint name (25-joint
NTU frames for a 20-joint ``kinect20`` model). Blank lines are skipped.

Out, one record per line::

    {"stream": "cam1", "frame": 16, "t": 0.5, "latency_ms": 3.1,
     "top": [{"label": 3, "name": "...", "probability": 0.91}, ...],
     "decoded": {"layers": [1, 4, 7, 10], "skeletons": (L, bodies, T, V, 3) nested lists}}
    {"error": "joints: expected ...", "line": 7, "stream": "cam1"}   the frame is dropped
    {"summary": {"frames": N, "decisions": N, "rejected": N, "streams": N}}   at end of input

``"t"`` is present when the frame that made the decision due carried one, ``"decoded"`` with
``--decode``, and ``"stream"`` in an error record when the line named one.
"""

from __future__ import annotations

import json
import math
import queue
import threading
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from restcn_infer.errors import SkeletonFormatError
from restcn_infer.streaming import StreamClassifier, StreamDecision, StreamLimitError

#: Longest accepted line; 2 bodies x 25 joints of long floats fit many times over.
MAX_LINE_CHARS = 1 << 20
#: Decimals of decoded coordinates in the output (metres: 0.01 mm).
DECODED_DECIMALS = 5


class FrameLineError(SkeletonFormatError):
    """A protocol line that cannot be used; ``stream`` is its stream id if the line named one."""

    def __init__(self, source: str, message: str, line: int, stream: str | None = None) -> None:
        super().__init__(source, message, line=line)
        self.stream = stream


@dataclass(frozen=True)
class FrameMessage:
    """One parsed input line: ``joints`` is float32 ``(V, 3)`` or ``(bodies, V, 3)``."""

    stream: str
    joints: np.ndarray
    t: float | None = None


def parse_frame(text: str | bytes, line: int, source: str = "<stdin>") -> FrameMessage:
    """Parse one protocol line.

    Joint counts and NaN/inf are the :class:`StreamClassifier`'s to check (it knows the model);
    this checks the JSON shape and that every coordinate is a number.

    Raises:
        FrameLineError: with ``line`` set and a reason naming the bad key.
    """
    stream = None

    def bad(reason: str) -> FrameLineError:
        return FrameLineError(source, reason, line, stream)

    if len(text) > MAX_LINE_CHARS:
        raise bad(f"line longer than {MAX_LINE_CHARS} characters")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise bad(f"expected a JSON object, got {type(obj).__name__}")
    missing = [key for key in ("stream", "joints") if key not in obj]
    if missing:
        raise bad(f"missing key(s) {missing}; expected "
                  '{"stream": id, "joints": [[x, y, z], ...]}')
    raw_stream = obj["stream"]
    if isinstance(raw_stream, bool) or not isinstance(raw_stream, (str, int)) or raw_stream == "":
        raise bad(f"stream: expected a non-empty string id, got {raw_stream!r}")
    stream = str(raw_stream)
    try:
        joints = np.asarray(obj["joints"])
    except ValueError:  # ragged nesting
        raise bad("joints: expected equal-length [x, y, z] lists (V, 3) or (bodies, V, 3)"
                  ) from None
    if joints.dtype.kind not in "iuf":
        raise bad("joints: expected numbers only, got strings, booleans, nulls or objects")
    if joints.ndim not in (2, 3) or joints.shape[-1] != 3:
        raise bad(f"joints: expected shape (V, 3) or (bodies, V, 3), got {joints.shape}")
    t = obj.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                          or not math.isfinite(t)):
        raise bad(f"t: expected a finite number, got {t!r}")
    return FrameMessage(stream, joints.astype(np.float32), None if t is None else float(t))


def decision_record(decision: StreamDecision, *, stream: str | None = None,
                    decoder_layers: list[int] | None = None) -> dict[str, Any]:
    """The output record of one decision; ``stream`` overrides a namespaced stream key."""
    record: dict[str, Any] = {
        "stream": decision.stream if stream is None else stream,
        "frame": decision.frame,
    }
    if decision.t is not None:
        record["t"] = decision.t
    record["top"] = [
        {"label": int(p.label), "name": p.name, "probability": round(float(p.probability), 6)}
        for p in decision.top
    ]
    record["latency_ms"] = round(decision.latency_ms, 3)
    if decision.decoded is not None:
        skeletons = np.round(decision.decoded.astype(np.float64), DECODED_DECIMALS)
        record["decoded"] = {"layers": list(decoder_layers or []), "skeletons": skeletons.tolist()}
    return record


def error_record(exc: Exception, line: int, stream: str | None = None) -> dict[str, Any]:
    """``{"error", "line"[, "stream"]}`` for a rejected line."""
    reason = exc.reason if isinstance(exc, SkeletonFormatError) else str(exc)
    record: dict[str, Any] = {"error": reason, "line": line}
    if stream is not None:
        record["stream"] = stream
    return record


def dumps(record: dict[str, Any]) -> str:
    """One compact JSON line (no newline)."""
    return json.dumps(record, separators=(",", ":"))


@dataclass
class StreamStats:
    """Counts for the summary record; ``stream_ids`` holds every id that had a frame accepted."""

    frames: int = 0
    decisions: int = 0
    rejected: int = 0
    stream_ids: set[Hashable] = field(default_factory=set)

    def summary_record(self) -> dict[str, Any]:
        return {"summary": {"frames": self.frames, "decisions": self.decisions,
                            "rejected": self.rejected, "streams": len(self.stream_ids)}}


def feed_line(engine: StreamClassifier, text: str | bytes, line: int, stats: StreamStats, *,
              namespace: Hashable | None = None, source: str = "<stdin>") -> dict | None:
    """Parse one line and push its frame; returns an error record, or None when accepted.

    With a ``namespace`` (a server connection), the stream key is ``(namespace, id)`` so clients
    never share streams.
    """
    if not text.strip():
        return None
    try:
        message = parse_frame(text, line, source)
    except FrameLineError as exc:
        stats.rejected += 1
        return error_record(exc, line, exc.stream)
    key = message.stream if namespace is None else (namespace, message.stream)
    try:
        engine.push(key, message.joints, t=message.t)
    except (SkeletonFormatError, StreamLimitError) as exc:
        stats.rejected += 1
        return error_record(exc, line, message.stream)
    stats.frames += 1
    stats.stream_ids.add(key)
    return None


def iter_line_batches(fh: IO[str], max_lines: int = 4096) -> Iterator[list[tuple[int, str]]]:
    """Lines of ``fh`` as batches of ``(line_number, text)``: whatever has arrived, at most
    ``max_lines``, waiting only for the first line of a batch.

    A reader thread keeps reading while the caller works on a batch, so under load many
    streams' frames land in one batch (one session call) and when idle a single line is
    handled at once.
    """
    lines: queue.Queue[str | None] = queue.Queue(maxsize=4 * max_lines)

    def read() -> None:
        for text in fh:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=read, name="restcn-stdin", daemon=True).start()
    number = 0
    ended = False
    while not ended:
        first = lines.get()
        if first is None:
            return
        number += 1
        batch = [(number, first)]
        while len(batch) < max_lines:
            try:
                text = lines.get_nowait()
            except queue.Empty:
                break
            if text is None:
                ended = True
                break
            number += 1
            batch.append((number, text))
        yield batch


def decision_records(decisions: list[StreamDecision], stats: StreamStats,
                     decoder_layers: list[int] | None = None) -> list[dict[str, Any]]:
    """Records of un-namespaced decisions, counted into ``stats``."""
    stats.decisions += len(decisions)
    return [decision_record(d, decoder_layers=decoder_layers) for d in decisions]


def process_line_batches(engine: StreamClassifier, batches: Iterable[list[tuple[int, str]]],
                         stats: StreamStats) -> Iterator[list[dict[str, Any]]]:
    """The stdin protocol: for each batch of ``(line_number, text)``, push every frame, then
    run one :meth:`StreamClassifier.poll` for all streams; yields the batch's records (errors
    first, then decisions). At the end of input: the :meth:`~StreamClassifier.flush`
    decisions and the summary record.
    """
    layers = list(engine.classifier.metadata.decoder_layers)
    for batch in batches:
        records = []
        for number, text in batch:
            error = feed_line(engine, text, number, stats)
            if error is not None:
                records.append(error)
        records += decision_records(engine.poll(), stats, layers)
        yield records
    yield decision_records(engine.flush(), stats, layers) + [stats.summary_record()]
