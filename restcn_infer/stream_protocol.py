"""The JSON-lines protocol of ``restcn-infer stream`` (stdin/stdout) and ``restcn-infer serve``
(one WebSocket message per line).

In, one frame per line (``t`` optional, any number that does not go back within a stream;
``layout`` optional, the frame's joint layout by name)::

    {"stream": "cam1", "joints": [[x, y, z], ...]}                  one body, V joints
    {"stream": "cam1", "joints": [[[x, y, z], ...], ...], "t": 0.033, "layout": "ntu25"}

V is the model layout's joint count or another layout's that maps to it by joint name (25-joint
NTU frames for a 20-joint ``kinect20`` model). A 2-D model's frames have ``[x, y]`` joints
(``restcn-infer info`` says which a model reads); a frame of the other kind is an error record.
Frames carry no confidence: send a joint the pose estimator is unsure of as zeros (absent).
A stream keeps the layout and the body count of its first frame (send an absent body as
zeros). Stream ids are strings (or integers) of at most
:data:`MAX_STREAM_ID_CHARS` characters. Blank lines are skipped. A line is at most
:data:`~restcn_infer.line_reader.MAX_LINE_BYTES` long; the limit is enforced while reading.

Out, one record per line::

    {"stream": "cam1", "frame": 16, "t": 0.5, "latency_ms": 3.1,
     "top": [{"label": 3, "name": "...", "probability": 0.91}, ...],
     "decoded": {"layers": [1, 4, 7, 10], "skeletons": (L, bodies, T, V, C) nested lists}}
    {"error": "joints: expected ...", "line": 7, "stream": "cam1"}   the frame is dropped
    {"error": "...", "line": 9, "stream": "cam2", "stream_refused": true}   implausible input:
                                             one record, the stream's later frames are dropped
    {"error": "...", "stream": "cam1", "frame": 24}     no answer for that window (non-finite)
    {"notice": "joints in layout ntu25 ...", "stream": "cam1"}      once per stream
    {"summary": {"frames": N, "decisions": N, "rejected": N, "streams": N}}   at end of input

``"t"`` is present when the frame that made the decision due carried one, ``"decoded"`` with
``--decode``, and ``"stream"`` in an error record when the line named one. The summary adds
``"window_errors"``, ``"dropped_windows"`` and ``"input_error"`` when they happened. All output
is strict JSON (no NaN). The summary always comes, also when reading the input fails (the
failure is an error record before it).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from restcn_infer.bounded_json import JsonInputError, loads_bounded
from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.json_arrays import json_array
from restcn_infer.layouts import JointLayout, get_layout
from restcn_infer.limits import COORDS
from restcn_infer.line_reader import MAX_LINE_BYTES, LineItem, Overlong, ReadFailure
from restcn_infer.plausibility import ImplausibleInputError
from restcn_infer.streaming import (
    Pushed,
    StreamClassifier,
    StreamDecision,
    StreamLimitError,
    StreamRefusedError,
)

log = logging.getLogger("restcn_infer")

#: Longest stream id.
MAX_STREAM_ID_CHARS = 256
#: Deepest JSON nesting of a line (the object, bodies, joints, xyz: 4).
MAX_LINE_DEPTH = 8
#: Decimals of decoded coordinates in the output (metres: 0.01 mm).
DECODED_DECIMALS = 5


class FrameLineError(SkeletonFormatError):
    """A protocol line that cannot be used; ``stream`` is its stream id if the line named one."""

    def __init__(self, source: str, message: str, line: int, stream: str | None = None) -> None:
        super().__init__(source, message, line=line)
        self.stream = stream


@dataclass(frozen=True)
class FrameMessage:
    """One parsed input line: ``joints`` is float32 ``(V, C)`` or ``(bodies, V, C)``, C = 3
    or 2."""

    stream: str
    joints: np.ndarray
    t: float | None = None
    layout: JointLayout | None = None


def parse_frame(text: str | bytes, line: int, source: str = "<stdin>") -> FrameMessage:
    """Parse one protocol line.

    Joint counts and NaN/inf are the :class:`StreamClassifier`'s to check (it knows the model);
    this checks the JSON (size, nesting, number lengths: :mod:`restcn_infer.bounded_json`), its
    shape, and that every coordinate is a number.

    Raises:
        FrameLineError: with ``line`` set and a reason naming the bad key.
    """
    stream = None

    def bad(reason: str) -> FrameLineError:
        return FrameLineError(source, reason, line, stream)

    try:
        obj = loads_bounded(text, max_bytes=MAX_LINE_BYTES, max_depth=MAX_LINE_DEPTH)
    except JsonInputError as exc:
        raise bad(f"not JSON: {exc.reason}" if exc.syntax else exc.reason) from None
    if not isinstance(obj, dict):
        raise bad(f"expected a JSON object, got {type(obj).__name__}")
    missing = [key for key in ("stream", "joints") if key not in obj]
    if missing:
        raise bad(f"missing key(s) {missing}; expected "
                  '{"stream": id, "joints": [[x, y, z], ...]}')
    raw_stream = obj["stream"]
    if isinstance(raw_stream, bool) or not isinstance(raw_stream, (str, int)) or raw_stream == "":
        raise bad(f"stream: expected a non-empty string id, got {_show(raw_stream)}")
    if len(str(raw_stream)) > MAX_STREAM_ID_CHARS:
        raise bad(f"stream: ids are at most {MAX_STREAM_ID_CHARS} characters, got "
                  f"{len(str(raw_stream)):,}")
    stream = str(raw_stream)
    try:
        joints = np.asarray(obj["joints"])
    except (ValueError, OverflowError):  # ragged nesting
        raise bad("joints: expected equal-length [x, y, z] lists (V, 3) or (bodies, V, 3)"
                  ) from None
    if joints.dtype.kind not in "iuf":
        raise bad("joints: expected numbers only, got strings, booleans, nulls or objects")
    if joints.ndim not in (2, 3) or joints.shape[-1] not in COORDS:
        raise bad(f"joints: expected shape (V, 3) or (bodies, V, 3) (or [x, y] joints for a "
                  f"2-D model), got {joints.shape}")
    t = obj.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                          or not math.isfinite(t)):
        raise bad(f"t: expected a finite number, got {_show(t)}")
    layout = None
    if "layout" in obj:
        try:
            layout = get_layout(obj["layout"])
        except LayoutError as exc:
            raise bad(f"layout: {exc}") from None
    with np.errstate(over="ignore"):  # beyond float32: inf, which the engine refuses
        coordinates = joints.astype(np.float32)
    return FrameMessage(stream, coordinates, None if t is None else float(t), layout)


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def decision_record(decision: StreamDecision, *, stream: str | None = None) -> dict[str, Any]:
    """The output record of one decision, without ``decoded`` (see :func:`render_decision`);
    ``stream`` overrides a namespaced stream key."""
    name = decision.stream if stream is None else stream
    if decision.error is not None:
        return {"error": decision.error, "stream": name, "frame": decision.frame}
    record: dict[str, Any] = {"stream": name, "frame": decision.frame}
    if decision.t is not None:
        record["t"] = decision.t
    record["top"] = [
        {"label": int(p.label), "name": p.name, "probability": round(float(p.probability), 6)}
        for p in decision.top
    ]
    record["latency_ms"] = round(decision.latency_ms, 3)
    return record


def render_decision(decision: StreamDecision, *, stream: str | None = None,
                    decoder_layers: list[int] | None = None) -> str:
    """One decision as its JSON line; the decoded skeletons are written by
    :func:`restcn_infer.json_arrays.json_array` (whole-array, not value by value)."""
    text = dumps(decision_record(decision, stream=stream))
    if decision.decoded is None or decision.error is not None:
        return text
    layers = json.dumps(list(decoder_layers or []), separators=(",", ":"))
    skeletons = json_array(decision.decoded, DECODED_DECIMALS)
    return f'{text[:-1]},"decoded":{{"layers":{layers},"skeletons":{skeletons}}}}}'


def error_record(exc: Exception, line: int | None, stream: str | None = None) -> dict[str, Any]:
    """``{"error", "line"[, "stream"]}`` for a rejected line."""
    reason = exc.reason if isinstance(exc, SkeletonFormatError) else str(exc)
    record: dict[str, Any] = {"error": reason}
    if line is not None:
        record["line"] = line
    if stream is not None:
        record["stream"] = stream
    if isinstance(exc, ImplausibleInputError):
        record["stream_refused"] = True
    return record


def dumps(record: dict[str, Any]) -> str:
    """One compact strict-JSON line (no newline; NaN is refused, never written)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


