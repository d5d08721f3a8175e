"""Resource limits of the runtime: every size that input can claim is checked against these
before anything is allocated from it.

A file or a stream line says how big it is (a ``.npy`` header's shape, a pickle's array, an NTU
``frameCount``, a JSON document's length and nesting); a hostile or broken one can claim
gigabytes in a few bytes. Readers compare each claim with a limit here first and refuse with a
:class:`~restcn_infer.errors.SkeletonFormatError` that names the limit, so a 139-byte pickle
never becomes a 1.2 GB array and one bad file never ends a batch with ``MemoryError``.

The limits are generous for real recordings (an hour of one body at 30 fps fits) and small
enough that the worst accepted input costs a few hundred MB at most. One home: readers, the
stream protocol and the JSON loader import them from here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from restcn_infer.errors import SkeletonFormatError

#: Frames of one sequence (an hour at 30 fps is 108,000).
MAX_FRAMES = 1 << 17
#: Bodies of one sequence as read from a file (more than any sensor tracks at once).
MAX_BODIES = 64
#: Bodies a model's input may have, and so bodies one stream frame may carry (a model reads
#: its first ones; a frame with more is malformed).
MAX_MODEL_BODIES = 16
#: Joints of one body (COCO-WholeBody has 133, MediaPipe Holistic 543).
MAX_JOINTS = 1024
#: Coordinates per joint a sequence may have: 2 (x, y: image keypoints) or 3 (x, y, z).
COORDS = (2, 3)
#: Numbers of one sequence, all bodies x frames x joints x coordinates: 64 MiB as float32.
MAX_SEQUENCE_ELEMENTS = 1 << 24
#: Bytes of a ``.pkl`` holding one sequence (a float64 sequence at the element limit is 128 MiB).
MAX_SEQUENCE_FILE_BYTES = 160 << 20
#: Bytes of an NTU RGB+D ``.skeleton`` file: ~6,000 frames of one body, 8x the largest file of
#: the data set; the whole-array parser's peak memory is 11-18x the file (denser numbers: more).
MAX_SKELETON_FILE_BYTES = 16 << 20
#: Bytes of a ``.json`` sequence (~17,000 frames of one 20-joint body): Python's objects for a
#: JSON list of numbers take up to ~20x the text. Longer recordings belong in ``.npy``.
MAX_JSON_FILE_BYTES = 8 << 20
#: Nesting depth of any JSON document the runtime reads (a sequence needs 4, metadata ~6).
MAX_JSON_DEPTH = 32
#: Digits of a JSON integer (Python refuses more than 4,300; a coordinate needs far fewer).
MAX_JSON_INT_DIGITS = 64
#: Largest coordinate magnitude in any unit: beyond this no skeleton sensor measures, and
#: float32 arithmetic inside the network would overflow to inf/NaN.
MAX_ABS_COORDINATE = 1e6
#: Elements of one array inside a PYSKL data set pickle (a whole data set may be large; one
#: array of it is one sequence or one label list).
MAX_PICKLE_ARRAY_ELEMENTS = 1 << 26
#: Bytes one compressed ``.npz`` member may expand to (the largest CTR-GCN array, NTU120 x-sub
#: ``x_train``, is 11.3 GB; stored members are memory-mapped instead and not bounded by this).
MAX_NPZ_MEMBER_BYTES = 16 << 30
#: Expansion of a compressed ``.npz`` member beyond which it is a zip bomb, not data: deflate
#: cannot pass ~1,032:1; zero-padded skeleton arrays (mostly padding) compress ~10-30:1.
MAX_COMPRESSION_RATIO = 200
#: Bytes of a compressed member decompressed per read.
NPZ_READ_CHUNK_BYTES = 16 << 20


def check_shape(shape: Sequence[int], source: object, what: str = "array",
                limit: int = MAX_SEQUENCE_ELEMENTS) -> int:
    """The element count of ``shape``, refused when any axis is negative or the count exceeds
    ``limit``; checked with Python integers, so a claimed shape cannot overflow.

    Raises:
        SkeletonFormatError: naming ``source`` and the limit.
    """
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise SkeletonFormatError(source, f"{what} claims a negative size {tuple(dims)}")
    count = math.prod(dims)
    if count > limit:
        raise SkeletonFormatError(source, f"{what} of shape {tuple(dims)} holds {count:,} "
                                          f"numbers, more than the limit of {limit:,}")
    return count


def check_sequence_shape(shape: Sequence[int], source: object) -> None:
    """A sequence shape ``(M, T, V, C)`` or ``(T, V, C)`` within every limit above.

    Raises:
        SkeletonFormatError: naming the axis and its limit.
    """
    dims = tuple(int(d) for d in shape)
    if len(dims) == 3:
        dims = (1, *dims)
    if len(dims) == 4:
        for name, value, high in (("bodies", dims[0], MAX_BODIES), ("frames", dims[1], MAX_FRAMES),
                                  ("joints", dims[2], MAX_JOINTS)):
            if value > high:
                raise SkeletonFormatError(source, f"{value:,} {name} is more than the limit of "
                                                  f"{high:,}")
    check_shape(dims, source, "sequence")


def check_magnitude(coords, source: object) -> None:
    """Refuse coordinates ``coords`` (any shape, finite) that reach beyond
    :data:`MAX_ABS_COORDINATE`: no unit makes them a body. The one check of this kind, for
    files (after unit conversion), stream frames and recordings packed for training."""
    peak = float(abs(coords).max(initial=0.0))
    if peak > MAX_ABS_COORDINATE:
        raise SkeletonFormatError(source, f"coordinates reach {peak:.3g}, beyond "
                                          f"{MAX_ABS_COORDINATE:g} in any unit: not a body")


def read_file_limited(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused before reading when the file is longer than ``limit``.

    Raises:
        SkeletonFormatError: unreadable, or too long (``what`` names the kind of file).
    """
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > limit:
                raise SkeletonFormatError(path, f"larger than the limit of {limit:,} bytes for "
                                                f"{what}")
            data = fh.read()
    except OSError as exc:
        raise SkeletonFormatError(path, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:  # grew while we read it
        raise SkeletonFormatError(path, f"larger than the limit of {limit:,} bytes for {what}")
    return data
