"""The mmaction2/PYSKL annotation pickle, read through a restricted unpickler.

Layout (the format big toolkits publish NTU/Kinetics skeletons in)::

    {"split": {split_name: [frame_dir, ...]},
     "annotations": [{"frame_dir": str, "label": int, "total_frames": int,
                      "keypoint": float32 (M, T, V, 3) or (M, T, V, 2),
                      "keypoint_score": float32 (M, T, V), optional, ...}],
     "layout": {...}}   optional: the joint layout (JointLayout.to_dict), as
                        restcn-build-dataset writes it; PYSKL's own tools ignore the key

2-D files (PYSKL's ``*_2d.pkl``, restcn-build-dataset from image keypoints) hold x, y with the
confidence apart in ``keypoint_score``; joints scored below the file's top-level
``"min_confidence"`` (restcn-build-dataset's threshold), else
:data:`~restcn_infer.readers.keypoints.DEFAULT_MIN_CONFIDENCE`, are zeroed (absent) when read,
as :func:`~restcn_infer.readers.load_sequence` does for pose-estimator files. All annotations
of one file have the same number of coordinates.

A pickle can run arbitrary code when loaded, so :class:`RestrictedUnpickler` admits only the
globals needed to rebuild numpy arrays and dtypes (numpy 1 and numpy 2 module paths); anything
else is refused with :class:`SkeletonFormatError`.

A pickle can also claim memory it does not hold: ``_reconstruct(ndarray, (10, 1000, 1000, 3),
...)`` alone makes a 120-million-element *uninitialised* array from 139 bytes. The numpy
constructors are therefore admitted only through checking wrappers: ``_reconstruct`` may build
only the empty placeholder numpy's own pickles use (its data then comes with the state and
must match the shape, which numpy checks), scalars and buffers only of plain dtypes. After
loading, every array in the result is checked once more (no object arrays, at most
:data:`~restcn_infer.limits.MAX_PICKLE_ARRAY_ELEMENTS` elements, or the caller's limit), and a
file holding one sequence may be at most
:data:`~restcn_infer.limits.MAX_SEQUENCE_FILE_BYTES` long.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.errors import LayoutError, SkeletonFormatError
from restcn_infer.layouts import JointLayout
from restcn_infer.limits import (
    COORDS,
    MAX_PICKLE_ARRAY_ELEMENTS,
    MAX_SEQUENCE_ELEMENTS,
    MAX_SEQUENCE_FILE_BYTES,
    read_file_limited,
)
from restcn_infer.readers.arrays import check_sequence
from restcn_infer.readers.keypoints import DEFAULT_MIN_CONFIDENCE

#: (module, name) pairs a skeleton pickle may reference. numpy 2 moved ``numpy.core`` to
#: ``numpy._core``; both spellings appear in published files.
_ALLOWED_GLOBALS = {
    (core, name)
    for core in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


#: Largest dtype item a skeleton pickle may use (a structured record of a few numbers).
_MAX_ITEMSIZE = 256


def _plain_dtype(dtype: object) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.itemsize > _MAX_ITEMSIZE:
        raise pickle.UnpicklingError(f"refusing dtype {dtype!r}: only plain numeric dtypes are "
                                     "allowed in a skeleton pickle")
    return dtype


def _checked_reconstruct(real: Callable) -> Callable:
    """numpy's ``_reconstruct``, allowed only to make the empty placeholder of its own pickles."""
    def reconstruct(subtype, shape, dtype_code):
        if subtype is not np.ndarray or shape != (0,):  # numpy's own: (ndarray, (0,), b"b")
            raise pickle.UnpicklingError(
                f"refusing _reconstruct({getattr(subtype, '__name__', subtype)}, {shape!r}): "
                "an array whose memory the file does not hold")
        return real(subtype, shape, dtype_code)
    return reconstruct


def _checked_scalar(real: Callable) -> Callable:
    def scalar(dtype, *data):
        _plain_dtype(dtype)
        return real(dtype, *data)
    return scalar


def _checked_frombuffer(real: Callable) -> Callable:
    def frombuffer(buf, dtype, shape, order):
        _plain_dtype(dtype)
        return real(buf, dtype, shape, order)
    return frombuffer