@dataclass
class StreamStats:
    """Counts for the summary record. ``streams`` counts streams opened (a stream forgotten
    when idle and fed again counts twice): no set of every id ever seen is kept."""

    frames: int = 0
    decisions: int = 0
    rejected: int = 0
    streams: int = 0
    window_errors: int = 0
    dropped_windows: int = 0
    input_error: str | None = None
    interrupted: str | None = None  # the run was stopped (Ctrl-C) or failed on a bug

    def count(self, decision: StreamDecision) -> None:
        """Count one decision: answered, or a window error."""
        if decision.error is None:
            self.decisions += 1
        else:
            self.window_errors += 1

    def summary_record(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"frames": self.frames, "decisions": self.decisions,
                                   "rejected": self.rejected, "streams": self.streams}
        for name in ("window_errors", "dropped_windows", "input_error", "interrupted"):
            if getattr(self, name):
                summary[name] = getattr(self, name)
        return {"summary": summary}


def feed_line(engine: StreamClassifier, text: str | bytes, line: int, stats: StreamStats, *,
              namespace: Hashable | None = None, source: str = "<stdin>") -> dict | None:
    """Parse one line and push its frame; returns an error or notice record, or None.

    With a ``namespace`` (a server connection), the stream key is ``(namespace, id)`` so clients
    never share streams, and the namespace is the streams' owner (per-client limits).
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
        pushed: Pushed | Exception = engine.push(key, message.joints, t=message.t,
                                                 layout=message.layout, owner=namespace)
    except (SkeletonFormatError, StreamLimitError) as exc:
        pushed = exc
    return _frame_record(pushed, message, line, stats)


def feed_lines(engine: StreamClassifier, lines: Iterable[tuple[int, str | bytes]],
               stats: StreamStats, *, namespace: Hashable | None = None,
               source: str = "<stdin>") -> list[dict | None]:
    """:func:`feed_line` of many ``(line number, text)`` at once: each line parsed, then the
    frames of all of them in one :meth:`~StreamClassifier.push_many`; the record (or None) of
    each line, in order, and the same stream state, counts and queued windows as
    :func:`feed_line` line by line."""
    records: list[dict | None] = []
    parsed: list[tuple[int, int, FrameMessage]] = []  # (index in records, line, message)
    for line, text in lines:
        records.append(None)
        if not text.strip():
            continue
        try:
            parsed.append((len(records) - 1, line, parse_frame(text, line, source)))
        except FrameLineError as exc:
            stats.rejected += 1
            records[-1] = error_record(exc, line, exc.stream)
    if not parsed:
        return records
    messages = [message for _, _, message in parsed]
    keys = [m.stream if namespace is None else (namespace, m.stream) for m in messages]
    outcomes = engine.push_many(keys, [m.joints for m in messages], [m.t for m in messages],
                                layouts=[m.layout for m in messages], owner=namespace)
    for (index, line, message), pushed in zip(parsed, outcomes):
        records[index] = _frame_record(pushed, message, line, stats)
    return records


def _frame_record(pushed: Pushed | Exception, message: FrameMessage, line: int,
                  stats: StreamStats) -> dict | None:
    """What a pushed frame's outcome (a :class:`Pushed` or the push's error) is in the output,
    counted into ``stats``."""
    if isinstance(pushed, StreamRefusedError):  # reported once when the stream was refused
        stats.rejected += 1
        return None
    if isinstance(pushed, Exception):
        stats.rejected += 1
        return error_record(pushed, line, message.stream)
    stats.frames += 1
    stats.streams += pushed.new_stream
    if pushed.notice is not None:
        return {"notice": pushed.notice, "stream": message.stream}
    return None


def decision_lines(decisions: list[StreamDecision], stats: StreamStats,
                   decoder_layers: list[int] | None = None) -> list[str]:
    """JSON lines of un-namespaced decisions, counted into ``stats``."""
    for d in decisions:
        stats.count(d)
    return [render_decision(d, decoder_layers=decoder_layers) for d in decisions]


def process_line_batches(engine: StreamClassifier, batches: Iterable[list[LineItem]],
                         stats: StreamStats) -> Iterator[list[str]]:
    """The stdin protocol: for each batch of ``(line_number, item)``, push every frame, then
    decide the due windows of all streams in one session call; yields the batch's output lines
    (errors and notices first, then decisions). At the end of input, or after a
    :class:`ReadFailure`: its error record, the :meth:`~StreamClassifier.flush` decisions and
    the summary record, always: stopped by Ctrl-C or a bug, the summary (with ``interrupted``)
    is yielded before the exception goes on.
    """
    layers = list(engine.classifier.metadata.decoder_layers)
    failure = None
    try:
        for batch in batches:
            lines, failure = _batch_lines(engine, batch, stats, layers)
            yield lines
            if failure is not None:
                break
        end = []
        if failure is not None:
            stats.input_error = failure[1]
            end.append(dumps({"error": f"reading the input failed, the run ends: {failure[1]}",
                              "line": failure[0]}))
        final = end + decision_lines(engine.flush_safely(), stats, layers)
    except GeneratorExit:  # the consumer stopped reading: nobody to tell
        raise
    except BaseException as exc:  # Ctrl-C or a bug: the summary still comes, then it goes on
        stats.interrupted = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                             else f"internal error: {type(exc).__name__}")
        stats.dropped_windows = engine.dropped
        yield [dumps(stats.summary_record())]
        raise
    stats.dropped_windows = engine.dropped
    yield final + [dumps(stats.summary_record())]


def _batch_lines(engine: StreamClassifier, batch: list[LineItem], stats: StreamStats,
                 layers: list[int]) -> tuple[list[str], tuple[int, str] | None]:
    """One batch of :func:`process_line_batches`: its output lines (each line's record in
    order, then the decisions of the windows it made due) and the ``(line, reason)`` of a
    :class:`ReadFailure` that ended it, or None."""
    out: list[str | None] = []  # the batch's records in order; None: a frame line's
    texts: list[tuple[int, str | bytes]] = []
    failure = None
    for number, item in batch:
        if isinstance(item, ReadFailure):
            failure = (number, item.reason)
            break
        if isinstance(item, Overlong):
            stats.rejected += 1
            out.append(dumps({"error": f"line of {item.length:,} bytes is longer than the "
                                       f"limit of {MAX_LINE_BYTES:,}", "line": number}))
            continue
        texts.append((number, item))  # bytes: parse_frame checks UTF-8 as it parses
        out.append(None)
    records = iter(feed_lines(engine, texts, stats))  # one push_many for the batch
    lines = []
    for text in out:
        if text is None:  # a frame line: its record, if it has one
            record = next(records)
            if record is None:
                continue
            text = dumps(record)
        lines.append(text)
    lines += decision_lines(engine.decide_safely(engine.take_ready()), stats, layers)
    return lines, failure
