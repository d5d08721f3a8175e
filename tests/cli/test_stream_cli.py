"""``restcn-infer stream``: JSON lines in, decisions / error records / summary out, exit 0."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import STREAM_CLASSES, assert_same_top, nw_ucla_sequence
from restcn_cli.infer import app
from restcn_infer.classifier import Classifier, Prediction
from restcn_infer.errors import SkeletonFormatError
from restcn_infer.stream_protocol import parse_frame

HOP = 6


@pytest.fixture(scope="module")
def model(tiny_export):
    return tiny_export(window=16, classes=STREAM_CLASSES, decoder_layers=(1, 4, 7, 10))


def frame_line(stream: str, joints: np.ndarray, **extra) -> str:
    return json.dumps({"stream": stream, "joints": joints.tolist(), **extra})


def session_input(seq: np.ndarray) -> tuple[list[str], dict[int, str | None]]:
    """Two interleaved streams of a real sequence plus malformed lines; the bad line numbers."""
    a, b = seq[0], seq[0, ::-1]  # (T, 20, 3) each
    good = [(frame_line("a", a[t]), frame_line("b", b[t][None], t=t / 30)) for t in range(len(a))]
    lines = [line for pair in good for line in pair]
    bad = {  # final 0-based line index -> (text, stream named in its error record)
        3: ("this is not json", None),
        8: ('{"stream": "a"}', None),
        9: ('[1, 2, 3]', None),
        14: ('{"stream": "a", "joints": [[1, 2, 3]]}', "a"),
        20: ('{"stream": "b", "joints": ' + json.dumps([["x", 1, 2]] * 20) + "}", "b"),
        25: ('{"stream": "a", "joints": ' + json.dumps([[1, 2, 3]] * 19 + [[1, 2]]) + "}", "a"),
        # not JSON:
        30: ('{"stream": "b", "joints": [' + ",".join(["[NaN, 1, 2]"] * 20) + "]}", None),
        33: ("", None),  # blank: skipped, not an error
    }
    for index in sorted(bad):
        lines.insert(index, bad[index][0])
    errors = {index + 1: stream for index, (text, stream) in bad.items() if text}
    return lines, errors


@pytest.mark.parametrize("batch_lines", [1, 4096])
def test_stream_cli_decides_reports_bad_lines_and_summarises(model, shared_data, batch_lines):
    seq = nw_ucla_sequence(shared_data)  # (1, T, 20, 3)
    lines, errors = session_input(seq)
    result = CliRunner().invoke(app, ["stream", "--model", str(model), "--device", "cpu",
                                      "--hop", str(HOP), "--top-k", "3",
                                      "--batch-lines", str(batch_lines)],
                                input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    got_errors = {r["line"]: r.get("stream") for r in records if "error" in r}
    assert got_errors == errors
    decisions = [r for r in records if "top" in r]
    t = seq.shape[1]
    expected = sorted((s, f) for s in "ab" for f in [*range(HOP, t + 1, HOP), t])
    assert sorted((d["stream"], d["frame"]) for d in decisions) == sorted(set(expected))
    assert records[-1] == {"summary": {"frames": 2 * t, "decisions": len(decisions),
                                       "rejected": len(errors), "streams": 2}}

    clf = Classifier(model, device="cpu")
    window = clf.spec.input.window
    for d in decisions:
        source = seq if d["stream"] == "a" else seq[:, ::-1]
        [want] = clf.classify([source[:, max(0, d["frame"] - window):d["frame"]]], top_k=3)
        assert_same_top([Prediction(**p) for p in d["top"]], want)
        assert set(d) == ({"stream", "frame", "top", "latency_ms", "t"} if d["stream"] == "b"
                          else {"stream", "frame", "top", "latency_ms"})
        if d["stream"] == "b":
            assert d["t"] == pytest.approx((d["frame"] - 1) / 30)


def test_stream_cli_decode_and_two_body_ntu_frames(model, shared_data):
    from restcn_infer.readers import load_sequence

    ntu = load_sequence(shared_data / "ntu" / "S001C003P008R002A058.skeleton")  # (2, 70, 25, 3)
    lines = [frame_line("pair", ntu[:, t]) for t in range(HOP)]
    result = CliRunner().invoke(app, ["stream", "--model", str(model), "--device", "cpu",
                                      "--hop", str(HOP), "--decode"], input="\n".join(lines))
    assert result.exit_code == 0, result.output
    notice, decision, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert notice == {"notice": "joints in layout ntu25 (guessed from its 25 joints; declare it "
                                'with "layout"), mapped by joint name to the model\'s layout '
                                "kinect20", "stream": "pair"}
    assert decision["frame"] == HOP and summary["summary"]["rejected"] == 0
    assert decision["decoded"]["layers"] == [1, 4, 7, 10]
    skeletons = np.array(decision["decoded"]["skeletons"])
    assert skeletons.shape == (4, 1, 16, 20, 3)  # (L, bodies, window, V, 3) of a kinect20 model
    assert np.isfinite(skeletons).all()


def test_stream_cli_empty_input_prints_a_zero_summary(model):
    result = CliRunner().invoke(app, ["stream", "--model", str(model), "--device", "cpu"],
                                input="")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "summary": {"frames": 0, "decisions": 0, "rejected": 0, "streams": 0}}


@pytest.mark.parametrize("args, code, message", [
    (["--model", "missing.onnx"], 1, "no such model file"),
    (["--hop", "0"], 2, "hop"),
])
def test_stream_cli_usage_and_model_errors(model, args, code, message):
    args = args if "--model" in args else ["--model", str(model), *args]
    result = CliRunner().invoke(app, ["stream", *args], input="")
    assert result.exit_code == code
    assert message in result.output


@pytest.mark.parametrize("text, reason", [
    ('{"stream": "", "joints": [[1, 2, 3]]}', "non-empty"),
    ('{"stream": true, "joints": [[1, 2, 3]]}', "non-empty"),
    ('{"stream": "s", "joints": [1, 2, 3]}', "shape"),
    ('{"stream": "s", "joints": [[1, 2, 3]], "t": "now"}', "t: expected"),
    ('{"stream": "s", "joints": [[true, null, 3]]}', "numbers only"),
    ('{"stream": "s", "joints": [[1, 2, 3], [4, 5]]}', "equal-length"),
])
def test_parse_frame_names_what_is_wrong(text, reason):
    with pytest.raises(SkeletonFormatError, match=reason) as info:
        parse_frame(text, 7)
    assert info.value.line == 7


def test_parse_frame_accepts_both_joint_nestings():
    one = parse_frame('{"stream": 3, "joints": [[1, 2, 3], [4, 5, 6]], "t": 2}', 1)
    two = parse_frame('{"stream": "x", "joints": [[[1, 2, 3]], [[4, 5, 6]]]}', 2)
    assert (one.stream, one.joints.shape, one.t) == ("3", (2, 3), 2.0)
    assert (two.stream, two.joints.shape, two.t) == ("x", (2, 1, 3), None)
    assert one.joints.dtype == np.float32


def test_ctrl_c_ends_the_stream_with_its_summary_and_exit_130(model):
    """A real process (the line reader's thread blocked on stdin): SIGINT after the first
    decision gives the summary with "interrupted", a one-line note and exit 130, no traceback."""
    import signal
    import subprocess
    import sys
    import threading

    from bodies import body_sequence

    proc = subprocess.Popen(
        [sys.executable, "-c", "from restcn_cli.infer import app; app()", "stream",
         "--model", str(model), "--hop", "4", "--threads", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, proc.kill)  # never hang the suite on a silent process
    watchdog.start()
    try:
        for joints in body_sequence(4, seed=0)[0]:
            proc.stdin.write(frame_line("a", joints) + "\n")
        proc.stdin.flush()  # stdin stays open: the reader waits for more
        first = json.loads(proc.stdout.readline())
        assert first["frame"] == 4 and first["top"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["interrupted"] == "interrupted" and summary["frames"] == 4
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
