"""Hostile or mistaken input to the commands ``test_hostile_inputs`` does not reach:
``restcn-diagnose report|responses|primitives``, ``restcn-build-dataset``, ``restcn-build-ntu``,
``restcn-infer decode|stream`` with a declared ``--layout``, and ``restcn-infer serve`` over a
real socket.

Every refusal is the command's own (``SystemExit``, never an escaped exception: CliRunner
reports those as exit 1 with no traceback in the output, so the exit code alone proves
nothing), names the path and what was expected, and writes nothing; a bad recording, file or
line beside good ones costs only itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body_sequence, pose
from helpers import FakeClassifier, write_checkpoint, write_tiny_pyskl
from restcn_cli.build_dataset import app as build_dataset_app
from restcn_cli.build_ntu import app as build_ntu_app
from restcn_cli.diagnose import app as diagnose_app
from restcn_cli.infer import app as infer_app


def _sibling(name: str):
    """A module beside this file: only tests/ is on sys.path (pytest's importlib mode)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_hostile = _sibling("test_hostile_inputs")
HOSTILE_FILES, write_hostile, throw, Bomb, THROW = (
    _hostile.HOSTILE_FILES, _hostile.write_hostile, _hostile.throw, _hostile.Bomb, _hostile.THROW)
runner = CliRunner()


class Touch:
    """Unpickles by running a shell command that creates ``marker``: it must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def refused(result, code: int = 1) -> str:
    """The command chose to exit ``code`` (no escaped exception); its output."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.output


def files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []


# -- restcn-diagnose -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_data(tmp_path_factory):
    """A PYSKL pickle whose classes are the bundled model's (so only the split can be wrong)."""
    from restcn_infer.classifier import Classifier

    root = tmp_path_factory.mktemp("model_data")
    classes = Classifier("res-tcn", device="cpu").spec.classes
    (root / "label_map.txt").write_text("\n".join(classes) + "\n")
    return write_tiny_pyskl(root / "data.pkl", classes=len(classes), per_class=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    pytest.importorskip("torch")
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt")


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


DATASETS = {  # name -> (make(tmp) -> path, words of the error)
    "pickle with code": (lambda tmp: _write(tmp / "code.pkl", pickle.dumps(
        {"split": {"val": ["x"]}, "annotations": [Touch(tmp / "PWNED")]})),
        "refusing to load global"),
    "pickle bomb": (lambda tmp: _write(tmp / "bomb.pkl", pickle.dumps(
        {"split": {}, "annotations": [{"frame_dir": "x", "label": 0, "keypoint": Bomb()}]},
        protocol=2)), "does not hold"),
    "missing file": (lambda tmp: tmp / "missing.pkl", "no such file"),
    "not a data set": (lambda tmp: _write(tmp / "notes.txt", b"hello"), "expected a data set"),
    "not a pickle": (lambda tmp: _write(tmp / "junk.pkl", b"\x00\xff" * 50), "pickle"),
}


@pytest.mark.parametrize("case", [*DATASETS, "unknown split"])
@pytest.mark.parametrize("command", ["report", "responses"])
def test_diagnose_names_a_hostile_data_set_and_writes_nothing(tmp_path, request, model_data,
                                                              command, case):
    if case == "unknown split":
        data, split, words = model_data, "nosuch", "unknown split 'nosuch'"
    else:
        data, split, words = DATASETS[case][0](tmp_path), "val", DATASETS[case][1]
    out = tmp_path / "out"
    args = ["--data", str(data), "--split", split, "--out"]
    args = (["report", "res-tcn", *args, str(out)] if command == "report" else
            ["responses", str(request.getfixturevalue("checkpoint")), "--class", "wave", *args,
             str(out / "responses.png")])
    output = refused(runner.invoke(diagnose_app, args))
    [error] = [line for line in output.splitlines() if line.startswith("error: ")]
    prefix = f"error: {data}: "
    assert error.startswith(prefix) and words in error[len(prefix):], output
    assert not (tmp_path / "PWNED").exists()  # the pickle's code never ran
    assert files_under(out) == []


@pytest.mark.parametrize("command, out, words", [
    ("report", "afile", "exists and is a file; --out (diagnosis.json, report.html) names a "
                        "folder"),
    ("report", "afile/sub", "cannot create the folder"),
    ("primitives", "afile", "exists and is a file; --out (primitives.png) names a folder"),
    ("primitives", "afile/sub", "cannot create the folder"),
    ("responses", "folder", "is a directory; --out names the file to write"),
    ("responses", "afile/r.png", "exists and is not a folder"),
])
def test_diagnose_checks_out_before_any_work(tmp_path, command, out, words):
    if command == "responses":
        pytest.importorskip("torch")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    missing = str(tmp_path / "missing.pt")  # never opened: --out is refused first
    data = ["--data", "missing.pkl", "--split", "val"]
    args = {"report": ["report", missing, *data], "primitives": ["primitives", missing],
            "responses": ["responses", missing, *data, "--class", "wave"]}[command]
    output = refused(runner.invoke(diagnose_app, [*args, "--out", str(tmp_path / out)]))
    assert words in output and "missing" not in output, output
    assert (tmp_path / "afile").read_text() == "x" and files_under(tmp_path / "folder") == []


# -- restcn-build-dataset --------------------------------------------------------------------

def _recordings(folder: Path, bad: Path | None = None, labels: bytes | None = None) -> Path:
    """``g1.npy`` and ``g2.npy`` (good), ``bad`` on line 3 of ``labels.csv`` between them."""
    np.save(folder / "g1.npy", throw())
    np.save(folder / "g2.npy", throw()[:, ::2])
    if labels is None:
        labels = (f"file,label\ng1.npy,throw\n{bad.name},wave\ng2.npy,wave\n").encode()
    return _write(folder / "labels.csv", labels)


def _packed(out: Path) -> list[str]:  # the sample names in the test's own output
    return [a["frame_dir"] for a in pickle.loads(out.read_bytes())["annotations"]]


def _build(folder: Path, labels: Path, out: Path):
    return runner.invoke(build_dataset_app, [str(folder), "--labels", str(labels), "--out",
                                             str(out)])




@pytest.mark.parametrize("case", ["npy header claims 1e9 frames", "npy object array",
                                  "json nested 100k deep", "json NaN", "pickle bomb",
                                  "pickle with code", "ntu garbage", "13 joints",
                                  "unknown suffix", "3e37", "empty frames"])
def test_build_dataset_packs_the_good_recordings_and_lists_the_bad_one(tmp_path, case):
    bad = write_hostile(tmp_path, case)
    out = tmp_path / "out" / "d.pkl"
    result = _build(tmp_path, _recordings(tmp_path, bad), out)
    assert result.exit_code == 0 and result.exception is None, result.output
    assert _packed(out) == ["g1", "g2"]
    assert "left out 1 recordings" in result.output
    [line] = [ln.strip() for ln in result.output.splitlines() if ln.strip().startswith("line ")]
    assert line.startswith("line 3: ") and bad.name in line, line
    if case == "3e37":
        assert "not a body" in line, line
    elif case == "empty frames":
        assert "no frame has a body" in line, line
    else:
        assert HOSTILE_FILES[case][2] in line, line


@pytest.mark.parametrize("labels, words", [
    (b"\x00\xff\xfe" * 1000, "expected UTF-8 text"),
    (b"file,label\ng1.npy,throw\ng2.npy,wave\ng3.npy," + b"x" * 200_000 + b"\n",
     "labels.csv:4: field larger than field limit"),
    (b"path,class\ng1.npy,throw\ng2.npy,wave\n", "lacks the columns ['file', 'label']"),
    (b"file,label\n../g1.npy,throw\ng2.npy,wave\n", "must be a path inside the data folder"),
], ids=["binary garbage", "a huge line", "missing columns", "outside the folder"])
def test_build_dataset_names_a_hostile_labels_table(tmp_path, labels, words):
    path, out = _recordings(tmp_path, labels=labels), tmp_path / "out" / "d.pkl"
    output = refused(_build(tmp_path, path, out))
    assert output.startswith(f"error: {path}") and words in output, output
    assert files_under(out.parent) == []


def test_build_dataset_refuses_an_out_under_a_file(tmp_path):
    labels = _recordings(tmp_path, labels=b"file,label\ng1.npy,throw\ng2.npy,wave\n")
    (tmp_path / "afile").write_text("x")
    output = refused(_build(tmp_path, labels, tmp_path / "afile" / "d.pkl"))
    assert "afile" in output and (tmp_path / "afile").read_text() == "x"


# -- restcn-build-ntu ------------------------------------------------------------------------

GOOD_NTU, BAD_NTU = "S001C001P001R001A001", "S001C002P002R001A002"


def ntu_skeleton(frames: int = 12) -> bytes:
    """A minimal valid raw NTU file: one body, 25 joints per frame, CRLF line ends."""
    lines = [str(frames)]
    for t in range(frames):
        lines += ["1", "72057594037931101 0 1 1 1 1 0 0.02 0.05 2", "25"]
        lines += [f"{x:.5f} {y:.5f} {z:.5f} 277.4 191.8 1036.2 519.1 -0.2 0.05 0.96 -0.12 2"
                  for x, y, z in pose("ntu25") + 0.01 * t]
    return ("\r\n".join(lines) + "\r\n").encode()


def _raw_ntu(tmp_path: Path) -> Path:
    (tmp_path / "raw").mkdir()
    _write(tmp_path / "raw" / f"{GOOD_NTU}.skeleton", ntu_skeleton())
    return tmp_path / "raw"


@pytest.mark.parametrize("case", ["ntu garbage", "ntu empty frames"])
def test_build_ntu_packs_the_good_file_and_lists_the_bad_one(tmp_path, case):
    raw = _raw_ntu(tmp_path)
    _write(raw / f"{BAD_NTU}.skeleton", HOSTILE_FILES[case][1])
    out = tmp_path / "out"
    result = runner.invoke(build_ntu_app, [str(raw), "--out", str(out), "--workers", "1",
                                           "-b", "ntu60-xsub"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "parsed 1 files" in result.output and "skipped 1" in result.output
    [skipped] = json.loads((out / "skipped.json").read_text())
    assert skipped["file"] == f"{BAD_NTU}.skeleton" and HOSTILE_FILES[case][2] in skipped["reason"]
    bench = out / "ntu60-xsub"
    names = [str(n) for split in ("train", "test") for n in np.load(bench / f"{split}_names.npy")]
    assert names == [GOOD_NTU]
    assert json.loads((bench / "meta.json").read_text())["splits"] == {"train": 1, "test": 0}
    assert np.load(bench / "train_x.npy").shape == (12, 2, 25, 3)


@pytest.mark.parametrize("case", [
    "out is a file", "missing list is binary"])
def test_build_ntu_refuses_a_bad_out_or_missing_list(tmp_path, case):
    raw = _raw_ntu(tmp_path)
    afile = _write(tmp_path / "afile", b"\x00\xff" * 50)
    args = (["--out", str(afile)] if case == "out is a file" else
            ["--out", str(tmp_path / "out"), "--missing-list", str(afile)])
    output = refused(runner.invoke(build_ntu_app, [str(raw), *args, "--workers", "1"]))
    assert output.startswith(f"error: {afile}"), output
    assert afile.read_bytes() == b"\x00\xff" * 50 and files_under(tmp_path / "out") == []


# -- restcn-infer decode / stream with a declared --layout -----------------------------------

GUESSED = "assumed from the joint count"


@pytest.mark.parametrize("layout, wrong, words", [
    ("kinect20", "ntu25", "layout ntu25 has 25 joints, the file 20"),
    ("ntu25", "kinect20", "layout kinect20 has 20 joints, the file 25"),
])
def test_decode_uses_the_declared_layout(tmp_path, layout, wrong, words):
    source = THROW if layout == "kinect20" else tmp_path / "ntu25.npy"
    if layout == "ntu25":  # mapped by joint name into the bundled kinect20 model
        np.save(source, body_sequence(40, "ntu25"))

    def decode(name, *extra):
        return runner.invoke(infer_app, ["decode", str(source), "--out", str(tmp_path / name),
                                         "--device", "cpu", *extra])

    guessed = decode("guessed.npz")
    assert guessed.exit_code == 0 and GUESSED in guessed.stderr, guessed.output  # the control
    declared = decode("declared.npz", "--layout", layout)
    assert declared.exit_code == 0 and declared.exception is None, declared.output
    assert GUESSED not in declared.stderr and "error" not in declared.stderr
    assert ("mapping them by name" in declared.stderr) == (layout == "ntu25")
    with np.load(tmp_path / "declared.npz") as got, np.load(tmp_path / "guessed.npz") as want:
        assert got["decoded"].shape[-2:] == (20, 3) and str(got["joint_names"][0]) == "HipCenter"
        np.testing.assert_array_equal(got["decoded"], want["decoded"])
    output = refused(decode("wrong.npz", "--layout", wrong))  # the declaration is not ignored
    assert words in output and not (tmp_path / "wrong.npz").exists()


def _frame(stream: str, frame: np.ndarray) -> str:
    return json.dumps({"stream": stream, "joints": frame.tolist()})


def _lines(frames: np.ndarray) -> str:
    return "".join(_frame("s", f) + "\n" for f in frames)


@pytest.mark.parametrize("layout", ["kinect20", "ntu25"])
def test_stream_uses_the_declared_layout(layout):
    frames = body_sequence(16, layout)[0]
    result = runner.invoke(infer_app, ["stream", "--device", "cpu", "--hop", "8", "--layout",
                                       layout], input=_lines(frames))
    assert result.exit_code == 0 and GUESSED not in result.stderr, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    notices = [r["notice"] for r in records if "notice" in r]
    assert notices == ([] if layout == "kinect20" else [
        "joints in layout ntu25 (declared), mapped by joint name to the model's layout kinect20"])
    assert [r["frame"] for r in records if "top" in r] == [8, 16]
    assert records[-1]["summary"]["rejected"] == 0
    other = "ntu25" if layout == "kinect20" else "kinect20"
    wrong = runner.invoke(infer_app, ["stream", "--device", "cpu", "--hop", "8", "--layout",
                                      other], input=_lines(frames[:3]))
    errors = [json.loads(line) for line in wrong.stdout.splitlines()]
    assert [(e["line"], f"layout {other} has" in e["error"]) for e in errors[:-1]] == [
        (1, True), (2, True), (3, True)]
    assert errors[-1]["summary"]["rejected"] == 3


# -- restcn-infer serve over a socket --------------------------------------------------------

def _strict(text: str) -> dict:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text[:80]}"))


async def _serve(hop: int, body):
    """A StreamServer (the numpy stand-in model, window 16) on a free port while ``body(ws)``
    talks to it over one connection."""
    from websockets.asyncio.client import connect

    from restcn_infer.serve_config import ServeConfig
    from restcn_infer.stream_server import StreamServer
    from restcn_infer.streaming import StreamClassifier

    engine = StreamClassifier(FakeClassifier(), hop=hop)
    stop, bound = asyncio.Event(), asyncio.get_running_loop().create_future()
    task = asyncio.create_task(StreamServer(engine, ServeConfig(port=0)).serve(
        started=bound.set_result, stop=stop))
    try:
        port = await asyncio.wait_for(bound, 30)
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            return await asyncio.wait_for(body(ws), 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _records_until(ws, frame: int, wait_s: float = 3.0) -> list[dict]:
    """Records until the decision of ``frame`` (or ``wait_s`` of silence)."""
    records: list[dict] = []
    while not any(r.get("frame") == frame and "top" in r for r in records):
        try:
            records.append(_strict(await asyncio.wait_for(ws.recv(), wait_s)))
        except asyncio.TimeoutError:
            break
    return records


HOSTILE_LINES = {  # line -> (text, words of its error record)
    9: ("this is not json", "not JSON"),
    10: ('{"stream": "s", "joints": [[NaN, 1, 2]]}', "NaN is not a JSON number"),
    11: ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
    12: (None, "has 13 joints"),
    13: (json.dumps({"stream": "x" * 300, "joints": [[1, 2, 3]]}), "at most 256 characters"),
    14: ("\x00\ufffd\x1b[31m garbage \x7f", "not JSON"),
}


def test_serve_answers_each_hostile_line_and_keeps_the_good_stream():
    pytest.importorskip("websockets")
    frames = body_sequence(20)[0]
    hostile = [text or _frame("s", frames[0][:13]) for text, _ in HOSTILE_LINES.values()]

    async def body(ws):
        lines = [_frame("s", f) for f in frames[:8]] + hostile + [_frame("s", f)
                                                                  for f in frames[8:16]]
        await ws.send("\n".join(lines))  # lines 1-22
        await ws.send(b"\xff\xfe\x00\x81 binary garbage")  # line 23
        await ws.send("\n".join(_frame("s", f) for f in frames[16:]))  # lines 24-27
        records = await _records_until(ws, 20)
        await asyncio.wait_for(await ws.ping(), 5)  # the connection is still open
        return records

    records = asyncio.run(_serve(4, body))
    errors = {r["line"]: r for r in records if "error" in r}
    assert sorted(errors) == [*HOSTILE_LINES, 23], records
    for line, (_, words) in HOSTILE_LINES.items():
        assert words in errors[line]["error"], errors[line]
    assert "not UTF-8" in errors[23]["error"]
    assert errors[12]["stream"] == "s" and "stream_refused" not in errors[12]
    assert "stream" not in errors[13]  # an overlong id is not echoed back
    # every good frame counted, the stream never refused, the connection still answering
    assert [r["frame"] for r in records if "top" in r] == [4, 8, 12, 16, 20]


def test_serve_a_binary_line_costs_only_itself():
    pytest.importorskip("websockets")
    frames = body_sequence(4)[0]

    async def body(ws):
        await ws.send(b"\n".join([_frame("s", frames[0]).encode(), b"\xff\xfe garbage",
                                  _frame("s", frames[1]).encode()]))  # lines 1-3
        await ws.send("\n".join(_frame("s", f) for f in frames[2:]))  # lines 4-5
        return await _records_until(ws, 4)

    records = asyncio.run(_serve(2, body))
    assert [r["line"] for r in records if "error" in r] == [2]
    assert [r["frame"] for r in records if "top" in r] == [2, 4]
