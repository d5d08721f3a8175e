"""restcn_infer.datasets: PYSKL pickles, packed NTU directories and CTR-GCN ``.npz`` archives as
one kind of labelled data set; what would make one meaningless is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import write_tiny_packed, write_tiny_pyskl
from restcn_infer.datasets import open_dataset
from restcn_infer.errors import DataError
from restcn_infer.layouts import NTU25


def write_npz(path, *, compressed: bool = False, classes: int = 3, d: int = 150, **override):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12, d)).astype(np.float32)
    arrays = {"x_train": x, "y_train": np.eye(classes)[[0, 1, 2, 1, 0]],
              "x_test": x[:2], "y_test": np.array([2, 0])} | override
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path, x


@pytest.mark.parametrize("compressed", [False, True])
def test_ctrgcn_npz_is_a_data_set_of_body_major_features(tmp_path, compressed):
    path, x = write_npz(tmp_path / "NTU60_CS.npz", compressed=compressed)
    data = open_dataset(path)
    assert data.layout.name == "ntu25" and sorted(data.splits) == ["test", "train"]
    train = data.split("train")
    assert train.bodies == 2 and len(train) == 5
    np.testing.assert_array_equal(train.labels, [0, 1, 2, 1, 0])
    seq = train.sequence(3)  # (M, T, V, 3) from (T, M*V*3), body-major
    assert seq.shape == (2, 12, 25, 3) and seq.dtype == np.float32
    assert seq[1, 4, 7, 2] == x[3, 4, 1 * 75 + 7 * 3 + 2]
    assert isinstance(train.x, np.memmap) != compressed  # stored members are memory-mapped
    assert data.classes == ["class_0", "class_1", "class_2"]


def test_npz_of_60_ntu_classes_gets_the_ntu_names(tmp_path):
    path, _ = write_npz(tmp_path / "NTU60_CS.npz", classes=60,
                        y_train=np.eye(60)[[0, 1, 2, 59, 0]])
    assert open_dataset(path).classes[59] == "walking apart from each other"


@pytest.mark.parametrize("override, match", [
    ({"x_test": np.zeros((2, 12, 151), np.float32)}, "x_test: expected"),
    ({"y_test": np.array([0])}, "y_test: expected 2 labels"),
    ({"y_test": np.array([0, 7])}, "labels must lie in 0..2"),
    ({"x_train": np.zeros((5, 12, 61), np.float32), "x_test": np.zeros((2, 12, 61), np.float32)},
     "61 features per frame fit 0 layouts"),
])
def test_npz_inconsistencies_are_named(tmp_path, override, match):
    path, _ = write_npz(tmp_path / "d.npz", **override)
    with pytest.raises(DataError, match=match):
        open_dataset(path)


def test_npz_missing_arrays_and_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((1, 2, 150), np.float32))
    with pytest.raises(DataError, match=r"lacks \['y_train', 'x_test', 'y_test'\]"):
        open_dataset(tmp_path / "a.npz")
    path, _ = write_npz(tmp_path / "b.npz", y_test=np.array([{"evil": 1}, 2], dtype=object))
    with pytest.raises(DataError, match="object arrays need pickle"):
        open_dataset(path)


def test_an_npz_header_that_lies_about_its_size_is_refused(tmp_path):
    """A header claiming a huge shape must not be trusted: nothing is allocated from it."""
    import zipfile

    path = tmp_path / "lie.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1, 150), np.float32))
    header["shape"] = (10**9, 300, 150)
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("x_train", "x_test", "y_train", "y_test"):
            with archive.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                fh.write(b"\0" * 600)
    with pytest.raises(DataError, match="header claims"):
        open_dataset(path)


def test_a_compressed_npz_bomb_is_refused_before_it_expands(tmp_path):
    """36 MB of zeros deflate to ~35 kB: the expansion a zip bomb has, not skeleton data."""
    import tracemalloc

    zeros = np.zeros((200, 300, 150), np.float32)
    path, _ = write_npz(tmp_path / "bomb.npz", compressed=True, x_train=zeros, x_test=zeros[:2])
    tracemalloc.start()
    with pytest.raises(DataError, match=r"x_train.npy: .* expand .*-fold .* refusing a zip bomb"):
        open_dataset(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # nothing of the claimed 36 MB was allocated


def test_a_compressed_npz_member_beyond_the_size_limit_is_refused(tmp_path, monkeypatch):
    import restcn_infer.datasets as datasets

    path, x = write_npz(tmp_path / "big.npz", compressed=True)
    monkeypatch.setattr(datasets, "MAX_NPZ_MEMBER_BYTES", x.nbytes - 1)
    with pytest.raises(DataError, match=r"x_train.npy: expands to 36,000 bytes, more than the "
                                        r"limit .* np.savez"):
        open_dataset(path)
    monkeypatch.setattr(datasets, "NPZ_READ_CHUNK_BYTES", 1000)  # many chunks: the same data
    monkeypatch.setattr(datasets, "MAX_NPZ_MEMBER_BYTES", x.nbytes)
    np.testing.assert_array_equal(open_dataset(path).split("train").x, x)


def test_pyskl_labels_beyond_the_label_map_are_refused(tmp_path):
    path = write_tiny_pyskl(tmp_path / "tiny.pkl")  # labels 0..2
    (tmp_path / "label_map.txt").write_text("only\ntwo\n")
    with pytest.raises(DataError, match="labels go up to 2.*names only 2 classes"):
        open_dataset(path)


def test_packed_directory_and_its_names(tmp_path):
    data = open_dataset(write_tiny_packed(tmp_path / "xsub"))
    split = data.split("test")
    assert split.bodies == 2 and split.names[0] == "S001A000" and len(split) == 6
    assert split.sequence(0).shape[2:] == (25, 3)
    with pytest.raises(DataError, match="unknown split 'val'; available: test, train"):
        data.split("val")


@pytest.mark.parametrize("name, content, match", [
    ("a.skeleton", b"1\n", "raw NTU .skeleton file: pack a folder of them with restcn-build-ntu"),
    ("a.csv", b"1,2\n", "got a .csv file"),
    ("missing.pkl", None, "no such file or directory"),
])
def test_files_that_are_not_data_sets_are_named_as_such(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=match):
        open_dataset(tmp_path / name)


def test_holdout_by_fraction_is_stratified_fixed_and_disjoint(tmp_path):
    from restcn_infer.datasets import carve_holdout

    split = open_dataset(write_tiny_pyskl(tmp_path / "t.pkl", per_class=10)).split("train")
    rest, held = carve_holdout(split, fraction=0.2, seed=3)
    again_rest, again_held = carve_holdout(split, fraction=0.2, seed=3)
    assert held.names == again_held.names and rest.names == again_rest.names
    assert set(held.names).isdisjoint(rest.names) and len(held) + len(rest) == len(split)
    assert np.bincount(held.labels).tolist() == [1, 1, 1]  # 20 % of each class's 5
    np.testing.assert_array_equal(held.sequence(0), split.sequence(int(held.indices[0])))
    other = carve_holdout(split, fraction=0.2, seed=4)[1]
    assert other.names != held.names
    # names and labels are built once (readers index them per sequence), not per access
    assert held.names is held.names and held.labels is held.labels


def test_holdout_by_name_pattern(shared_data):
    from restcn_infer.datasets import carve_holdout

    split = open_dataset(shared_data / "nw_ucla" / "nw_ucla.pkl").split("train")
    rest, held = carve_holdout(split, match="_v02$")
    assert all(n.endswith("_v02") for n in held.names)
    assert all(n.endswith("_v01") for n in rest.names)
    with pytest.raises(DataError, match="takes 0 of 1020"):
        carve_holdout(split, match="_v03$")
    with pytest.raises(DataError, match="holdout pattern"):
        carve_holdout(split, match="(unclosed")


def with_layout(path, layout):
    """Rewrite the PYSKL pickle at ``path`` with a top-level ``"layout"`` (restcn-build-dataset's
    key)."""
    import pickle

    doc = pickle.loads(path.read_bytes())
    doc["layout"] = layout
    path.write_bytes(pickle.dumps(doc))
    return path


def test_a_pickle_declares_its_layout(tmp_path):
    from restcn_infer.layouts import OPENPOSE25, JointLayout

    path = write_tiny_pyskl(tmp_path / "op.pkl", joints=25)
    assert open_dataset(path).layout.name == "ntu25"  # guessed from 25 joints
    assert open_dataset(with_layout(path, OPENPOSE25.to_dict())).layout is OPENPOSE25
    mine = {"name": "mine", "joints": [f"j{i}" for i in range(25)],
            "bones": [[i, i - 1] for i in range(1, 25)], "groups": {"hands": [3, 4]}}
    data = open_dataset(with_layout(path, mine))
    assert data.layout == JointLayout.from_dict(mine) and data.layout.groups["hands"] == (3, 4)
    layout_file = tmp_path / "other.json"
    layout_file.write_text(json.dumps({**mine, "name": "other"}))
    assert open_dataset(path, str(layout_file)).layout.name == "other"  # the caller's wins


@pytest.mark.parametrize("layout, match", [
    ({"name": "mine", "joints": ["a", "b"], "bones": [[1, 0]]},
     "declares mine \\(2 joints\\), the keypoints have \\[25\\]"),
    ({"name": "mine", "joints": ["a"] * 25}, "field 'layout' field 'joints' repeats"),
    ("openpose25", "field 'layout' must be a JSON object"),
    ({**NTU25.to_dict(), "groups": {}}, "'ntu25' is a built-in layout with other joints"),
])
def test_a_bad_declared_layout_is_refused(tmp_path, layout, match):
    path = with_layout(write_tiny_pyskl(tmp_path / "bad.pkl", joints=25), layout)
    with pytest.raises(DataError, match=match):
        open_dataset(path)
