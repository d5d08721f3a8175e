"""The labels table of a data set of one's own (``restcn-build-dataset --labels labels.csv``)
and how it assigns splits.

``labels.csv``: UTF-8 (a byte-order mark is fine), comma separated, one header row, then one
row per recording::

    file,label,subject,view
    clips/s01_wave_v1.json,wave,1,1
    openpose/s02_clap_v3,clap,2,3

- ``file`` (required): the recording, relative to the data folder: any file restcn reads, or an
  OpenPose output folder.
- ``label`` (required): the class name.
- ``split`` (optional): the recording's split (``train``, ``val``, ``test``, ...).
- ``name`` (optional): the sample name (PYSKL ``frame_dir``); default ``file`` without suffix.
- any other column (``subject``, ``view``, ...) can drive a split rule.

Splits (:func:`assign_splits`): the ``split`` column; or a rule ``--split-by COLUMN --val A,B``
(rows whose COLUMN is A or B form ``val``, the others ``train``); or, with neither, one split
``all`` (restcn-train can carve validation from it: ``--train-split all --holdout-fraction``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from restcn_infer.errors import DataError, SkeletonFormatError
from restcn_infer.limits import read_file_limited

#: Bytes of a labels table, and its rows.
MAX_LABELS_BYTES = 64 << 20
MAX_ROWS = 1_000_000
REQUIRED = ("file", "label")
#: The split of every row when the table has no split column and no rule is given.
ALL_SPLIT = "all"


@dataclass(frozen=True)
class LabelRow:
    """One row: ``line`` (1-based, for messages), the recording ``file`` (relative to the
    folder), its class ``label``, sample ``name``, ``split`` (None: by rule), all ``fields``."""

    line: int
    file: str
    label: str
    name: str
    split: str | None
    fields: dict[str, str]


def read_labels(path: str | os.PathLike[str]) -> list[LabelRow]:
    """The rows of a labels table, each checked (module docstring).

    Raises:
        DataError: naming ``path`` and the line: unreadable, no header, a missing column or
            value, a row with more fields than the header, a ``file`` outside the folder, or a
            name used twice.
    """
    path = Path(path)
    try:
        text = read_file_limited(path, MAX_LABELS_BYTES, "a labels table").decode("utf-8-sig")
    except SkeletonFormatError as exc:
        raise DataError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: expected UTF-8 text ({exc.reason} at byte {exc.start})"
                        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"{path}: empty; expected a header row with {', '.join(REQUIRED)}"
                        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}:1: {exc}") from None
    repeated = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in REQUIRED if c not in header]
    if repeated or missing:
        why = f"repeats the columns {repeated}" if repeated else f"lacks the columns {missing}"
        raise DataError(f"{path}:1: the header {header} {why}")
    rows, names = [], {}
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank line
            if len(rows) >= MAX_ROWS:
                raise DataError(f"{path}:{line}: more than {MAX_ROWS:,} rows")
            row = _row(values, header, f"{path}:{line}", line)
            if row.name in names:
                raise DataError(f"{path}:{line}: sample name {row.name!r} is used on line "
                                f"{names[row.name]} too (give a 'name' column)")
            names[row.name] = line
            rows.append(row)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    if not rows:
        raise DataError(f"{path}: no rows after the header")
    return rows


def _row(values: list[str], header: list[str], where: str, line: int) -> LabelRow:
    if len(values) != len(header):
        raise DataError(f"{where}: {len(values)} fields, the header has {len(header)}")
    fields = {h: v.strip() for h, v in zip(header, values)}
    for column in REQUIRED + tuple(c for c in ("split", "name") if c in fields):
        if not fields[column]:
            raise DataError(f"{where}: empty {column!r}")
    file = fields["file"].replace("\\", "/")
    parts = PurePosixPath(file).parts
    if PurePosixPath(file).is_absolute() or ".." in parts or not parts:
        raise DataError(f"{where}: file {fields['file']!r} must be a path inside the data "
                        "folder (relative, no '..')")
    name = fields.get("name") or str(PurePosixPath(file).with_suffix(""))
    return LabelRow(line=line, file=file, label=fields["label"], name=name,
                    split=fields.get("split"), fields=fields)


def assign_splits(rows: Sequence[LabelRow], *, split_by: str | None = None,
                  val: Sequence[str] = (), where: str = "labels") -> dict[str, list[LabelRow]]:
    """Split name -> its rows, in table order (module docstring).

    Raises:
        DataError: a rule with a split column too, a rule on an unknown column or with values
            no row has, or a rule that leaves ``train`` or ``val`` empty.
    """
    has_column = rows[0].split is not None
    if split_by is None:
        if val:
            raise DataError("--val needs --split-by COLUMN")
        splits: dict[str, list[LabelRow]] = {}
        for row in rows:
            splits.setdefault(row.split if has_column else ALL_SPLIT, []).append(row)
        return splits
    if has_column:
        raise DataError(f"{where} has a 'split' column; give either it or --split-by, not both")
    if split_by not in rows[0].fields:
        raise DataError(f"{where} has no column {split_by!r}; its columns: "
                        f"{sorted(rows[0].fields)}")
    if not val:
        raise DataError(f"--split-by {split_by} needs --val: the {split_by} values held out")
    present = {row.fields[split_by] for row in rows}
    unknown = sorted(set(val) - present)
    if unknown:
        raise DataError(f"no row has {split_by} {unknown}; its values: {sorted(present)[:20]}")
    held = set(val)
    splits = {"train": [r for r in rows if r.fields[split_by] not in held],
              "val": [r for r in rows if r.fields[split_by] in held]}
    if not splits["train"]:
        raise DataError(f"--split-by {split_by} --val {','.join(val)} holds out every row; "
                        "nothing is left to train on")
    return splits
