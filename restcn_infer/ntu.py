"""NTU RGB+D sample names, official missing-skeleton lists and the four standard benchmarks.

Sample names are ``SsssCcccPpppRrrrAaaa``: setup, camera, performer (subject), replication and
action, all 1-based. Benchmarks (rules from the dataset papers):

- ``ntu60-xsub``: NTU60 (setups 1-17, actions 1-60); train on performers
  :data:`NTU60_TRAIN_PERFORMERS`, test on the rest.
- ``ntu60-xview``: NTU60; train on cameras 2 and 3, test on camera 1.
- ``ntu120-xsub``: all setups and actions; train on :data:`NTU120_TRAIN_PERFORMERS`.
- ``ntu120-xset``: all setups and actions; train on even setups, test on odd ones.

Plain Python (no numpy, no torch). Malformed names and lists raise
:class:`~restcn_infer.errors.DataError` (a ``ValueError``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from restcn_infer.errors import DataError

NTU60_TRAIN_PERFORMERS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
NTU120_TRAIN_PERFORMERS = NTU60_TRAIN_PERFORMERS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)
NTU60_MAX_SETUP = 17
NTU60_NUM_CLASSES = 60
BENCHMARKS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class SampleName:
    """The parts of an NTU sample name (all 1-based, as in the name)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """0-based class index: action A(i+1) is label i."""
        return self.action - 1


def parse_sample_name(name: str) -> SampleName:
    """Parse ``SsssCcccPpppRrrrAaaa`` (a ``.skeleton`` suffix or a folder is allowed).

    Raises:
        DataError: the name does not have that form or a field is 0.
    """
    stem = Path(name).name.removesuffix(".skeleton")
    match = _NAME.fullmatch(stem)
    if match is None:
        raise DataError(f"expected an NTU sample name like S001C001P001R001A001, got {name!r}")
    fields = [int(g) for g in match.groups()]
    if min(fields) < 1:
        raise DataError(f"expected 1-based fields in NTU sample name, got {name!r}")
    return SampleName(*fields)


def load_missing_list(path: str | PathLike[str]) -> set[str]:
    """Names in an official missing-skeleton list.

    The official files start with a few lines of prose; leading lines that are not sample names
    are skipped. After the first name, every non-blank line must be a name.

    Raises:
        DataError: not text, or a line after the header is not a sample name.
        OSError: the file cannot be read.
    """
    names: set[str] = set()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file of sample names (byte {exc.start} is not "
                        "UTF-8); expected the official missing-skeleton list") from None
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if _NAME.fullmatch(text) is None:
            if names:
                raise DataError(f"{path}:{number}: expected a sample name, got {text!r}")
            continue  # header
        names.add(text)
    return names


def split_names(names: Iterable[str], benchmark: str,
                missing: Iterable[str] = ()) -> dict[str, list[str]]:
    """Assign sample names to the train and test split of ``benchmark``.

    Names outside the benchmark (NTU120-only setups or actions for an ``ntu60-*`` benchmark) and
    names in ``missing`` are dropped. Order is kept.

    Returns:
        ``{"train": [...], "test": [...]}``.

    Raises:
        DataError: unknown benchmark or a malformed name.
    """
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}")
    skip = set(missing)
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for name in names:
        if name in skip:
            continue
        sample = parse_sample_name(name)
        if benchmark.startswith("ntu60") and (sample.setup > NTU60_MAX_SETUP
                                              or sample.action > NTU60_NUM_CLASSES):
            continue
        splits["train" if _is_train(sample, benchmark) else "test"].append(name)
    return splits


def _is_train(sample: SampleName, benchmark: str) -> bool:
    if benchmark == "ntu60-xsub":
        return sample.performer in NTU60_TRAIN_PERFORMERS
    if benchmark == "ntu60-xview":
        return sample.camera in (2, 3)
    if benchmark == "ntu120-xsub":
        return sample.performer in NTU120_TRAIN_PERFORMERS
    return sample.setup % 2 == 0  # ntu120-xset


def class_names(benchmark: str) -> list[str]:
    """Class names of the benchmark's dataset (60 or 120), index = 0-based label."""
    return list(NTU120_CLASSES[:NTU60_NUM_CLASSES] if benchmark.startswith("ntu60")
                else NTU120_CLASSES)


#: NTU RGB+D 120 class names; the first 60 are NTU RGB+D 60's.
NTU120_CLASSES = (
    'drink water',
    'eat meal/snack',
    'brushing teeth',
    'brushing hair',
    'drop',
    'pickup',
    'throw',
    'sitting down',
    'standing up (from sitting position)',
    'clapping',
    'reading',
    'writing',
    'tear up paper',
    'wear jacket',
    'take off jacket',
    'wear a shoe',
    'take off a shoe',
    'wear on glasses',
    'take off glasses',
    'put on a hat/cap',
    'take off a hat/cap',
    'cheer up',
    'hand waving',
    'kicking something',
    'reach into pocket',
    'hopping (one foot jumping)',
    'jump up',
    'make a phone call/answer phone',
    'playing with phone/tablet',
    'typing on a keyboard',
    'pointing to something with finger',
    'taking a selfie',
    'check time (from watch)',
    'rub two hands together',
    'nod head/bow',
    'shake head',
    'wipe face',
    'salute',
    'put the palms together',
    'cross hands in front (say stop)',
    'sneeze/cough',
    'staggering',
    'falling',
    'touch head (headache)',
    'touch chest (stomachache/heart pain)',
    'touch back (backache)',
    'touch neck (neckache)',
    'nausea or vomiting condition',
    'use a fan (with hand or paper)/feeling warm',
    'punching/slapping other person',
    'kicking other person',
    'pushing other person',
    'pat on back of other person',
    'point finger at the other person',
    'hugging other person',
    'giving something to other person',
    "touch other person's pocket",
    'handshaking',
    'walking towards each other',
    'walking apart from each other',
    'put on headphone',
    'take off headphone',
    'shoot at the basket',
    'bounce ball',
    'tennis bat swing',
    'juggling table tennis balls',
    'hush (quite)',
    'flick hair',
    'thumb up',
    'thumb down',
    'make ok sign',
    'make victory sign',
    'staple book',
    'counting money',
    'cutting nails',
    'cutting paper (using scissors)',
    'snapping fingers',
    'open bottle',
    'sniff (smell)',
    'squat down',
    'toss a coin',
    'fold paper',
    'ball up paper',
    'play magic cube',
    'apply cream on face',
    'apply cream on hand back',
    'put on bag',
    'take off bag',
    'put something into a bag',
    'take something out of a bag',
    'open a box',
    'move heavy objects',
    'shake fist',
    'throw up cap/hat',
    'hands up (both hands)',
    'cross arms',
    'arm circles',
    'arm swings',
    'running on the spot',
    'butt kicks (kick backward)',
    'cross toe touch',
    'side kick',
    'yawn',
    'stretch oneself',
    'blow nose',
    'hit other person with something',
    'wield knife towards other person',
    'knock over other person (hit with body)',
    "grab other person's stuff",
    'shoot at other person with a gun',
    'step on foot',
    'high-five',
    'cheers and drink',
    'carry something with other person',
    'take a photo of other person',
    'follow other person',
    "whisper in other person's ear",
    'exchange things with other person',
    'support somebody with hand',
    'finger-guessing game (playing rock-paper-scissors)',
)
