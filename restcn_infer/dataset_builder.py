"""A data set of one's own, from recordings and a labels table, as a PYSKL pickle:
:func:`build_dataset` (``restcn-build-dataset FOLDER --labels labels.csv --out D.pkl``).

Every row of the table (:mod:`restcn_infer.labels_csv`) names one recording under ``FOLDER``,
read by :func:`restcn_infer.readers.read_keypoints` (any format it reads, OpenPose folders
included), then

1. joints scored below ``min_confidence`` are zeroed (absent);
2. joints are mapped to the output layout by name, with the derived joints of
   :func:`restcn_infer.layouts.layout_mapping` (default layout: the first recording's);
3. at most ``bodies`` bodies are kept (tracks seen in most frames first).

Written (atomically) in the layout ``restcn_infer.datasets.open_dataset`` and
``restcn-train --data`` read, plus the layout itself (PYSKL tools ignore the extra key)::

    D.pkl  {"split": {name: [frame_dir, ...]},
            "annotations": [{"frame_dir", "label", "total_frames",
                             "keypoint": float32 (M, T, V, C),        C = 3 or 2 (x, y)
                             "keypoint_score": float32 (M, T, V)}],   where the source scores
            "layout": JointLayout.to_dict(),
            "min_confidence": float}   the threshold of step 1, which readers apply again
    label_map.txt (beside D.pkl): class names, line i = label i

2-D recordings give PYSKL's 2-D layout (``keypoint`` x, y with ``keypoint_score``); all
recordings of one data set must have the same coordinates. A recording that cannot be read or
mapped is left out and listed in the report with its line; nothing readable at all is an error.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restcn_infer.atomic import atomic_write, atomic_write_text
from restcn_infer.errors import DataError, LayoutError, SkeletonFormatError
from restcn_infer.labels_csv import LabelRow, assign_splits, read_labels
from restcn_infer.layouts import JointLayout, layout_for_joints, layout_mapping, resolve_layout
from restcn_infer.limits import COORDS, check_magnitude
from restcn_infer.output_paths import check_output_file
from restcn_infer.readers import FORMATS, read_keypoints
from restcn_infer.readers.arrays import check_sequence
from restcn_infer.readers.keypoints import DEFAULT_MIN_CONFIDENCE

#: Bodies kept per recording unless told otherwise (NTU RGB+D's two).
DEFAULT_BODIES = 2
#: Numbers of a whole data set held in memory before it is written (4 GiB of float32).
MAX_DATASET_ELEMENTS = 1 << 30
LABEL_MAP = "label_map.txt"

#: ``progress(done, total)`` after each recording.
Progress = Callable[[int, int], None]


@dataclass
class DatasetReport:
    """What :func:`build_dataset` wrote.

    Attributes:
        splits: split name -> sequences written.
        coords: coordinates per joint (3 or 2).
        skipped: ``{"line", "file", "reason"}`` of each recording left out.
    """

    out: Path
    label_map: Path
    classes: list[str]
    layout: JointLayout
    coords: int
    bodies: int
    splits: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, object]] = field(default_factory=list)


def build_dataset(folder: str | os.PathLike[str], labels: str | os.PathLike[str],
                  out: str | os.PathLike[str], *, layout: str | JointLayout | None = None,
                  source_layout: str | JointLayout | None = None, format: str = "auto",
                  split_by: str | None = None, val: Sequence[str] = (),
                  classes: Sequence[str] | None = None, bodies: int = DEFAULT_BODIES,
                  min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                  progress: Progress | None = None) -> DatasetReport:
    """Build ``out`` (a ``.pkl``) and its ``label_map.txt`` (see the module docstring).

    Args:
        layout: the output layout (built-in name, layout ``.json`` or a layout); default the
            first recording's.
        source_layout: the recordings' layout where a file does not name one (a plain array of
            a joint count several layouts share, an MMPose model of another data set).
        format: the reader format of every recording (:data:`restcn_infer.readers.FORMATS`).
        split_by, val: a split rule (:func:`restcn_infer.labels_csv.assign_splits`).
        classes: class names in label order; default the labels in order of first appearance.

    Raises:
        DataError: a bad argument, table or class list, a label_map.txt beside ``out`` that
            names other classes, mixed coordinates, or no readable recording.
        OutputPathError: ``out`` cannot be written (checked before any recording is read).
    """
    folder, out = Path(folder), Path(out)
    _check_arguments(folder, out, format, bodies, min_confidence)
    try:
        target = resolve_layout(layout) if layout is not None else None
        source = resolve_layout(source_layout) if source_layout is not None else None
    except LayoutError as exc:
        raise DataError(str(exc)) from None
    rows = read_labels(labels)
    splits = assign_splits(rows, split_by=split_by, val=val, where=str(labels))
    names = _class_names(rows, classes, labels)
    label_map = out.parent / LABEL_MAP
    _check_label_map(label_map, names)

    annotations, skipped = [], []
    coords = None
    total = 0
    label_of = {name: i for i, name in enumerate(names)}
    ordered = [row for split_rows in splits.values() for row in split_rows]
    for done, row in enumerate(ordered, 1):
        try:
            seq, scores, found = _recording(folder / row.file, format, source, min_confidence,
                                            bodies)
            if target is None:
                target = found
            if found.name != target.name:
                mapping = layout_mapping(found, target)
                seq = mapping.apply(seq)
                scores = None if scores is None else mapping.apply_scores(scores)
        except (SkeletonFormatError, LayoutError) as exc:
            skipped.append({"line": row.line, "file": row.file, "reason": str(exc)})
        else:
            if coords is None:
                coords = seq.shape[-1]
            if seq.shape[-1] != coords:
                raise DataError(f"{labels}:{row.line}: {row.file} has {seq.shape[-1]}-D "
                                f"keypoints, the recordings before it {coords}-D; a data set "
                                "holds one kind")
            total += seq.size
            if total > MAX_DATASET_ELEMENTS:
                raise DataError(f"{labels}:{row.line}: the data set passes "
                                f"{MAX_DATASET_ELEMENTS:,} numbers; split the table")
            annotations.append(_annotation(row, label_of[row.label], seq, scores))
        if progress is not None:
            progress(done, len(ordered))
    if not annotations:
        first = skipped[0] if skipped else {"line": "-", "file": "-", "reason": "no rows"}
        raise DataError(f"{labels}: no recording could be read; line {first['line']} "
                        f"({first['file']}): {first['reason']}")
    kept = {a["frame_dir"] for a in annotations}
    split_lists = {name: [r.name for r in split_rows if r.name in kept]
                   for name, split_rows in splits.items()}
    doc = {"split": split_lists, "annotations": annotations, "layout": target.to_dict(),
           "min_confidence": float(min_confidence)}
    atomic_write(out, lambda fh: pickle.dump(doc, fh, protocol=4))
    atomic_write_text(label_map, "".join(f"{name}\n" for name in names))
    bodies_found = max(a["keypoint"].shape[0] for a in annotations)
    return DatasetReport(out=out, label_map=label_map, classes=names, layout=target,
                         coords=int(coords), bodies=bodies_found,
                         splits={k: len(v) for k, v in split_lists.items()}, skipped=skipped)


def _check_arguments(folder: Path, out: Path, format: str, bodies: int,
                     min_confidence: float) -> None:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (the recordings' folder)")
    check_output_file(out, what="--out", suffixes=(".pkl",))  # before any recording is read
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; expected one of {FORMATS}")
    if bodies < 1:
        raise DataError(f"bodies must be at least 1, got {bodies}")
    if not 0.0 <= min_confidence <= 1.0:
        raise DataError(f"min_confidence must lie in [0, 1], got {min_confidence}")


def _class_names(rows: Sequence[LabelRow], classes: Sequence[str] | None,
                 labels: object) -> list[str]:
    """``classes`` checked against the labels, or the labels in order of first appearance."""
    seen = list(dict.fromkeys(row.label for row in rows))
    if classes is None:
        names = seen
    else:
        names = [str(c).strip() for c in classes]
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated or not all(names):
            raise DataError(f"the class list repeats {repeated} or has an empty name")
        unknown = [row for row in rows if row.label not in set(names)]
        if unknown:
            raise DataError(f"{labels}:{unknown[0].line}: label {unknown[0].label!r} is not in "
                            f"the class list ({len(names)} classes)")
    if len(names) < 2:
        raise DataError(f"{labels}: a classifier needs at least 2 classes, the labels name "
                        f"{names}")
    return names


def _check_label_map(path: Path, names: list[str]) -> None:
    """A label_map.txt already beside the output must name exactly these classes: it is the
    class list of every pickle in that folder."""
    if not path.is_file():
        return
    try:
        existing = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None
    if existing != names:
        raise DataError(f"{path} already names other classes ({len(existing)}: "
                        f"{', '.join(existing[:5])}, ...); it is the class list of every data "
                        "set in that folder: write this one to another folder, or delete it")


def _recording(path: Path, format: str, source: JointLayout | None, min_confidence: float,
               bodies: int) -> tuple[np.ndarray, np.ndarray | None, JointLayout]:
    """One recording masked and cut to ``bodies``: ``(M, T, V, C)``, ``(M, T, V)`` or None,
    and its layout."""
    kp = read_keypoints(path, format, layout=source).masked(min_confidence)
    found = kp.layout or layout_for_joints(kp.coords.shape[2])
    seq = np.ascontiguousarray(kp.coords[:bodies])
    # What the runtime would refuse must not become training data: its own checks.
    seq = check_sequence(seq, path, COORDS)  # finite, within the size limits
    check_magnitude(seq, path)
    if not np.any(seq != 0):
        raise SkeletonFormatError(path, "no frame has a body (every point is absent)")
    scores = None if kp.confidence is None else np.ascontiguousarray(kp.confidence[:bodies])
    return seq, scores, found


def _annotation(row: LabelRow, label: int, seq: np.ndarray, scores: np.ndarray | None) -> dict:
    ann = {"frame_dir": row.name, "label": label, "total_frames": int(seq.shape[1]),
           "keypoint": seq.astype(np.float32, copy=False)}
    if scores is not None:
        ann["keypoint_score"] = scores.astype(np.float32, copy=False)
    return ann
