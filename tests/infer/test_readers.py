"""Readers other than the NTU text format: .npy, .json, PYSKL pickles, CTR-GCN .npz."""

import json
import os
import pickle

import numpy as np
import pytest

from restcn_infer import SkeletonFormatError, load_sequence
from restcn_infer.readers.pyskl import read_pyskl


def seq(m=1, t=6, v=20):
    return np.random.default_rng(0).normal(size=(m, t, v, 3)).astype(np.float32)


def test_npy_one_body_gets_a_body_axis(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, seq()[0].astype(np.float64))
    out = load_sequence(path)
    assert out.shape == (1, 6, 20, 3) and out.dtype == np.float32


def test_npy_object_array_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SkeletonFormatError, match="evil.npy.*pickle"):
        load_sequence(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (np.zeros((0, 20, 3)), "non-empty"),
        (np.zeros((5, 20, 4)), r"\(T, V, 3\)"),
        (np.ones((5, 20, 2)), "holds 2-D keypoints .* load_sequence\\(coords=2\\)"),
        (np.full((2, 20, 3), np.nan), "finite"),
    ],
)
def test_npy_bad_arrays(tmp_path, content, match):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(SkeletonFormatError, match=match):
        load_sequence(path)


def test_json_one_body_and_bodies_frames(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"layout": "kinect20", "frames": seq()[0].tolist()}))
    assert load_sequence(one).shape == (1, 6, 20, 3)
    two = tmp_path / "two.json"
    two.write_text(json.dumps(seq(m=2).transpose(1, 0, 2, 3).tolist()))
    np.testing.assert_allclose(load_sequence(two), seq(m=2), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"frames": [[[1, 2, 3]], ', ":1: expected JSON"),
        ('{"frames": [[[1, 2, 3]], [[1, 2]]]}', "one shape"),
        ('{"frames": [[["a", 2, 3]]]}', "numbers"),
        ('{"frame": []}', "list of frames"),
    ],
)
def test_json_bad_documents(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SkeletonFormatError, match=match):
        load_sequence(path)


def test_missing_file_directory_and_unknown_suffix(tmp_path):
    with pytest.raises(SkeletonFormatError, match="no such file"):
        load_sequence(tmp_path / "nope.npy")
    folder = tmp_path / "dir.npy"
    folder.mkdir()
    with pytest.raises(SkeletonFormatError, match="directory"):
        load_sequence(folder)
    with pytest.raises(SkeletonFormatError, match="unknown file type"):
        load_sequence(tmp_path / "a.csv")


def pyskl_doc(n=3):
    anns = [{"frame_dir": f"s{i}", "label": i % 2, "total_frames": 6, "keypoint": seq()}
            for i in range(n)]
    return {"split": {"train": ["s0", "s1"], "val": ["s2"]}, "annotations": anns}


def test_pyskl_file_round_trip(tmp_path):
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(pyskl_doc()))
    data = read_pyskl(path)
    assert [a.frame_dir for a in data.split("train")] == ["s0", "s1"]
    np.testing.assert_array_equal(data.split("val")[0].keypoint, seq())
    with pytest.raises(ValueError, match="val"):
        data.split("test")


def test_pyskl_single_annotation_via_load_sequence(tmp_path):
    path = tmp_path / "one.pkl"
    path.write_bytes(pickle.dumps(pyskl_doc()["annotations"][0]))
    assert load_sequence(path).shape == (1, 6, 20, 3)
    many = tmp_path / "many.pkl"
    many.write_bytes(pickle.dumps(pyskl_doc()))
    with pytest.raises(SkeletonFormatError, match="3 annotations"):
        load_sequence(many)


def pyskl_2d_doc(scores: bool = True) -> dict:
    """PYSKL's 2-D form: keypoint (M, T, V, 2) pixels, keypoint_score (M, T, V) apart."""
    rng = np.random.default_rng(3)
    anns = []
    for i in range(3):
        ann = {"frame_dir": f"s{i}", "label": i % 2, "total_frames": 5, "img_shape": (1080, 1920),
               "keypoint": rng.uniform(100, 1000, (1, 5, 17, 2)).astype(np.float32)}
        if scores:
            ann["keypoint_score"] = np.full((1, 5, 17), 0.9, np.float32)
            ann["keypoint_score"][0, 1, 3] = 0.2  # unsure: absent
        anns.append(ann)
    return {"split": {"train": ["s0", "s1"], "val": ["s2"]}, "annotations": anns}