_WRAPPERS = {"_reconstruct": _checked_reconstruct, "scalar": _checked_scalar,
             "_frombuffer": _checked_frombuffer}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds plain containers and numpy arrays, and nothing else, never
    allocating an array the file does not hold (see the module docstring)."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            found = super().find_class(module, name)
            return _WRAPPERS[name](found) if name in _WRAPPERS else found
        if module == "numpy" and name.endswith("DType"):  # numpy 2 dtype classes, e.g. Float32DType
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only plain containers and numpy arrays "
            "are allowed in a skeleton pickle"
        )


def restricted_load(path: Path, *, max_bytes: int | None = None,
                    array_limit: int = MAX_PICKLE_ARRAY_ELEMENTS) -> object:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; any failure: SkeletonFormatError.

    Args:
        max_bytes: refuse a longer file before reading it (``None``: no limit, a data set).
        array_limit: the most elements any array of the result may have.
    """
    if max_bytes is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SkeletonFormatError(path, f"cannot read file: {exc.strerror or exc}") from None
    else:
        data = read_file_limited(path, max_bytes, "a one-sequence pickle (read a data set "
                                                  "with read_pyskl)")
    try:
        doc = RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:  # not a pickle, or one that names a refused global
        raise SkeletonFormatError(path, f"expected a skeleton annotation pickle: {exc}"
                                  ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OverflowError, RecursionError) as exc:
        raise SkeletonFormatError(path, f"expected a skeleton annotation pickle: {exc!r}"[:300]
                                  ) from None
    _check_arrays(doc, path, array_limit)
    return doc


def _check_arrays(doc: object, path: Path, limit: int) -> None:
    """Every array reachable from ``doc`` is plain and within ``limit`` elements. Iterative and
    visiting each object once, so a pickle of shared references cannot make it slow."""
    seen: set[int] = set()
    stack = [doc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise SkeletonFormatError(path, "refusing an object array in a skeleton pickle")
            if item.size > limit:
                raise SkeletonFormatError(path, f"an array of shape {item.shape} holds "
                                                f"{item.size:,} numbers, more than the limit of "
                                                f"{limit:,}")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)


@dataclass(frozen=True)
class Annotation:
    """One labelled sequence of a PYSKL file: ``keypoint`` is float32 (M, T, V, C), C = 3 or 2,
    joints below the confidence threshold zeroed."""

    frame_dir: str
    label: int
    keypoint: np.ndarray


@dataclass(frozen=True)
class PysklDataset:
    """A whole PYSKL file: named splits of ``frame_dir`` names and their annotations, and the
    joint layout the file declares (its ``"layout"``; None: the file names none)."""

    splits: dict[str, list[str]]
    annotations: dict[str, Annotation]
    layout: JointLayout | None = None

    def split(self, name: str) -> list[Annotation]:
        """The annotations of split ``name`` in file order; ValueError names the known splits."""
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; this file has {sorted(self.splits)}")
        return [self.annotations[d] for d in self.splits[name]]


def _annotation(raw: object, path: Path, index: int,
                min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Annotation:
    where = f"annotation {index}"
    if not isinstance(raw, dict):
        raise SkeletonFormatError(path, f"{where}: expected a dict, got {type(raw).__name__}")
    for key in ("frame_dir", "label", "keypoint"):
        if key not in raw:
            raise SkeletonFormatError(path, f"{where}: expected key {key!r}")
    keypoint = raw["keypoint"]
    if not isinstance(keypoint, np.ndarray) or keypoint.ndim != 4 or keypoint.shape[-1] < 2:
        raise SkeletonFormatError(
            path, f"{where} ({raw['frame_dir']}): expected keypoint array (M, T, V, 3) or "
            f"(M, T, V, 2), got {getattr(keypoint, 'shape', type(keypoint).__name__)}"
        )
    label = raw["label"]
    if isinstance(label, np.integer):
        label = int(label)
    if not isinstance(label, int) or label < 0:
        raise SkeletonFormatError(path, f"{where}: expected a non-negative int label, "
                                        f"got {label!r}")
    source = f"{path} [{where} {raw['frame_dir']}]"
    seq = check_sequence(keypoint[..., :3], source, COORDS)
    if "keypoint_score" in raw:
        seq = _masked(seq, raw["keypoint_score"], min_confidence, source)
    return Annotation(frame_dir=str(raw["frame_dir"]), label=label, keypoint=seq)


def _masked(seq: np.ndarray, score: object, threshold: float, source: str) -> np.ndarray:
    """``seq (M, T, V, C)`` with the joints whose ``keypoint_score (M, T, V)`` is below
    ``threshold`` zeroed."""
    if not isinstance(score, np.ndarray) or score.shape != seq.shape[:-1]:
        raise SkeletonFormatError(source, f"expected keypoint_score of shape {seq.shape[:-1]}, "
                                          f"got {getattr(score, 'shape', type(score).__name__)}")
    low = ~(np.asarray(score, dtype=np.float32) >= threshold)  # NaN scores: low
    return np.where(low[..., None], np.float32(0), seq) if low.any() else seq


def read_pyskl(path: str | Path) -> PysklDataset:
    """Read a whole PYSKL/mmaction2 annotation file (splits + annotations), validated."""
    path = Path(path)
    doc = restricted_load(path)
    if not isinstance(doc, dict) or "annotations" not in doc:
        raise SkeletonFormatError(path, 'expected a dict with "split" and "annotations"')
    raw_annotations = doc["annotations"]
    if not isinstance(raw_annotations, list) or not raw_annotations:
        raise SkeletonFormatError(path, "expected a non-empty list of annotations")
    threshold = _min_confidence(doc, path)
    annotations = {}
    for i, raw in enumerate(raw_annotations):
        ann = _annotation(raw, path, i, threshold)
        first = next(iter(annotations.values()), ann)
        if ann.keypoint.shape[-1] != first.keypoint.shape[-1]:
            raise SkeletonFormatError(path, f"annotation {i} ({ann.frame_dir}) has "
                                            f"{ann.keypoint.shape[-1]} coordinates per joint, "
                                            f"{first.frame_dir} {first.keypoint.shape[-1]}; a "
                                            "data set holds one kind")
        annotations[ann.frame_dir] = ann
    splits_raw = doc.get("split", {})
    if not isinstance(splits_raw, dict):
        raise SkeletonFormatError(path, "expected 'split' to map split names to frame_dir lists")
    splits = {}
    for name, dirs in splits_raw.items():
        missing = [d for d in dirs if d not in annotations]
        if missing:
            raise SkeletonFormatError(
                path, f"split {name!r} names {len(missing)} sequences with no annotation, "
                f"e.g. {missing[0]!r}"
            )
        splits[str(name)] = [str(d) for d in dirs]
    layout = _declared_layout(doc, annotations.values(), path)
    return PysklDataset(splits=splits, annotations=annotations, layout=layout)


def _min_confidence(doc: dict, path: Path) -> float:
    """The file's ``"min_confidence"`` (checked), else the default threshold."""
    value = doc.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SkeletonFormatError(path, f"field 'min_confidence' must be a number in [0, 1], "
                                        f"got {value!r}")
    return float(value)


