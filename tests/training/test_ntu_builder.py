"""NTU benchmark builder: packed layout, skipped files, resumability, atomic outputs; its CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restcn_cli.build_ntu import app
from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton
from restcn_training import ntu_builder
from restcn_training.ntu_builder import build_ntu_benchmarks

REAL = ["S001C001P001R001A001", "S001C001P001R001A011", "S001C003P008R002A058",
        "S003C001P015R001A034"]
CORRUPT = "S002C002P002R001A002"  # truncated copy of a real file
FILES = ("x", "offsets", "label", "names")


@pytest.fixture
def skeleton_dir(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in REAL:
        shutil.copy(shared_data / "ntu" / f"{name}.skeleton", folder)
    content = (shared_data / "ntu" / f"{REAL[0]}.skeleton").read_bytes()
    (folder / f"{CORRUPT}.skeleton").write_bytes(content[: len(content) // 2])
    (folder / "notes.skeleton").write_bytes(b"not a sample")
    return folder


def _load(folder: Path, split: str, part: str) -> np.ndarray:
    return np.load(folder / f"{split}_{part}.npy", allow_pickle=False, mmap_mode="r")


def test_packs_every_split(skeleton_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = build_ntu_benchmarks(skeleton_dir, out, ["ntu60-xview", "ntu60-xsub"], workers=2)
    assert report.parsed == 4 and report.cached == 0
    assert sorted(s["file"] for s in report.skipped) == [f"{CORRUPT}.skeleton", "notes.skeleton"]
    # camera 1 -> xview test; performers 1, 8 and 15 all train in xsub
    expected = {"ntu60-xview": {"train": [REAL[2]], "test": [REAL[0], REAL[1], REAL[3]]},
                "ntu60-xsub": {"train": REAL, "test": []}}
    for benchmark, splits in expected.items():
        folder = out / benchmark
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["splits"] == {s: len(names) for s, names in splits.items()}
        assert meta["layout"] == "ntu25" and meta["bodies"] == 2 and meta["dataset"] == "ntu60"
        assert len(meta["classes"]) == 60 and meta["classes"][57] == "handshaking"
        assert {s["file"] for s in meta["skipped"]} >= {f"{CORRUPT}.skeleton"}
        for split, names in splits.items():
            x, offsets = _load(folder, split, "x"), _load(folder, split, "offsets")
            assert _load(folder, split, "names").dtype == np.dtype("<U20")
            assert list(_load(folder, split, "names")) == names
            assert list(_load(folder, split, "label")) == [int(n[-3:]) - 1 for n in names]
            assert x.dtype == np.float32 and x.shape[1:] == (2, 25, 3)
            assert offsets.dtype == np.int64 and offsets[0] == 0 and offsets[-1] == len(x)
            for i, name in enumerate(names):
                original = read_ntu_skeleton(skeleton_dir / f"{name}.skeleton")  # (M, T, 25, 3)
                packed = x[offsets[i]:offsets[i + 1]]  # (T, 2, 25, 3)
                assert len(packed) == original.shape[1]
                np.testing.assert_array_equal(packed[:, : len(original)],
                                              original.transpose(1, 0, 2, 3))
                assert not packed[:, len(original):].any()  # padded bodies are zeros
    assert {s["file"] for s in json.loads((out / "skipped.json").read_text())} == {
        f"{CORRUPT}.skeleton", "notes.skeleton"}
    reason = next(s["reason"] for s in report.skipped if s["file"].startswith(CORRUPT))
    assert "expected" in reason


def test_rerun_parses_only_what_is_missing(skeleton_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    build_ntu_benchmarks(skeleton_dir, out, ["ntu60-xsub"], workers=1)
    (out / "cache" / f"{REAL[1]}.npy").unlink()
    # an interrupted run's leftovers: a half-written cache entry and a half-written split
    (out / "cache" / f".{REAL[2]}.npy.x7Qz.tmp").write_bytes(b"\x93NUMPY half")
    (out / "ntu60-xsub" / ".train_x.npy.k2Pw.tmp").write_bytes(b"\x93NUMPY half")
    before = _load(out / "ntu60-xsub", "train", "x").copy()

    parsed = []

    def spy(path: Path, max_bodies: int = 2) -> np.ndarray:
        parsed.append(Path(path).stem)
        return read_ntu_skeleton(path, max_bodies)

    monkeypatch.setattr(ntu_builder, "read_ntu_skeleton", spy)
    report = build_ntu_benchmarks(skeleton_dir, out, ["ntu60-xsub"], workers=1)
    assert sorted(parsed) == sorted([REAL[1], CORRUPT])  # failures are tried again
    assert (report.parsed, report.cached) == (1, 3)
    np.testing.assert_array_equal(_load(out / "ntu60-xsub", "train", "x"), before)
    assert not list(out.glob("**/*.tmp"))


def test_missing_list_leaves_samples_out(skeleton_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    missing.write_text(f"These samples are missing.\n\n{REAL[0]}\n{CORRUPT}\n")
    report = build_ntu_benchmarks(skeleton_dir, tmp_path / "out", ["ntu120-xset"],
                                  missing_list=missing, workers=1)
    assert report.splits == {"ntu120-xset": {"train": 0, "test": 3}}
    assert [s["file"] for s in report.skipped] == ["notes.skeleton"]
    names = _load(tmp_path / "out" / "ntu120-xset", "test", "names")
    assert REAL[0] not in list(names)


def test_unknown_benchmark(skeleton_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmarks"):
        build_ntu_benchmarks(skeleton_dir, tmp_path / "out", ["ntu60-xsetup"])


def test_cli_passes_its_arguments_and_maps_errors(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake(skeleton_dir, out_dir, benchmarks, missing_list, workers, progress):
        calls.append((skeleton_dir, out_dir, list(benchmarks), missing_list, workers))
        progress(1, 1)
        return ntu_builder.BuildReport(out_dir=out_dir, parsed=1,
                                       splits={"ntu120-xset": {"train": 1, "test": 0}})

    monkeypatch.setattr("restcn_cli.build_ntu.build_ntu_benchmarks", fake)
    result = CliRunner().invoke(app, [str(tmp_path), "--out", str(tmp_path / "o"),
                                      "-b", "ntu120-xset", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path, tmp_path / "o", ["ntu120-xset"], None, 3)]

    def failing(*args, **kwargs):
        raise ValueError("unknown benchmarks ['x']")

    monkeypatch.setattr("restcn_cli.build_ntu.build_ntu_benchmarks", failing)
    result = CliRunner().invoke(app, [str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
