"""Readers of pose-estimator output (MMPose, MediaPipe, OpenPose) on the hand-written fixtures of
``tests/data/pose`` (see its README), the format sniffing of ``.json``, and hostile input."""

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from restcn_infer import SkeletonFormatError, load_sequence
from restcn_infer.layouts import COCO17, JointLayout
from restcn_infer.readers import openpose as openpose_module
from restcn_infer.readers import read_keypoints
from restcn_infer.readers.keypoints import DEFAULT_MIN_CONFIDENCE

POSE = Path(__file__).resolve().parents[1] / "data" / "pose"


def fixture(name: str) -> dict:
    return json.loads((POSE / name).read_text())


@pytest.mark.parametrize(("name", "shape", "layout", "units", "tracks"), [
    ("mmpose_demo.json", (2, 4, 17, 2), "coco17", "px", (None, None)),
    ("mmpose_tracked.json", (2, 3, 17, 2), "coco17", "px", (0, 1)),
    ("mmpose_image.json", (2, 1, 17, 2), "coco17", "px", (None, None)),
    ("mediapipe_tasks.json", (2, 3, 33, 3), "mediapipe33", "m", (None, None)),
    ("mediapipe_solutions.json", (1, 3, 33, 3), "mediapipe33", "m", (None,)),
    ("mediapipe_image.json", (1, 2, 33, 2), "mediapipe33", "normalised", (None,)),
    ("openpose_body25", (2, 3, 25, 2), "openpose25", "px", (None, None)),
    ("openpose_tracked", (2, 3, 25, 2), "openpose25", "px", (4, 7)),
    ("openpose18_000000000000_keypoints.json", (1, 1, 18, 2), "openpose18", "px", (None,)),
])
def test_each_fixture_reads_with_its_layout_and_confidence_apart(name, shape, layout, units,
                                                                 tracks):
    kp = read_keypoints(POSE / name)
    assert kp.coords.shape == shape and kp.coords.dtype == np.float32
    assert kp.confidence.shape == shape[:3] and kp.confidence.dtype == np.float32
    assert kp.layout.name == layout and kp.units == units and kp.track_ids == tracks
    assert 0 <= kp.confidence.min() and kp.confidence.max() <= 1


def test_mmpose_demo_values_empty_frame_and_masking():
    doc = fixture("mmpose_demo.json")
    kp = read_keypoints(POSE / "mmpose_demo.json")
    first = doc["instance_info"][0]["instances"]
    np.testing.assert_array_equal(kp.coords[1, 0], first[1]["keypoints"])  # second person
    np.testing.assert_allclose(kp.confidence[0, 0], first[0]["keypoint_scores"], rtol=1e-6)
    assert not kp.coords[:, 2].any() and not kp.confidence[:, 2].any()  # nobody in frame 2
    assert not kp.coords[1, 3].any()  # person 1 gone in frame 3
    masked = kp.masked()  # ankles scored 0.05 < DEFAULT_MIN_CONFIDENCE
    assert not masked.coords[0, 0, [15, 16]].any() and masked.coords[0, 0, 14].all()
    assert not masked.confidence[0, 0, [15, 16]].any()
    np.testing.assert_array_equal(masked.coords[0, 1], kp.coords[0, 1])  # frame 1 untouched
    assert kp.masked(0.0) is kp and DEFAULT_MIN_CONFIDENCE == 0.3


def test_mmpose_tracks_are_bodies_across_order_swaps_and_dropped_people_are_left_out():
    doc = fixture("mmpose_tracked.json")
    kp = read_keypoints(POSE / "mmpose_tracked.json")
    by_track = {inst["track_id"]: inst["keypoints"] for inst in doc[1]["instances"]}
    np.testing.assert_array_equal(kp.coords[0, 1], by_track[0])  # body 0 = track 0 (3 frames)
    np.testing.assert_array_equal(kp.coords[1, 1], by_track[1])
    assert not kp.coords[1, 2].any()  # track 1 gone in frame 2
    np.testing.assert_array_equal(kp.coords[1, 0], doc[0]["instances"][0]["keypoints"])


