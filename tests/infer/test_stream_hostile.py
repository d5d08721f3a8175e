"""The stream protocol and engine under hostile or careless input: every line gets a decision or
an error record, the summary always comes, memory stays bounded, nothing hangs.

Property-based tests (hypothesis) pin the line parser: any text or bytes give a frame or a
``FrameLineError``, never another exception; every valid frame parses to its numbers."""

from __future__ import annotations

import io
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bodies import body_sequence
from helpers import FakeClassifier
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import get_layout
from restcn_infer.line_reader import MAX_LINE_BYTES, Overlong, iter_line_batches, read_lines
from restcn_infer.plausibility import ImplausibleInputError
from restcn_infer.stream_protocol import (
    MAX_STREAM_ID_CHARS,
    FrameLineError,
    StreamStats,
    parse_frame,
    process_line_batches,
)
from restcn_infer.streaming import StreamClassifier, StreamLimitError, StreamRefusedError


def strict(line: str):
    """``json.loads`` that refuses NaN and Infinity, as strict parsers do."""
    def refuse(name):
        raise ValueError(f"{name} in output")
    return json.loads(line, parse_constant=refuse)


def frame_line(stream: str, joints: np.ndarray, **extra) -> str:
    return json.dumps({"stream": stream, "joints": joints.tolist(), **extra})


def run_lines(lines: list, engine: StreamClassifier | None = None, **engine_args) -> list[dict]:
    """The stdin protocol over ``lines`` (str or bytes); every output line parsed strictly."""
    if engine is None:  # (an engine without streams is falsy: len() == 0)
        engine = StreamClassifier(FakeClassifier(), **{"hop": 4, **engine_args})
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    stats = StreamStats()
    out = [strict(text) for batch in process_line_batches(
        engine, iter_line_batches(io.BytesIO(data)), stats) for text in batch]
    assert "summary" in out[-1] and sum("summary" in r for r in out) == 1
    return out


# -- the line parser: properties ---------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_line_gives_a_frame_or_a_line_error(text):
    try:
        message = parse_frame(text, 3)
    except FrameLineError as exc:
        assert exc.line == 3 and str(exc).startswith("<stdin>:3: ")
        return
    assert message.joints.dtype == np.float32 and message.joints.shape[-1] == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["stream", "joints", "t", "layout", "x"]), json_values,
                       max_size=5))
def test_any_json_object_gives_a_frame_or_a_line_error(obj):
    try:
        parse_frame(json.dumps(obj), 1)
    except FrameLineError:
        pass


coordinate = st.floats(-100, 100, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.integers(1, 3), joints=st.integers(1, 30), t=st.none() | st.floats(0, 1e6),
       stream=st.text(min_size=1, max_size=MAX_STREAM_ID_CHARS), data=st.data())
def test_every_valid_frame_parses_to_its_numbers(bodies, joints, t, stream, data):
    values = data.draw(st.lists(coordinate, min_size=bodies * joints * 3,
                                max_size=bodies * joints * 3))
    array = np.array(values, np.float32).reshape(bodies, joints, 3)
    line = json.dumps({"stream": stream, "joints": array.tolist(), "t": t})
    message = parse_frame(line, 1)
    assert message.stream == stream and message.t == t
    np.testing.assert_array_equal(message.joints, array)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80),
                          st.sampled_from(["", "{}", "[]", '{"stream": "a", "joints": []}'])),
                max_size=25))
def test_any_input_gives_strict_json_records_and_one_summary(lines):
    lines = [x.replace(b"\n", b" ") if isinstance(x, bytes) else x.replace("\n", " ")
             .replace("\r", " ") for x in lines]
    out = run_lines(lines)
    summary = out[-1]["summary"]
    assert summary["frames"] + summary["rejected"] <= len(lines)


# -- the hostile lines -----------------------------------------------------------------

