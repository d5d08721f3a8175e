"""Benchmark: the project's NTU ``.skeleton`` reader against a plain line-by-line Python parser.

Writes full-size synthetic files (100-300 frames, 1-2 bodies, the real files' number formatting
and CRLF line ends) into a temporary folder, then times both parsers on the same files in the
same run, taking turns (one process, then 2 worker processes; MB/s, files/s, ratio), and
projects the wall time for all of NTU60 (56,880 files, 5.8 GB of text) from the 2-worker rate.
On a machine shared with other work the load average printed first says how much to trust it.

    python benchmarks/parse_ntu.py [--files 40] [--repeats 3] [--seed 0]

Files are read from the page cache (they were just written), as a second pass over NTU would be.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from restcn_infer.readers.ntu_skeleton import read_ntu_skeleton

NTU60_BYTES = 5.8e9
WORKERS = 2


def write_synthetic_files(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` realistic ``.skeleton`` files; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        frames = int(rng.integers(100, 301))
        bodies = int(rng.integers(1, 3))
        ids = [72057594037931101 + 1000 * b + i for b in range(bodies)]
        rest = rng.normal(0.0, 0.3, (bodies, 25, 3)) + [0.0, 0.2, 3.5]
        lines = [str(frames)]
        for t in range(frames):
            lines.append(str(bodies))
            for b in range(bodies):
                lines.append(f"{ids[b]} 0 1 1 1 1 0 {_g(rng.normal(0, 0.05))} "
                             f"{_g(rng.normal(0, 0.05))} 2")
                lines.append("25")
                xyz = rest[b] + 0.05 * np.sin(t / 10 + np.arange(25)[:, None])
                lines += [_joint_line(rng, p) for p in xyz]
        path = folder / f"S001C001P{i % 40 + 1:03d}R001A{i % 60 + 1:03d}.skeleton"
        path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
        paths.append(path)
    return paths


def _g(value: float) -> str:
    """Number formatting of the Kinect SDK's text export: 7 significant digits, ``E-05``."""
    return f"{value:.7g}".replace("e", "E")


def _joint_line(rng: np.random.Generator, xyz: np.ndarray) -> str:
    depth = rng.uniform(100, 400, 2)
    color = rng.uniform(500, 1500, 2)
    orient = rng.normal(0, 0.5, 4)
    values = [*xyz, *depth, *color, *orient]
    return " ".join(_g(v) for v in values) + f" {int(rng.integers(1, 3))}"


def plain_reader(path: Path) -> np.ndarray:
    """The baseline: a straightforward line-by-line parser (xyz only, no integrity check)."""
    with open(path) as f:
        lines = f.readlines()
    frames = int(lines[0])
    bodies: dict[str, list[tuple[int, list[list[float]]]]] = {}
    i = 1
    for t in range(frames):
        count = int(lines[i])
        i += 1
        for _ in range(count):
            body_id = lines[i].split()[0]
            joints = [[float(v) for v in line.split()[:3]] for line in lines[i + 2:i + 27]]
            bodies.setdefault(body_id, []).append((t, joints))
            i += 27
    out = np.zeros((max(len(bodies), 1), frames, 25, 3), dtype=np.float32)
    for m, entries in enumerate(list(bodies.values())[:2]):
        for t, joints in entries:
            out[m, t] = joints
    return out


def _read_all(reader: Callable[[Path], np.ndarray], paths: list[Path]) -> int:
    return sum(reader(p).shape[1] for p in paths)


def time_readers(readers: dict[str, Callable[[Path], np.ndarray]], paths: list[Path],
                 repeats: int, workers: int) -> dict[str, float]:
    """Best wall time per reader over ``repeats`` passes, the readers taking turns each pass
    (so that load from other processes on a shared machine hits both alike).

    ``workers == 1`` reads in this process; otherwise ``paths`` are split across that many
    worker processes.
    """
    best = dict.fromkeys(readers, float("inf"))
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        for reader in readers.values():  # start and warm up the workers
            list(pool.map(_read_all, [reader] * workers, chunks))
        for _ in range(repeats):
            for name, reader in readers.items():
                start = time.perf_counter()
                if workers == 1:
                    _read_all(reader, paths)
                else:
                    list(pool.map(_read_all, [reader] * workers, chunks))
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40, help="synthetic files to write")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        paths = write_synthetic_files(Path(folder), args.files, args.seed)
        size = sum(p.stat().st_size for p in paths)
        for p in paths[:3]:  # same answer from both parsers
            np.testing.assert_array_equal(read_ntu_skeleton(p), plain_reader(p))
        print(f"{len(paths)} synthetic files, {size / 1e6:.1f} MB "
              f"({size / len(paths) / 1e3:.0f} kB per file), best of {args.repeats} passes; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before timing")
        readers = {"plain line-by-line": plain_reader,
                   "restcn read_ntu_skeleton": read_ntu_skeleton}
        single = time_readers(readers, paths, args.repeats, workers=1)
        pooled = time_readers(readers, paths, args.repeats, workers=WORKERS)

    print(f"\n{'parser':26s} {'1 process':>22s} {f'{WORKERS} workers':>22s}  NTU60 projected")
    for name in readers:
        one, many = single[name], pooled[name]
        projected = NTU60_BYTES / (size / many)
        print(f"{name:26s} {size / one / 1e6:7.1f} MB/s {len(paths) / one:7.1f} f/s "
              f"{size / many / 1e6:7.1f} MB/s {len(paths) / many:7.1f} f/s  "
              f"{projected / 60:6.1f} min")
    base, ours = readers
    print(f"\nspeed-up of restcn over the plain parser: {single[base] / single[ours]:.2f}x "
          f"(1 process), {pooled[base] / pooled[ours]:.2f}x ({WORKERS} workers)")


if __name__ == "__main__":
    main()
