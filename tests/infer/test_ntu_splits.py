"""NTU benchmark splits: the published counts on the available names, missing lists, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from restcn_infer.ntu import (
    BENCHMARKS,
    NTU120_CLASSES,
    SampleName,
    class_names,
    load_missing_list,
    parse_sample_name,
    split_names,
)

EXPECTED = {  # benchmark -> (names file, train, test), from ../shared/data/README.md
    "ntu60-xsub": ("ntu60_available_names.txt", 40_091, 16_487),
    "ntu60-xview": ("ntu60_available_names.txt", 37_646, 18_932),
    "ntu120-xsub": ("ntu120_available_names.txt", 63_026, 50_919),
    "ntu120-xset": ("ntu120_available_names.txt", 54_468, 59_477),
}


def _names(shared_data: Path, file: str) -> list[str]:
    return (shared_data / "ntu" / file).read_text().split()


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_counts_match_the_published_splits(shared_data: Path, benchmark: str) -> None:
    file, train, test = EXPECTED[benchmark]
    splits = split_names(_names(shared_data, file), benchmark)
    assert (len(splits["train"]), len(splits["test"])) == (train, test)
    assert not set(splits["train"]) & set(splits["test"])


def test_ntu60_benchmarks_ignore_ntu120_only_samples(shared_data: Path) -> None:
    ntu60 = split_names(_names(shared_data, "ntu120_available_names.txt"), "ntu60-xsub")
    assert (len(ntu60["train"]), len(ntu60["test"])) == EXPECTED["ntu60-xsub"][1:]


@pytest.mark.parametrize("file, count", [("ntu60_missing_skeletons.txt", 302),
                                         ("ntu120_missing_skeletons.txt", 535)])
def test_missing_lists_skip_their_header(shared_data: Path, file: str, count: int) -> None:
    missing = load_missing_list(shared_data / "ntu" / file)
    assert len(missing) == count
    assert all(parse_sample_name(name) for name in missing)


def test_missing_names_are_removed(shared_data: Path) -> None:
    missing = sorted(load_missing_list(shared_data / "ntu" / "ntu60_missing_skeletons.txt"))
    names = _names(shared_data, "ntu60_available_names.txt")[:500] + missing
    splits = split_names(names, "ntu60-xview", missing=missing)
    assert len(splits["train"]) + len(splits["test"]) == 500
    assert not set(missing) & set(splits["train"] + splits["test"])
    assert len(split_names(names, "ntu60-xview")["test"]) > len(splits["test"])


def test_missing_list_rejects_garbage_after_the_header(tmp_path: Path) -> None:
    path = tmp_path / "missing.txt"
    path.write_text("header prose\n\nS001C002P005R002A008\nnot a name\n")
    with pytest.raises(ValueError, match="missing.txt:4"):
        load_missing_list(path)


@pytest.mark.parametrize("name, setup, camera, performer, action", [
    ("S001C002P003R002A013", 1, 2, 3, 13),
    ("S032C003P106R002A120.skeleton", 32, 3, 106, 120),
])
def test_parse_sample_name(name: str, setup: int, camera: int, performer: int,
                           action: int) -> None:
    sample = parse_sample_name(name)
    assert (sample.setup, sample.camera, sample.performer, sample.action) == (
        setup, camera, performer, action)
    assert sample.label == action - 1


@pytest.mark.parametrize("name", ["", "S001C002P003R002", "s001c002p003r002a013",
                                  "S001C002P003R002A0130", "S000C002P003R002A013", "x.skeleton"])
def test_bad_sample_names(name: str) -> None:
    with pytest.raises(ValueError, match="NTU sample name"):
        parse_sample_name(name)


@pytest.mark.parametrize("benchmark", ["ntu60", "NTU60-XSUB", ""])
def test_unknown_benchmark(benchmark: str) -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        split_names(["S001C002P003R002A013"], benchmark)


def test_rules_on_single_names() -> None:
    name = "S002C001P001R001A050"  # performer 1 (train in xsub), camera 1 (test in xview)
    assert split_names([name], "ntu60-xsub") == {"train": [name], "test": []}
    assert split_names([name], "ntu60-xview") == {"train": [], "test": [name]}
    assert split_names([name], "ntu120-xset") == {"train": [name], "test": []}
    assert split_names(["S018C001P001R001A001"], "ntu60-xsub") == {"train": [], "test": []}
    assert isinstance(parse_sample_name(name), SampleName)


def test_class_names(shared_data: Path) -> None:
    for benchmark, file in [("ntu60-xsub", "label_map_ntu60.txt"),
                            ("ntu120-xset", "label_map_ntu120.txt")]:
        assert class_names(benchmark) == (shared_data / "ntu" / file).read_text().splitlines()
    assert len(NTU120_CLASSES) == 120