def _declared_layout(doc: dict, annotations: Iterable[Annotation],
                     path: Path) -> JointLayout | None:
    """The file's ``"layout"`` (checked, and against the annotations' joint count), or None."""
    if "layout" not in doc:
        return None
    try:
        layout = JointLayout.from_dict(doc["layout"], "field 'layout'")
    except LayoutError as exc:
        raise SkeletonFormatError(path, str(exc)) from None
    joints = {a.keypoint.shape[2] for a in annotations}
    if joints != {layout.num_joints}:
        raise SkeletonFormatError(path, f"field 'layout' declares {layout.name} "
                                        f"({layout.num_joints} joints), the keypoints have "
                                        f"{sorted(joints)}")
    return layout


def read_pyskl_sequence(path: Path) -> np.ndarray:
    """One sequence from a pickle holding a single annotation dict (or a file with exactly one)."""
    doc = restricted_load(path, max_bytes=MAX_SEQUENCE_FILE_BYTES,
                          array_limit=MAX_SEQUENCE_ELEMENTS)
    if isinstance(doc, dict) and "annotations" in doc:
        raws = doc["annotations"]
        if not isinstance(raws, list) or len(raws) != 1:
            count = len(raws) if isinstance(raws, list) else "no"
            raise SkeletonFormatError(
                path, f"expected one annotation, got a dataset file with {count} annotations; "
                "pick one with restcn_infer.readers.pyskl.read_pyskl"
            )
        return _annotation(raws[0], path, 0, _min_confidence(doc, path)).keypoint
    return _annotation(doc, path, 0).keypoint