def test_openpose_untracked_and_tracked_folders():
    kp = read_keypoints(POSE / "openpose_body25")
    frame1 = fixture("openpose_body25/clip_000000000001_keypoints.json")["people"][0]
    xyc = np.array(frame1["pose_keypoints_2d"], np.float32).reshape(25, 3)
    np.testing.assert_array_equal(kp.coords[0, 1], xyc[:, :2])
    np.testing.assert_array_equal(kp.confidence[0, 1], xyc[:, 2])
    assert not kp.confidence[0, 1, [17, 18]].any() and not kp.coords[0, 1, [17, 18]].any()
    tracked = read_keypoints(POSE / "openpose_tracked")
    swapped = fixture("openpose_tracked/walk_000000000001_keypoints.json")["people"]
    four = np.array(swapped[1]["pose_keypoints_2d"], np.float32).reshape(25, 3)[:, :2]
    np.testing.assert_array_equal(tracked.coords[0, 1], four)  # body 0 = person 4 throughout
    assert not tracked.coords[1, 2].any()


def test_openpose_frames_sort_by_number_not_by_name(tmp_path):
    src = sorted((POSE / "openpose_body25").iterdir())
    for number, path in zip((9, 10, 100), src):  # '100' < '9' as text
        shutil.copy(path, tmp_path / f"clip_{number}_keypoints.json")
    np.testing.assert_array_equal(read_keypoints(tmp_path).coords,
                                  read_keypoints(POSE / "openpose_body25").coords)


def test_mediapipe_world_image_and_visibility():
    doc = fixture("mediapipe_tasks.json")
    world = read_keypoints(POSE / "mediapipe_tasks.json")  # auto: world landmarks exist
    mark = doc["frames"][0]["pose_world_landmarks"][1][15]
    np.testing.assert_allclose(world.coords[1, 0, 15], [mark["x"], mark["y"], mark["z"]],
                               rtol=1e-6)
    assert world.confidence[1, 0, 15] == pytest.approx(mark["visibility"])
    assert not world.coords[:, 1].any()  # nobody in frame 1
    image = read_keypoints(POSE / "mediapipe_tasks.json", "mediapipe-image")
    mark = doc["frames"][2]["pose_landmarks"][0][0]
    np.testing.assert_allclose(image.coords[0, 2, 0], [mark["x"], mark["y"]], rtol=1e-6)
    assert image.units == "normalised" and image.coords_per_joint == 2  # relative z not read
    assert not world.masked().coords[0, 0, [29, 31]].any()  # low-visibility heel, toes
    seq = load_sequence(POSE / "mediapipe_tasks.json")
    assert seq.shape == (2, 3, 33, 3) and not seq[0, 0, 29].any()


def test_the_sequence_contract_refuses_2d_keypoints():
    with pytest.raises(SkeletonFormatError, match="mmpose_demo.json: holds 2-D keypoints .*"
                                                  "read_keypoints"):
        load_sequence(POSE / "mmpose_demo.json")


def test_plain_json_and_other_formats_are_unchanged(tmp_path):
    plain = tmp_path / "plain.json"
    frames = np.random.default_rng(0).normal(size=(4, 20, 3)).astype(np.float32)
    plain.write_text(json.dumps({"layout": "kinect20", "frames": frames.tolist()}))
    kp = read_keypoints(plain)
    assert kp.confidence is None and kp.layout is None
    np.testing.assert_allclose(load_sequence(plain)[0], frames, rtol=1e-6)
    np.save(tmp_path / "a.npy", frames)
    np.testing.assert_array_equal(load_sequence(tmp_path / "a.npy")[0], frames)


def test_an_explicit_format_reads_any_file_name(tmp_path):
    path = tmp_path / "result.txt"
    shutil.copy(POSE / "mmpose_image.json", path)
    assert read_keypoints(path, "mmpose").coords.shape == (2, 1, 17, 2)
    with pytest.raises(SkeletonFormatError, match="unknown format 'yolo'"):
        read_keypoints(path, "yolo")
    with pytest.raises(SkeletonFormatError, match="is a directory, expected a mmpose file"):
        read_keypoints(tmp_path, "mmpose")


