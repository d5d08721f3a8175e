"""Labelled data sets: named splits of skeleton sequences with class names and a joint layout.

One reader for training, evaluation and diagnosis (numpy only). Three sources, found by what
``path`` is:

- a PYSKL/mmaction2 annotation pickle (``*.pkl``, splits inside), read through the restricted
  unpickler of :mod:`restcn_infer.readers.pyskl`; class names from ``label_map.txt`` beside it;
- a packed benchmark directory written by ``restcn-build-ntu`` (``meta.json`` + per split
  ``<s>_x.npy`` frames end to end, ``<s>_offsets.npy``, ``<s>_label.npy``, ``<s>_names.npy``),
  memory-mapped, so NTU never sits in RAM::

      meta.json        {"dataset", "benchmark", "layout": "ntu25", "bodies": 2, "classes": [...],
                        "splits": {"train": N, "test": N}}
      <s>_x.npy        float32 (total_frames, bodies, V, 3)
      <s>_offsets.npy  int64 (N+1,): sequence i is frames offsets[i]:offsets[i+1]

- CTR-GCN's packed NTU arrays (``NTU60_CS.npz``): ``x_train (N, T, D)`` body-major features,
  one-hot or integer ``y_train``, ``x_test``, ``y_test``; splits ``train`` and ``test``. Arrays
  stored uncompressed (as CTR-GCN writes them) are memory-mapped from inside the archive; nothing
  is unpickled.

Every sequence comes out as float32 ``(M, T, V, C)``, as the file readers give it: C = 3 (x, y,
z), or 2 (x, y) for a 2-D PYSKL pickle (:attr:`Dataset.coords`); packed directories and
``.npz`` archives are 3-D. Anything that
would make a data set meaningless (unknown split, labels outside the class names, inconsistent
arrays) is a :class:`~restcn_infer.errors.DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.errors import DataError, LayoutError, SkeletonFormatError
from restcn_infer.layouts import (
    LAYOUTS,
    JointLayout,
    get_layout,
    layout_for_joints,
    resolve_layout,
)
from restcn_infer.limits import MAX_COMPRESSION_RATIO, MAX_NPZ_MEMBER_BYTES, NPZ_READ_CHUNK_BYTES
from restcn_infer.ntu import NTU120_CLASSES
from restcn_infer.readers.pyskl import read_pyskl
from restcn_infer.splits import (
    FeatureSplit,
    LabelledSplit,
    ListSplit,
    PackedSplit,
    carve_holdout,
)


def with_holdout(data: Dataset, split: str, *, fraction: float = 0.0, match: str | None = None,
                 seed: int = 0) -> tuple[Dataset, str]:
    """``data`` with the holdout :func:`carve_holdout` takes from ``split`` added as a split of
    its own, and that split's name (``"<split> (holdout)"``): to evaluate or diagnose a model on
    the holdout it was validated on (``restcn-train --holdout-*`` with the same arguments)."""
    _, held = carve_holdout(data.split(split), fraction=fraction, match=match, seed=seed)
    name = f"{split} (holdout)"
    return dataclasses.replace(data, splits={**data.splits, name: held}), name


@dataclass(frozen=True)
class Dataset:
    """A labelled data set: named splits, class names (index = label), the joint layout and
    the coordinates per joint (3: x, y, z; 2: x, y)."""

    path: Path
    splits: dict[str, LabelledSplit]
    classes: list[str]
    layout: JointLayout
    coords: int = 3

    def split(self, name: str) -> LabelledSplit:
        """Split ``name``; :class:`DataError` lists the available ones."""
        if name not in self.splits:
            raise DataError(f"{self.path}: unknown split {name!r}; available: "
                            f"{', '.join(sorted(self.splits)) or 'none'}")
        return self.splits[name]


#: What names a data set's joint layout: a built-in name, a layout ``.json`` file or a layout.
LayoutArg = str | JointLayout | None


def open_dataset(path: str | Path, layout: LayoutArg = None) -> Dataset:
    """Open a labelled data set (see the module docstring for the sources).

    Args:
        layout: joint layout (built-in name, layout ``.json`` file or layout) overriding the
            one the data declares (a pickle's ``"layout"``, ``meta.json``) or its joint count
            implies.

    Raises:
        DataError: missing, unreadable or inconsistent data, or labels outside the class names.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        return _open_packed(path, layout)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _open_npz(path, layout)
    if suffix in (".pkl", ".pickle"):
        return _open_pyskl(path, layout)
    what = ("a raw NTU .skeleton file: pack a folder of them with restcn-build-ntu first"
            if suffix == ".skeleton" else f"a {suffix or 'suffix-less'} file")
    raise DataError(f"{path}: expected a data set (a PYSKL .pkl, a CTR-GCN .npz or a packed "
                    f"benchmark directory), got {what}")


def class_names(label_map: Path, num_classes: int, where: Path) -> list[str]:
    """Names from ``label_map`` (one per line) if it exists, else ``class_<i>``.

    Raises:
        DataError: the labels reach beyond the names the label map gives.
    """
    if not label_map.is_file():
        return [f"class_{i}" for i in range(num_classes)]
    try:
        names = [line.strip() for line in label_map.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{label_map}: cannot read the class names ({exc})") from None
    if len(names) < num_classes:
        raise DataError(f"{where}: labels go up to {num_classes - 1}, but {label_map} names only "
                        f"{len(names)} classes")
    return names


def _layout(name: LayoutArg, declared: JointLayout | None, num_joints: int,
            where: Path) -> JointLayout:
    """The layout given (``name``: the caller's, so it may name a layout file), else the one
    the data declares, else the one of its joint count."""
    try:
        layout = (resolve_layout(name) if name is not None else
                  declared or layout_for_joints(num_joints))
    except LayoutError as exc:
        raise DataError(f"{where}: {exc}") from None
    if layout.num_joints != num_joints:
        raise DataError(f"{where}: layout {layout.name} has {layout.num_joints} joints, "
                        f"the data has {num_joints}")
    return layout


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{where}: expected integer labels (N,), got {labels.dtype} "
                        f"{labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{where}: labels must lie in 0..{num_classes - 1}, got "
                        f"{int(labels.min())}..{int(labels.max())}")
    return labels.astype(np.int64)


def _open_pyskl(path: Path, layout: LayoutArg) -> Dataset:
    try:
        data = read_pyskl(path)
    except SkeletonFormatError as exc:
        raise DataError(str(exc)) from None
    joint_counts = {a.keypoint.shape[2] for a in data.annotations.values()}
    if len(joint_counts) > 1:
        raise DataError(f"{path}: sequences have different joint counts {sorted(joint_counts)}")
    num_classes = 1 + max(a.label for a in data.annotations.values())
    classes = class_names(path.parent / "label_map.txt", num_classes, path)
    splits = {}
    for name, dirs in data.splits.items():
        anns = [data.annotations[d] for d in dirs]
        labels = np.array([a.label for a in anns], dtype=np.int64)
        splits[name] = ListSplit([a.keypoint for a in anns], labels, [a.frame_dir for a in anns])
    coords = next(iter(data.annotations.values())).keypoint.shape[-1]  # one kind per file
    return Dataset(path, splits, classes, _layout(layout, data.layout, joint_counts.pop(), path),
                   coords)


def _open_packed(path: Path, layout: LayoutArg) -> Dataset:
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        classes = [str(c) for c in meta["classes"]]
        available = dict(meta["splits"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{meta_path}: expected a packed benchmark meta.json ({exc})") from None
    splits: dict[str, LabelledSplit] = {}
    for name in available:
        try:
            frames, offsets, labels = (
                np.load(path / f"{name}_{part}.npy", mmap_mode="r", allow_pickle=False)
                for part in ("x", "offsets", "label"))
            names_file = path / f"{name}_names.npy"
            names = (np.load(names_file, allow_pickle=False).astype(str).tolist()
                     if names_file.is_file() else [f"{name}_{i}" for i in range(len(labels))])
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read split {name!r} ({exc})") from None
        offsets = np.asarray(offsets)
        if (frames.ndim != 4 or frames.shape[3] != 3 or offsets.shape != (len(labels) + 1,)
                or len(names) != len(labels) or (len(offsets) and offsets[-1] != len(frames))
                or np.any(np.diff(offsets) < 0)):
            raise DataError(f"{path}: split {name!r} arrays are inconsistent: x {frames.shape}, "
                            f"offsets {offsets.shape}, labels {labels.shape}")
        labels = _check_labels(labels, len(classes), f"{path}: split {name!r}")
        splits[name] = PackedSplit(frames, offsets, labels, names)
    if not splits:
        raise DataError(f"{meta_path}: names no splits")
    num_joints = next(iter(splits.values())).frames.shape[2]
    try:  # a name read from a data file: built-in names only, never a path
        declared = get_layout(meta["layout"]) if meta.get("layout") else None
    except LayoutError as exc:
        raise DataError(f"{meta_path}: {exc}") from None
    return Dataset(path, splits, classes, _layout(layout, declared, num_joints, path))


def _open_npz(path: Path, layout: LayoutArg) -> Dataset:
    """CTR-GCN's ``x_train, y_train, x_test, y_test`` (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: expected a .npz archive: {exc}") from None
    with archive:
        members = {Path(n).stem: n for n in archive.namelist() if n.endswith(".npy")}
        need = [f"{a}_{s}" for s in ("train", "test") for a in ("x", "y")]
        missing = [key for key in need if key not in members]
        if missing:
            raise DataError(f"{path}: expected arrays {need}, the archive lacks {missing} "
                            f"(it has {sorted(members)})")
        arrays = {key: _npz_member(path, archive, members[key]) for key in need}
    x_train = arrays["x_train"]
    if x_train.ndim != 3:
        raise DataError(f"{path}: x_train: expected (N, T, D) features, got {x_train.shape}")
    d = x_train.shape[2]
    found = _npz_layout(layout, d, path)
    bodies = d // (found.num_joints * 3)
    labels, widths = {}, set()
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], np.asarray(arrays[f"y_{split}"])
        if x.ndim != 3 or x.shape[2] != d:
            raise DataError(f"{path}: x_{split}: expected (N, T, {d}), got {x.shape}")
        if y.ndim == 2:  # one-hot: its width is the class count
            widths.add(y.shape[1])
            y = y.argmax(axis=1)
        if y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{split}: expected {x.shape[0]} labels (one-hot or int), "
                            f"got {arrays[f'y_{split}'].shape}")
        labels[split] = y
    if len(widths) > 1:
        raise DataError(f"{path}: one-hot labels of different widths {sorted(widths)}")
    num_classes = widths.pop() if widths else 1 + max(int(y.max()) for y in labels.values()
                                                      if y.size)
    label_map = path.parent / "label_map.txt"
    if not label_map.is_file() and num_classes in (60, 120) and found.name == "ntu25":
        classes = list(NTU120_CLASSES[:num_classes])
    else:
        classes = class_names(label_map, num_classes, path)
    splits: dict[str, LabelledSplit] = {}
    for split in ("train", "test"):
        y = _check_labels(labels[split], len(classes), f"{path}: y_{split}")
        splits[split] = FeatureSplit(arrays[f"x_{split}"], y, bodies,
                                     [f"{split}_{i}" for i in range(len(y))])
    return Dataset(path, splits, classes, found)


def _npz_layout(name: LayoutArg, d: int, path: Path) -> JointLayout:
    """The layout whose joints times some body count give ``d`` features per frame."""
    try:
        candidates = [resolve_layout(name)] if name else list(LAYOUTS.values())
    except LayoutError as exc:
        raise DataError(f"{path}: {exc}") from None
    fits = [lay for lay in candidates if d % (lay.num_joints * 3) == 0]
    if len(fits) != 1:
        known = ", ".join(f"{lay.name} ({lay.num_joints} joints)" for lay in candidates)
        raise DataError(f"{path}: {d} features per frame fit {len(fits)} layouts of {known}; "
                        "pass --layout")
    return fits[0]


def _npz_member(path: Path, archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """One ``.npy`` of an archive: memory-mapped when stored uncompressed, else read."""
    info = archive.getinfo(member)
    try:
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = read_header(fh)
            header_size = fh.tell()
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: {member}: not a .npy array: {exc}") from None
    if dtype.hasobject:
        raise DataError(f"{path}: {member}: object arrays need pickle and are refused")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if header_size + expected != info.file_size:
        raise DataError(f"{path}: {member}: header claims {shape} {dtype} ({expected} bytes), "
                        f"the member holds {info.file_size - header_size}")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as raw:  # the member's data starts after its local header
            raw.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(raw.read(4), dtype="<u2")
        offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_size
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape),
                         order="F" if fortran else "C")
    return _read_compressed(path, archive, info, header_size, expected, dtype).reshape(
        shape, order="F" if fortran else "C")


def _read_compressed(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                     header_size: int, expected: int, dtype: np.dtype) -> np.ndarray:
    """The ``expected`` data bytes of a compressed member as a flat array, refused before
    reading when the archive claims more than :data:`MAX_NPZ_MEMBER_BYTES` or an expansion
    beyond :data:`MAX_COMPRESSION_RATIO` (a zip bomb), then read in bounded chunks: the claim
    is checked against what really comes out, and a member that ends early is refused."""
    where = f"{path}: {info.filename}"
    if expected > MAX_NPZ_MEMBER_BYTES:
        raise DataError(f"{where}: expands to {expected:,} bytes, more than the limit of "
                        f"{MAX_NPZ_MEMBER_BYTES:,} for a compressed member (store the archive "
                        "uncompressed, np.savez, to have it memory-mapped)")
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > MAX_COMPRESSION_RATIO:
        raise DataError(f"{where}: {info.compress_size:,} compressed bytes claim to expand "
                        f"{ratio:,.0f}-fold to {info.file_size:,}, beyond the "
                        f"{MAX_COMPRESSION_RATIO}:1 of any real data: refusing a zip bomb")
    out = np.empty(expected // dtype.itemsize, dtype=dtype)
    view = memoryview(out).cast("B")
    done = 0
    try:
        with archive.open(info) as fh:
            fh.read(header_size)
            while done < expected:
                got = fh.readinto(view[done:done + NPZ_READ_CHUNK_BYTES])
                if not got:
                    break
                done += got
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{where}: cannot decompress it ({exc})") from None
    if done != expected:
        raise DataError(f"{where}: the header claims {expected:,} bytes of data, the member "
                        f"holds {done:,}")
    return out
