"""Pack a folder of NTU RGB+D ``.skeleton`` files into memory-mappable benchmark directories.

Output (read by :mod:`restcn_training.data`)::

    out_dir/cache/<name>.npy          float32 (T, 2, 25, 3) per parsed file (the resumable part)
    out_dir/skipped.json              [{"file", "reason"}] files that could not be used
    out_dir/<benchmark>/meta.json     {"dataset", "benchmark", "layout": "ntu25", "bodies": 2,
                                       "classes", "splits": {"train": N, "test": N}, "skipped"}
    out_dir/<benchmark>/<s>_x.npy        float32 (total_frames, 2, 25, 3), sequences end to end
    out_dir/<benchmark>/<s>_offsets.npy  int64 (N+1,): sequence i is frames offsets[i]:offsets[i+1]
    out_dir/<benchmark>/<s>_label.npy    int64 (N,): action - 1
    out_dir/<benchmark>/<s>_names.npy    <U20 (N,): sample names

for each split ``s`` in (train, test). Every file is written atomically
(:mod:`restcn_infer.atomic`), so an interrupted build never leaves a partial file under a final
name; a rerun parses only the files without a cache entry (files that failed are tried again).
``meta.json`` is written last: a benchmark directory without it is incomplete. One build per
``out_dir`` at a time (a build removes the temporary files it finds there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from restcn_infer.atomic import atomic_path, atomic_write, atomic_write_text, remove_temporaries
from restcn_infer.errors import DataError, SkeletonFormatError
from restcn_infer.ntu import (
    BENCHMARKS,
    class_names,
    load_missing_list,
    parse_sample_name,
    split_names,
)
from restcn_infer.output_paths import check_output_dir
from restcn_infer.readers.ntu_skeleton import NUM_JOINTS, read_ntu_skeleton

BODIES = 2
DEFAULT_BENCHMARKS = ("ntu60-xsub", "ntu60-xview")
SPLITS = ("train", "test")

#: ``progress(done, total)``: called in the calling process after each file is parsed.
ProgressCallback = Callable[[int, int], None]


@dataclass
class BuildReport:
    """What a build did. ``splits[benchmark] = {"train": N, "test": N}``."""

    out_dir: Path
    parsed: int = 0
    cached: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)


def build_ntu_benchmarks(
    skeleton_dir: str | PathLike[str],
    out_dir: str | PathLike[str],
    benchmarks: Sequence[str] = DEFAULT_BENCHMARKS,
    missing_list: str | PathLike[str] | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> BuildReport:
    """Parse every ``*.skeleton`` in ``skeleton_dir`` (in parallel) and pack ``benchmarks``.

    Args:
        skeleton_dir: folder of raw NTU files named ``SsssCcccPpppRrrrAaaa.skeleton``.
        out_dir: output folder (created); see the module docstring for its layout.
        benchmarks: any of :data:`restcn_infer.ntu.BENCHMARKS`.
        missing_list: an official missing-skeleton list; its samples are left out.
        workers: parser processes (default: CPU count); 1 parses in this process.
        progress: called as ``progress(done, total)`` while files are parsed.

    Raises:
        DataError: unknown benchmark, bad ``workers``, ``skeleton_dir`` not a folder, or a
            malformed missing list.
    """
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown or not benchmarks:
        raise DataError(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    skeleton_dir, out_dir = Path(skeleton_dir), Path(out_dir)
    if not skeleton_dir.is_dir():
        raise DataError(f"{skeleton_dir}: no such folder of .skeleton files")
    if missing_list is not None and not Path(missing_list).is_file():
        raise DataError(f"{missing_list}: no such missing-skeleton list")
    check_output_dir(out_dir, what="--out")  # before any file is parsed
    missing = load_missing_list(missing_list) if missing_list is not None else set()

    report = BuildReport(out_dir=out_dir)
    names = []
    for path in sorted(skeleton_dir.glob("*.skeleton")):
        try:
            parse_sample_name(path.name)
            names.append(path.stem)
        except DataError as e:
            report.skipped.append({"file": path.name, "reason": str(e)})
    wanted = sorted({name for benchmark in benchmarks
                     for split in split_names(names, benchmark, missing).values()
                     for name in split})

    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out_dir)
    todo = [name for name in wanted if not (cache / f"{name}.npy").is_file()]
    report.cached = len(wanted) - len(todo)
    failures = _parse_all(skeleton_dir, cache, todo, workers, progress)
    report.parsed = len(todo) - len(failures)
    report.skipped += [{"file": f"{name}.skeleton", "reason": reason}
                       for name, reason in sorted(failures.items())]
    _write_json(out_dir / "skipped.json", report.skipped)

    usable = [name for name in wanted if name not in failures]
    for benchmark in benchmarks:
        splits = split_names(usable, benchmark)
        _pack_benchmark(cache, out_dir / benchmark, benchmark, splits, report.skipped)
        report.splits[benchmark] = {s: len(splits[s]) for s in SPLITS}
    return report


def _parse_all(skeleton_dir: Path, cache: Path, names: list[str], workers: int,
               progress: ProgressCallback | None) -> dict[str, str]:
    """Parse ``names`` into the cache; returns ``{name: reason}`` for the files that failed."""
    jobs = [(skeleton_dir / f"{name}.skeleton", cache) for name in names]
    if workers == 1 or len(jobs) <= 1:
        results: Iterable[tuple[str, str | None]] = (_parse_to_cache(*job) for job in jobs)
        return _collect(results, len(jobs), progress)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_parse_to_cache, *zip(*jobs), chunksize=8)
        return _collect(results, len(jobs), progress)


def _collect(results: Iterable[tuple[str, str | None]], total: int,
             progress: ProgressCallback | None) -> dict[str, str]:
    failures = {}
    for done, (name, error) in enumerate(results, start=1):
        if error is not None:
            failures[name] = error
        if progress is not None:
            progress(done, total)
    return failures


def _parse_to_cache(path: Path, cache: Path) -> tuple[str, str | None]:
    """Worker: parse one file into ``cache/<name>.npy`` as ``(T, 2, 25, 3)``; ``(name, error)``."""
    try:
        x = read_ntu_skeleton(path, max_bodies=BODIES)  # (M, T, 25, 3)
    except SkeletonFormatError as e:
        return path.stem, str(e)
    frames = np.zeros((x.shape[1], BODIES, NUM_JOINTS, 3), dtype=np.float32)
    frames[:, : x.shape[0]] = x.transpose(1, 0, 2, 3)  # (M, T, 25, 3) -> (T, M, 25, 3), padded
    _save_npy(cache / f"{path.stem}.npy", frames)
    return path.stem, None


def _pack_benchmark(cache: Path, folder: Path, benchmark: str, splits: dict[str, list[str]],
                    skipped: list[dict[str, str]]) -> None:
    """Write one benchmark directory from cached sequences, ``meta.json`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # incomplete until rewritten
    for split in SPLITS:
        names = splits[split]
        lengths = [np.load(cache / f"{n}.npy", mmap_mode="r").shape[0] for n in names]
        offsets = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        with atomic_path(folder / f"{split}_x.npy") as tmp:
            x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                          shape=(int(offsets[-1]), BODIES, NUM_JOINTS, 3))
            for name, start, stop in zip(names, offsets[:-1], offsets[1:]):
                x[start:stop] = np.load(cache / f"{name}.npy", mmap_mode="r")
            x.flush()
            del x
        _save_npy(folder / f"{split}_offsets.npy", offsets)
        labels = [parse_sample_name(n).label for n in names]
        _save_npy(folder / f"{split}_label.npy", np.array(labels, dtype=np.int64))
        _save_npy(folder / f"{split}_names.npy", np.array(names, dtype="<U20"))
    _write_json(folder / "meta.json", {
        "dataset": benchmark.split("-")[0],
        "benchmark": benchmark,
        "layout": "ntu25",
        "bodies": BODIES,
        "classes": class_names(benchmark),
        "splits": {s: len(splits[s]) for s in SPLITS},
        "skipped": skipped,
    })


def _save_npy(final: Path, array: np.ndarray) -> None:
    atomic_write(final, lambda fh: np.save(fh, array, allow_pickle=False))


def _write_json(final: Path, value: object) -> None:
    atomic_write_text(final, json.dumps(value, indent=1) + "\n")