MPI15 = JointLayout.from_dict({"name": "mpi15", "joints": [f"j{i}" for i in range(15)],
                               "bones": [[i, 0] for i in range(1, 15)]})


def test_layouts_named_by_the_caller(tmp_path):
    frame = fixture("openpose18_000000000000_keypoints.json")
    frame["people"][0]["pose_keypoints_2d"] = frame["people"][0]["pose_keypoints_2d"][:45]
    path = tmp_path / "mpi_000000000000_keypoints.json"
    path.write_text(json.dumps(frame))
    with pytest.raises(SkeletonFormatError, match="15 joints: expected 25 .* or 18"):
        read_keypoints(path)
    assert read_keypoints(path, layout=MPI15).layout is MPI15
    with pytest.raises(SkeletonFormatError, match="layout coco17 has 17 joints, the file 15"):
        read_keypoints(path, layout=COCO17)


def test_mmpose_3d_and_unknown_datasets_need_a_layout(tmp_path):
    lifted = [{"frame_id": 0, "instances": [{"keypoints": [[0.1, 0.2, 0.9]] * 17,
                                             "keypoint_scores": [1.0] * 17, "track_id": 0}]}]
    path = tmp_path / "lifted.json"
    path.write_text(json.dumps(lifted))
    with pytest.raises(SkeletonFormatError, match="3-D keypoints of 17 joints .*Human3.6M"):
        read_keypoints(path)
    h36m = JointLayout.from_dict({"name": "h36m17", "joints": [f"j{i}" for i in range(17)],
                                  "bones": [[i, 0] for i in range(1, 17)]})
    kp = read_keypoints(path, layout=h36m)
    assert kp.coords.shape == (1, 1, 17, 3) and kp.units == "m"
    halpe = fixture("mmpose_demo.json")
    halpe["meta_info"]["keypoint_id2name"]["17"] = "head"
    path.write_text(json.dumps(halpe))
    with pytest.raises(SkeletonFormatError, match="meta_info.keypoint_id2name"):
        read_keypoints(path)  # 18 names for 17 keypoints
    halpe["meta_info"]["keypoint_id2name"] = {"0": "head", **{str(i): f"k{i}" for i in
                                                              range(1, 17)}}
    path.write_text(json.dumps(halpe))
    with pytest.raises(SkeletonFormatError, match="match no built-in layout"):
        read_keypoints(path)


def _mmpose(keypoints, **extra):
    return {"instance_info": [{"frame_id": 0, "instances": [{"keypoints": keypoints, **extra}]}]}


COCO_XY = [[1.0, 2.0]] * 17


@pytest.mark.parametrize(("doc", "match"), [
    ({"instance_info": "x"}, "'instance_info' to be a list"),
    ({"instance_info": []}, "1..131,072 frames"),
    ({"instance_info": [[1]]}, "frame 0: expected"),
    ({"instance_info": [{"instances": [{"bbox": []}]}]}, "frame 0 instance 0: expected .*keypo"),
    (_mmpose("x"), "frame 0 instance 0 keypoints: expected a list"),
    (_mmpose([[1.0, "a"]] * 17), "every joint to be a list of 2 or 3 numbers"),
    (_mmpose([[1.0, 2.0, 3.0, 4.0]] * 17), "joints of 2 or 3 numbers"),
    (_mmpose([[1e9, 2.0]] * 17), "magnitude"),
    (_mmpose(COCO_XY, keypoint_scores=[0.5] * 16), "expected 17 scores"),
    (_mmpose(COCO_XY, keypoint_scores="high"), "expected 17 scores"),
    ({"instance_info": [{"instances": []}]}, "no person in any of the 1 frames"),
    ({"instance_info": [{"instances": [{"keypoints": COCO_XY},
                                       {"keypoints": [[1.0, 2.0]] * 5}]}]}, "different joint"),
])
def test_bad_mmpose_documents_are_named(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SkeletonFormatError, match=match) as info:
        read_keypoints(path, "mmpose")
    assert str(path) in str(info.value)


def _landmarks(n=33, **mark):
    return [{"x": 0.1, "y": 0.2, "z": 0.3, "visibility": 0.9, **mark}] * n