HOSTILE_LINES = {
    "deep nesting (105 KB)": "[" * 52_000 + "]" * 52_000,
    "nested joints": '{"stream": "a", "joints": ' + "[" * 40 + "1" + "]" * 40 + "}",
    "5000-digit integer": '{"stream": "a", "joints": [[' + "9" * 5000 + ", 1, 2]]}",
    "400-digit t": '{"stream": "a", "joints": [[1, 2, 3]], "t": ' + "9" * 400 + "}",
    "1e999": '{"stream": "a", "joints": [[1e999, 2, 3]]}',
    "NaN": '{"stream": "a", "joints": [[NaN, 2, 3]]}',
    "long stream id": json.dumps({"stream": "x" * (MAX_STREAM_ID_CHARS + 1),
                                  "joints": [[1, 2, 3]]}),
    "unknown layout": json.dumps({"stream": "a", "joints": [[1, 2, 3]], "layout": "/etc/passwd"}),
    "huge float32": json.dumps({"stream": "a", "joints": [[3e38 * 10, 1, 2]] * 20}),
    "3e37 coordinates": json.dumps({"stream": "a", "joints": [[3e37, 1, 2]] * 20}),
    "bool t": '{"stream": "a", "joints": [[1, 2, 3]], "t": true}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_LINES))
def test_a_hostile_line_is_an_error_record_and_the_stream_goes_on(case):
    good = [frame_line("s", f) for f in body_sequence(8)[0]]
    out = run_lines(good[:3] + [HOSTILE_LINES[case]] + good[3:])
    errors = [r for r in out if "error" in r]
    assert len(errors) == 1 and errors[0]["line"] == 4, out
    assert [r["frame"] for r in out if "top" in r] == [4, 8]  # the bad line was not a frame
    assert out[-1]["summary"]["rejected"] == 1 and out[-1]["summary"]["frames"] == 8


def test_invalid_utf8_is_an_error_record_for_that_line():
    good = [frame_line("s", f) for f in body_sequence(4)[0]]
    out = run_lines([good[0], b'{"stream": "\xff\xfe", "joints": []}', *good[1:]])
    assert out[0] == {"error": "not UTF-8 text (byte 12: invalid start byte)", "line": 2}
    assert out[-1]["summary"]["frames"] == 4


def test_an_overlong_line_is_skipped_while_reading_with_bounded_memory():
    line = b'{"stream": "s", "joints": [' + b"[1, 2, 3], " * (600_000) + b"[1, 2, 3]]}"
    assert len(line) > 5 * MAX_LINE_BYTES
    fh = io.BytesIO(line + b"\n" + b'{"stream": "s", "joints": [[1, 2, 3]]}\n')
    tracemalloc.start()
    try:
        items = list(read_lines(fh))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(items[0], Overlong) and items[0].length == len(line) + 1
    assert items[1].startswith(b'{"stream"')
    assert peak < 3 * MAX_LINE_BYTES, peak  # never the whole line in memory


def test_an_overlong_line_gets_an_error_record():
    good = [frame_line("s", f) for f in body_sequence(4)[0]]
    long = '{"stream": "s", "joints": "' + "x" * (MAX_LINE_BYTES + 10) + '"}'
    out = run_lines([good[0], long, *good[1:]])
    assert out[0]["line"] == 2 and "longer than the limit" in out[0]["error"]


class FailingInput:
    """A binary stdin whose read fails after ``good`` lines (EIO, a closed pipe, ...)."""

    def __init__(self, good: list[bytes]) -> None:
        self.good = list(good)

    def readline(self, size: int = -1) -> bytes:
        if self.good:
            return self.good.pop(0)
        raise OSError(5, "Input/output error")


def test_a_reader_failure_ends_the_run_with_an_error_record_and_the_summary():
    good = [frame_line("s", f).encode() + b"\n" for f in body_sequence(6)[0]]
    engine = StreamClassifier(FakeClassifier(), hop=4)
    stats = StreamStats()
    out = [strict(t) for batch in process_line_batches(
        engine, iter_line_batches(FailingInput(good)), stats) for t in batch]
    errors = [r for r in out if "error" in r]
    assert errors == [{"error": "reading the input failed, the run ends: OSError: [Errno 5] "
                                "Input/output error", "line": 7}]
    assert [r["frame"] for r in out if "top" in r] == [4, 6]  # flushed before the summary
    assert out[-1]["summary"]["input_error"].startswith("OSError")


@pytest.mark.parametrize("stop, said", [(KeyboardInterrupt, "interrupted"),
                                         (RuntimeError, "internal error: RuntimeError")])
def test_a_run_stopped_by_ctrl_c_or_a_bug_still_says_its_summary(stop, said):
    """The summary comes before the exception goes on (a bug keeps its traceback)."""
    frames = [(n, frame_line("s", f)) for n, f in enumerate(body_sequence(6)[0], 1)]

    def batches():
        yield frames[:5]
        raise stop("stopped")

    out = []
    with pytest.raises(stop):
        for batch in process_line_batches(StreamClassifier(FakeClassifier(), hop=4), batches(),
                                          StreamStats()):
            out += [strict(t) for t in batch]
    assert [r["frame"] for r in out if "top" in r] == [4]  # the decisions made before the stop
    assert out[-1]["summary"]["interrupted"] == said and out[-1]["summary"]["frames"] == 5


# -- the engine: a stream's layout, bodies and plausibility -------------------------------------

def test_a_stream_keeps_its_layout_and_body_count():
    sc = StreamClassifier(FakeClassifier(), hop=100)
    k20, ntu = body_sequence(3)[0], body_sequence(3, "ntu25")[0]
    sc.push("s", k20[0])
    with pytest.raises(Exception, match="has 25 joints, but the stream's frames have 20"):
        sc.push("s", ntu[1])
    with pytest.raises(Exception, match="has 3 bodies, but the stream's frames have 1"):
        sc.push("s", body_sequence(1, bodies=3)[:, 0])
    with pytest.raises(Exception, match="declares layout ntu25"):
        sc.push("s", k20[1], layout=get_layout("ntu25"))
    sc.push("s", k20[1])  # the stream goes on


def test_a_declared_layout_must_fit_the_joints():
    sc = StreamClassifier(FakeClassifier(), hop=100)
    with pytest.raises(Exception, match="layout ntu25 has 25 joints, the input has 20"):
        sc.push("s", body_sequence(1)[0, 0], layout=get_layout("ntu25"))


def test_a_mapped_layout_is_announced_once_per_stream():
    sc = StreamClassifier(FakeClassifier(layout="kinect20"), hop=100)
    ntu = body_sequence(3, "ntu25")[0]
    first = sc.push("a", ntu[0])
    assert first.new_stream and "layout ntu25 (guessed from its 25 joints" in first.notice
    assert sc.push("a", ntu[1]) == (False, None)
    declared = sc.push("b", ntu[0], layout=get_layout("ntu25"))
    assert "layout ntu25 (declared)" in declared.notice
    # one mapping object for every stream of that layout: push_many maps their frames at once
    assert sc._streams["a"].mapping is sc._streams["b"].mapping is not None


def test_an_implausible_stream_gets_one_error_then_is_refused():
    sc = StreamClassifier(FakeClassifier(), hop=2)
    mm = body_sequence(8)[0] * 1000
    sc.push("s", mm[0])
    with pytest.raises(ImplausibleInputError, match="--units mm"):
        sc.push("s", mm[1])
    for frame in mm[2:]:
        with pytest.raises(StreamRefusedError):
            sc.push("s", frame)
    assert sc.poll() == []


def test_an_implausible_stream_is_one_error_record_in_the_protocol():
    mm = [frame_line("s", f) for f in body_sequence(12)[0] * 1000]
    good = [frame_line("g", f) for f in body_sequence(12, seed=1)[0]]
    out = run_lines([line for pair in zip(mm, good) for line in pair])
    errors = [r for r in out if "error" in r]
    assert len(errors) == 1 and errors[0]["stream"] == "s" and errors[0]["stream_refused"]
    assert "--units mm" in errors[0]["error"]
    assert [r["frame"] for r in out if "top" in r] == [4, 8, 12]  # the good stream goes on
    assert out[-1]["summary"]["rejected"] == 9  # frames 4..12 of the refused stream


def test_units_and_accept_implausible_for_streams():
    mm = body_sequence(8)[0] * 1000
    fixed = StreamClassifier(FakeClassifier(), hop=4, options=InputOptions(units="mm"))
    for frame in mm:
        fixed.push("s", frame)
    assert [d.frame for d in fixed.poll()] == [4, 8]
    lenient = StreamClassifier(FakeClassifier(), hop=4,
                               options=InputOptions(accept_implausible=True))
    notices = [lenient.push("s", frame).notice for frame in mm]
    assert [n is not None for n in notices] == [False, False, False, True, False, False, False,
                                                False]
    assert notices[3].startswith("accepted although implausible")


def test_a_frame_beyond_any_unit_is_rejected_even_when_accepting():
    sc = StreamClassifier(FakeClassifier(), hop=4, options=InputOptions(accept_implausible=True))
    with pytest.raises(Exception, match="beyond 1e\\+06"):
        sc.push("s", body_sequence(1)[0, 0] * 3e37)


# -- the engine: bounds and fairness -----------------------------------------------------------

def test_owners_are_served_round_robin_and_bounded():
    sc = StreamClassifier(FakeClassifier(), hop=1, max_pending_per_owner=5,
                          max_streams_per_owner=2)
    frames = body_sequence(20)[0]
    for frame in frames:  # the flooder queues 20 windows, keeps its last 5
        sc.push(("flood", 1), frame, owner="flood")
    sc.push(("fair", 1), frames[0], owner="fair")
    assert sc.pending_of("flood") == 5 and sc.dropped == 15
    taken = sc.take_ready(limit=3)
    assert [p.owner for p in taken] == ["flood", "fair", "flood"]
    sc.push(("flood", 2), frames[0], owner="flood")
    with pytest.raises(StreamLimitError, match="this client already has 2 live streams"):
        sc.push(("flood", 3), frames[0], owner="flood")
    sc.forget_owner("flood")
    assert sc.streams_of("flood") == 0 and sc.pending_of("flood") == 0
    assert sc.num_ready == 0 and len(sc) == 1


def test_limits_set_after_construction_bound_the_queue_as_given_at_construction():
    """A server sets its clients' shares on the engine it is given."""
    sc = StreamClassifier(FakeClassifier(), hop=1)
    sc.set_limits(max_streams_per_owner=1, max_pending=3, max_pending_per_owner=2)
    for frame in body_sequence(5)[0]:
        sc.push("a", frame, owner="a")
    assert sc.pending_of("a") == 2 and sc.dropped == 3
    sc.push("b", body_sequence(1)[0, 0], owner="b")
    sc.push("c", body_sequence(1)[0, 0], owner="c")  # the total bound: a's oldest goes
    assert sc.num_ready == 3 and sc.dropped == 4
    with pytest.raises(StreamLimitError, match="already has 1 live streams"):
        sc.push("a2", body_sequence(1)[0, 0], owner="a")


def test_the_total_pending_bound_drops_the_oldest_of_the_longest_queue():
    sc = StreamClassifier(FakeClassifier(), hop=1, max_pending=4)
    for frame in body_sequence(6)[0]:
        sc.push("s", frame)
    assert sc.num_ready == 4 and sc.dropped == 2
    assert [p.frame for p in sc.take_ready()] == [3, 4, 5, 6]


class BrokenClassifier(FakeClassifier):
    """Its first session call fails, as a bug or a failing provider would."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.calls = 0

    def run(self, batch, *, decode=False):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("CUDA error: an illegal memory access")
        return super().run(batch, decode=decode)


def test_a_failing_session_call_answers_its_windows_and_the_stream_goes_on(caplog):
    sc = StreamClassifier(BrokenClassifier(), hop=2)
    frames = body_sequence(4)[0]
    sc.push("s", frames[0])
    sc.push("s", frames[1])
    [failed] = sc.decide_safely(sc.take_ready())
    assert failed.error.startswith("internal error while deciding this window (RuntimeError")
    assert "deciding 1 stream windows failed" in caplog.text  # logged with its traceback
    sc.push("s", frames[2])
    sc.push("s", frames[3])
    [ok] = sc.decide_safely(sc.take_ready())
    assert ok.error is None and ok.frame == 4


def test_non_finite_scores_are_an_error_record_for_that_window():
    class NanClassifier(FakeClassifier):
        def run(self, batch, *, decode=False):
            logits, decoded = super().run(batch, decode=decode)
            logits[0] = np.nan
            return logits, decoded

    frames = [frame_line("s", f) for f in body_sequence(8)[0]]
    out = run_lines(frames, StreamClassifier(NanClassifier(), hop=4))
    assert [r for r in out if "error" in r][0]["frame"] in (4, 8)
    assert out[-1]["summary"]["window_errors"] >= 1


def test_the_summary_keeps_no_set_of_every_id():
    engine = StreamClassifier(FakeClassifier(), hop=100, max_streams=50, idle_timeout_s=1e-9)
    frame = body_sequence(1)[0, 0]
    lines = [frame_line(f"id{i}", frame) for i in range(500)]
    out = run_lines(lines, engine)
    assert out[-1]["summary"]["streams"] == 500 and len(engine) <= 50
    assert not any(isinstance(v, (set, list)) for v in vars(StreamStats()).values())


def test_a_window_beyond_the_model_bounds_is_refused_before_any_buffer():
    with pytest.raises(ValueError, match="window must be <= 10000"):
        StreamClassifier(FakeClassifier(), window=10**9)