def test_a_2d_pyskl_file_keeps_x_y_and_masks_low_scores(tmp_path):
    doc = pyskl_2d_doc()
    path = tmp_path / "d2.pkl"
    path.write_bytes(pickle.dumps(doc))
    data = read_pyskl(path)
    kp = data.split("val")[0].keypoint
    assert kp.shape == (1, 5, 17, 2) and not kp[0, 1, 3].any()
    np.testing.assert_array_equal(kp[0, 0], doc["annotations"][2]["keypoint"][0, 0])
    doc["min_confidence"] = 0.1  # the builder's own threshold: the 0.2 joint is kept
    path.write_bytes(pickle.dumps(doc))
    assert read_pyskl(path).split("val")[0].keypoint[0, 1, 3].all()
    one = tmp_path / "one.pkl"
    one.write_bytes(pickle.dumps(pyskl_2d_doc()["annotations"][0]))
    with pytest.raises(SkeletonFormatError, match="holds 2-D keypoints"):
        load_sequence(one)
    assert load_sequence(one, coords=2).shape == (1, 5, 17, 2)


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["annotations"][1].update(keypoint=np.ones((1, 5, 17, 3), np.float32)),
     "annotation 1 \\(s1\\) has 3 coordinates per joint, s0 2; a data set holds one kind"),
    (lambda d: d["annotations"][0].update(keypoint_score=np.ones((1, 5), np.float32)),
     "expected keypoint_score of shape \\(1, 5, 17\\)"),
    (lambda d: d.update(min_confidence=2), "'min_confidence' must be a number in \\[0, 1\\]"),
    (lambda d: d["annotations"][0].update(keypoint=np.ones((1, 5, 17, 1), np.float32)),
     "expected keypoint array \\(M, T, V, 3\\) or \\(M, T, V, 2\\)"),
])
def test_2d_pyskl_inconsistencies_are_named(tmp_path, change, match):
    doc = pyskl_2d_doc()
    change(doc)
    path = tmp_path / "bad2.pkl"
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(SkeletonFormatError, match=match):
        read_pyskl(path)


def test_numpy1_module_paths_are_accepted(tmp_path):
    # Protocol 2 spells globals as text lines, so the numpy 2 path can be swapped for numpy 1's.
    raw = pickle.dumps(pyskl_doc(), protocol=2)
    assert b"numpy._core.multiarray" in raw
    path = tmp_path / "np1.pkl"
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert len(read_pyskl(path).annotations) == 3


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_asking_for_other_globals_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [Exploit()]}))
    with pytest.raises(SkeletonFormatError, match=r"refusing to load global (posix|os)\.system"):
        read_pyskl(path)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"annotations": []}, "non-empty"),
        ({"annotations": [{"frame_dir": "a", "label": 0}]}, "keypoint"),
        ({"annotations": [{"frame_dir": "a", "label": -1, "keypoint": seq()}]}, "label"),
        ({"split": {"x": ["zz"]}, "annotations": pyskl_doc()["annotations"]}, "'zz'"),
    ],
)
def test_pyskl_structure_errors(tmp_path, doc, match):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(SkeletonFormatError, match=match):
        read_pyskl(path)


def test_truncated_pickle(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(pyskl_doc())[:500])
    with pytest.raises(SkeletonFormatError, match="cut.pkl"):
        read_pyskl(path)


@pytest.mark.parametrize(("name", "classes", "size"),
                         [("nw_ucla", 10, 1484), ("utd_mhad", 27, 861)])
def test_real_benchmark_pickles(shared_data, name, classes, size):
    data = read_pyskl(shared_data / name / f"{name}.pkl")
    assert len(data.annotations) == size
    assert {a.label for a in data.annotations.values()} == set(range(classes))
    assert all(a.keypoint.shape[2:] == (20, 3) for a in data.annotations.values())