@pytest.mark.parametrize(("doc", "match"), [
    ({"frames": []}, "1..131,072 frames"),
    ([{"pose_landmarks": [_landmarks(32)]}], "expected 33 landmarks, got 32"),
    ([{"pose_landmarks": [_landmarks(x="left")]}], "landmark 0: expected numbers"),
    ([{"pose_landmarks": [_landmarks(visibility=True)]}], "landmark 0: expected numbers"),
    ([{"pose_landmarks": "abc"}], "expected a list of landmark lists"),
    ([{"pose_landmarks": [[1, 2]]}], "frame 0 pose_landmarks person 0: expected 33 landm"),
    ([3], "frame 0: expected an object"),
    ([{"pose_landmarks": [_landmarks(x=1e300)]}], "magnitude"),
])
def test_bad_mediapipe_documents_are_named(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SkeletonFormatError, match=match):
        read_keypoints(path, "mediapipe")


@pytest.mark.parametrize(("people", "match"), [
    ("x", 'expected an OpenPose frame'),
    ([3], r"people\[0\]: expected an object"),
    ([{"pose_keypoints_2d": [1.0, 2.0]}], "x, y, c for each"),
    ([{"pose_keypoints_2d": [1.0, 2.0, "c"] * 25}], "expected numbers"),
    ([{"pose_keypoints_2d": [1.0, 2.0, 0.5] * 25, "person_id": ["a"]}], "person_id"),
])
def test_bad_openpose_frames_are_named(tmp_path, people, match):
    path = tmp_path / "v_000000000000_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    with pytest.raises(SkeletonFormatError, match=match):
        read_keypoints(tmp_path)


def test_bad_openpose_folders_are_named(tmp_path, monkeypatch):
    with pytest.raises(SkeletonFormatError, match="is a directory without OpenPose"):
        read_keypoints(tmp_path)
    for name in ("a_000000000000_keypoints.json", "b_000000000000_keypoints.json"):
        shutil.copy(POSE / "openpose_body25" / "clip_000000000000_keypoints.json",
                    tmp_path / name)
    with pytest.raises(SkeletonFormatError, match="frames of 2 videos"):
        read_keypoints(tmp_path)
    (tmp_path / "b_000000000000_keypoints.json").rename(tmp_path / "b_keypoints.json")
    with pytest.raises(SkeletonFormatError, match="b_keypoints.json: expected a name"):
        read_keypoints(tmp_path)
    (tmp_path / "b_keypoints.json").unlink()
    monkeypatch.setattr(openpose_module, "MAX_FOLDER_BYTES", 100)
    with pytest.raises(SkeletonFormatError, match="more than the limit of 100"):
        read_keypoints(tmp_path)


@pytest.mark.parametrize("text", ['{"instance_info": [{"instances": [NaN]}]}', "[" * 40 + "]" * 40,
                                  '{"people": [], "version": 1' + "0" * 100 + "}"])
def test_json_that_is_not_json_or_too_deep_is_refused(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(SkeletonFormatError, match="x.json: expected JSON"):
        read_keypoints(path)


def _peak(read) -> int:
    tracemalloc.start()
    try:
        read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_many_short_tracks_are_refused_before_the_dense_array_is_made(tmp_path):
    """8,000 frames, each with a new track: the 64 kept tracks x 8,000 frames x 17 joints x 2
    would be 17.4M numbers, over the limit; refused with memory a small multiple of the file,
    the dense array never made."""
    frames = [{"frame_id": t, "instances": [{"keypoints": [[1, 2]] * 17, "track_id": t}]}
              for t in range(8_000)]
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps(frames, separators=(",", ":")))
    size = path.stat().st_size

    def read():
        with pytest.raises(SkeletonFormatError, match="more than the limit"):
            read_keypoints(path)

    peak = _peak(read)
    assert peak < 64 * size + (4 << 20), (peak, size)


@pytest.mark.parametrize("name", ["mmpose_demo.json", "mediapipe_tasks.json",
                                  "openpose_body25"])
def test_reading_costs_a_small_multiple_of_the_input(name):
    path = POSE / name
    size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
    assert _peak(lambda: read_keypoints(path)) < 64 * size + (1 << 20)
