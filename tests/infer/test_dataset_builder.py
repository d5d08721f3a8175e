"""restcn_infer.dataset_builder and labels_csv: a data set of one's own from recordings and a
labels table, written as the PYSKL pickle that open_dataset (and so restcn-train) reads."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from restcn_infer.dataset_builder import build_dataset
from restcn_infer.datasets import open_dataset
from restcn_infer.errors import DataError
from restcn_infer.layouts import COCO17, KINECT20, MEDIAPIPE33, JointLayout, layout_mapping
from restcn_infer.output_paths import OutputPathError
from restcn_infer.readers import read_keypoints
from restcn_infer.readers.pyskl import restricted_load

POSE = Path(__file__).resolve().parents[1] / "data" / "pose"


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def kinect_folder(tmp_path):
    """Six kinect20 .npy recordings (subjects 1-3, two classes) and two MediaPipe ones."""
    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label,subject"]
    for i in range(6):
        np.save(clips / f"s{i % 3 + 1}_{i}.npy", rng.normal(size=(1, 8 + i, 20, 3)).astype(
            np.float32))
        rows.append(f"s{i % 3 + 1}_{i}.npy,{'wave' if i % 2 else 'clap'},{i % 3 + 1}")
    shutil.copy(POSE / "mediapipe_tasks.json", clips / "mp_tasks.json")
    shutil.copy(POSE / "mediapipe_solutions.json", clips / "mp_solutions.json")
    rows += ["mp_tasks.json,wave,3", "mp_solutions.json,sit,2"]
    return clips, write_csv(tmp_path / "labels.csv", rows)


def test_a_3d_data_set_in_one_layout_reads_back_through_open_dataset(kinect_folder, tmp_path):
    clips, labels = kinect_folder
    out = tmp_path / "mine" / "mine.pkl"
    report = build_dataset(clips, labels, out, layout="kinect20", split_by="subject",
                           val=["3"])
    assert report.splits == {"train": 5, "val": 3} and report.skipped == []
    assert report.classes == ["clap", "wave", "sit"] and report.coords == 3
    assert report.layout is KINECT20 and report.bodies == 2
    data = open_dataset(out)
    assert data.classes == ["clap", "wave", "sit"] and data.layout is KINECT20
    val = data.split("val")
    assert list(val.names) == ["s3_2", "s3_5", "mp_tasks"]
    np.testing.assert_array_equal(val.labels, [0, 1, 1])
    np.testing.assert_array_equal(val.sequence(0), np.load(clips / "s3_2.npy"))
    world = read_keypoints(clips / "mp_tasks.json").masked()  # MediaPipe, mapped by name
    want = layout_mapping(MEDIAPIPE33, KINECT20).apply(world.coords)
    np.testing.assert_allclose(val.sequence(2), want, rtol=1e-6)
    doc = restricted_load(out)
    assert doc["layout"] == KINECT20.to_dict()
    ann = next(a for a in doc["annotations"] if a["frame_dir"] == "mp_tasks")
    assert ann["keypoint_score"].shape == (2, 3, 20) and ann["total_frames"] == 3
    assert (out.parent / "label_map.txt").read_text() == "clap\nwave\nsit\n"


def test_a_2d_data_set_is_pyskl_2d_with_scores_and_masked_joints(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(POSE / "mmpose_demo.json", clips / "demo.json")
    shutil.copy(POSE / "mmpose_tracked.json", clips / "tracked.json")
    shutil.copytree(POSE / "openpose_body25", clips / "op")
    labels = write_csv(tmp_path / "labels.csv", [
        "file,label,split", "demo.json,wave,train", "op,wave,val", "tracked.json,clap,train"])
    out = tmp_path / "two_d.pkl"
    report = build_dataset(clips, labels, out, bodies=1)
    assert report.layout is COCO17 and report.coords == 2 and report.bodies == 1
    doc = restricted_load(out)
    assert doc["split"] == {"train": ["demo", "tracked"], "val": ["op"]}
    demo, tracked, op = doc["annotations"]
    assert demo["keypoint"].shape == (1, 4, 17, 2) and demo["keypoint"].dtype == np.float32
    assert demo["keypoint_score"].shape == (1, 4, 17)
    assert not demo["keypoint"][0, 0, [15, 16]].any()  # ankles scored 0.05: zeroed
    body25 = read_keypoints(clips / "op").masked()
    np.testing.assert_array_equal(op["keypoint"][0, :, 0], body25.coords[0, :, 0])  # Nose
    np.testing.assert_array_equal(op["keypoint"][0, :, 5], body25.coords[0, :, 5])  # LShoulder
    assert op["label"] == 0 and tracked["label"] == 1


def test_no_split_column_gives_one_split_and_unreadable_recordings_are_listed(kinect_folder,
                                                                            tmp_path):
    clips, labels = kinect_folder
    text = labels.read_text().replace("s1_0.npy", "missing.npy")
    labels.write_text(text)
    report = build_dataset(clips, labels, tmp_path / "d.pkl", layout="kinect20")
    assert report.splits == {"all": 7}
    assert [(s["line"], s["file"]) for s in report.skipped] == [(2, "missing.npy")]
    assert "no such file" in report.skipped[0]["reason"]


def test_a_user_layout_and_a_pinned_class_order(kinect_folder, tmp_path):
    clips, labels = kinect_folder
    path = tmp_path / "upper.json"
    path.write_text(json.dumps({
        "name": "upper", "joints": ["hips", "chest", "l_hand", "r_hand"],
        "bones": [["chest", "hips"], ["l_hand", "chest"], ["r_hand", "chest"]],
        "aliases": {"hips": "SpineBase", "chest": "SpineShoulder", "l_hand": "HandLeft",
                    "r_hand": "HandRight"}}))
    out = tmp_path / "upper.pkl"
    report = build_dataset(clips, labels, out, layout=str(path), classes=["sit", "wave", "clap"])
    assert report.layout.name == "upper" and report.classes == ["sit", "wave", "clap"]
    doc = restricted_load(out)
    assert JointLayout.from_dict(doc["layout"]) == report.layout
    first = doc["annotations"][0]
    assert first["keypoint"].shape[2] == 4 and first["label"] == 2  # clap


@pytest.mark.parametrize(("rows", "kwargs", "match"), [
    (["file,labels", "a.npy,x"], {}, r"lacks the columns \['label'\]"),
    (["file,label,file", "a.npy,x,b"], {}, "repeats the columns"),
    (["file,label"], {}, "no rows after the header"),
    (["file,label", "a.npy,x,extra"], {}, "labels.csv:2: 3 fields, the header has 2"),
    (["file,label", "a.npy,"], {}, "labels.csv:2: empty 'label'"),
    (["file,label", "../a.npy,x"], {}, "labels.csv:2: file '../a.npy' must be a path inside"),
    (["file,label", "/etc/a.npy,x"], {}, "must be a path inside"),
    (["file,label", "a.npy,x", "a.json,y"], {}, "labels.csv:3: sample name 'a' is used on line 2"),
    (["file,label,split", "a.npy,x,train", "b.npy,y,val"], {"split_by": "split", "val": ["1"]},
     "either it or --split-by"),
    (["file,label", "a.npy,x", "b.npy,y"], {"split_by": "view", "val": ["1"]},
     "no column 'view'"),
    (["file,label,view", "a.npy,x,1", "b.npy,y,2"], {"split_by": "view", "val": ["3"]},
     r"no row has view \['3'\]"),
    (["file,label,view", "a.npy,x,1", "b.npy,y,1"], {"split_by": "view", "val": ["1"]},
     "holds out every row"),
    (["file,label,view", "a.npy,x,1", "b.npy,y,1"], {"split_by": "view"}, "needs --val"),
    (["file,label", "a.npy,x", "b.npy,x"], {}, "at least 2 classes"),
    (["file,label", "a.npy,x", "b.npy,y"], {"classes": ["x", "z"]}, "label 'y' is not in"),
    (["file,label", "a.npy,x", "b.npy,y"], {"classes": ["x", "x", "y"]}, "repeats"),
    (["file,label", "a.npy,x", "b.npy,y"], {"layout": "h36m"}, "unknown joint layout 'h36m'"),
    (["file,label", "a.npy,x", "b.npy,y"], {"format": "yolo"}, "unknown format 'yolo'"),
    (["file,label", "a.npy,x", "b.npy,y"], {"bodies": 0}, "bodies must be at least 1"),
    (["file,label", "a.npy,x", "b.npy,y"], {}, "no recording could be read; line 2 .*no such"),
])
def test_bad_tables_and_arguments_are_named(tmp_path, rows, kwargs, match):
    (tmp_path / "clips").mkdir()
    labels = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(DataError, match=match):
        build_dataset(tmp_path / "clips", labels, tmp_path / "d.pkl", **kwargs)
    assert not (tmp_path / "d.pkl").exists()


def test_mixed_2d_and_3d_recordings_are_refused(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(POSE / "mediapipe_tasks.json", clips / "world.json")
    shutil.copy(POSE / "mediapipe_image.json", clips / "image.json")
    labels = write_csv(tmp_path / "labels.csv", ["file,label", "world.json,a", "image.json,b"])
    with pytest.raises(DataError, match="labels.csv:3: image.json has 2-D keypoints, the "
                                        "recordings before it 3-D"):
        build_dataset(clips, labels, tmp_path / "d.pkl")


def test_another_data_sets_label_map_is_not_overwritten(kinect_folder, tmp_path):
    clips, labels = kinect_folder
    (tmp_path / "label_map.txt").write_text("drink\neat\n")
    with pytest.raises(DataError, match="already names other classes"):
        build_dataset(clips, labels, tmp_path / "d.pkl", layout="kinect20")
    (tmp_path / "label_map.txt").write_text("clap\nwave\nsit\n")  # the same classes: fine
    assert build_dataset(clips, labels, tmp_path / "d.pkl", layout="kinect20").splits


def test_bad_output_and_folder(kinect_folder, tmp_path):
    clips, labels = kinect_folder
    with pytest.raises(OutputPathError, match="--out must end in .pkl"):
        build_dataset(clips, labels, tmp_path / "d.json")
    with pytest.raises(DataError, match="no such folder"):
        build_dataset(tmp_path / "nope", labels, tmp_path / "d.pkl")
    labels.write_bytes(b"file,label\n\xff\xfe,x\n")
    with pytest.raises(DataError, match="expected UTF-8"):
        build_dataset(clips, labels, tmp_path / "d.pkl")
