"""Joint layouts: the facts of ../shared/data/README.md and of the pose estimators' own
documentation, cross-layout mapping by name with derived joints, and user layouts from JSON."""

import json

import numpy as np
import pytest

from restcn_infer.errors import LayoutError
from restcn_infer.layouts import (
    BUILTIN_LAYOUTS,
    COCO17,
    KINECT20,
    LAYOUTS,
    MEDIAPIPE33,
    NTU25,
    OPENPOSE18,
    OPENPOSE25,
    JointLayout,
    get_layout,
    joint_map,
    layout_for_joints,
    layout_mapping,
    layouts_with_joints,
    resolve_layout,
)


@pytest.mark.parametrize("layout", list(BUILTIN_LAYOUTS.values()), ids=list(BUILTIN_LAYOUTS))
def test_bones_form_one_tree(layout):
    # V joints connected by V-1 distinct bones, every joint reached from joint 0.
    assert len(layout.bones) == layout.num_joints - 1
    adjacency = {j: set() for j in range(layout.num_joints)}
    for child, parent in layout.bones:
        adjacency[child].add(parent)
        adjacency[parent].add(child)
    seen, todo = {0}, [0]
    while todo:
        for nxt in adjacency[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(range(layout.num_joints))


def test_ntu25_facts_from_the_dataset_readme():
    assert NTU25.num_joints == 25
    assert NTU25.joint_names[7] == "HandLeft" and NTU25.joint_names[20] == "SpineShoulder"
    assert set(NTU25.groups["left_hand"]) == {6, 7, 21, 22}
    assert set(NTU25.groups["right_hand"]) == {10, 11, 23, 24}
    assert (21, 7) in NTU25.bones and (3, 2) in NTU25.bones  # HandTipLeft->HandLeft, Head->Neck


def test_kinect20_hands_and_arms():
    assert set(KINECT20.groups["hands"]) == {6, 7, 10, 11}
    assert set(KINECT20.groups["arms"]) == {5, 6, 7, 9, 10, 11}


def test_ntu25_maps_onto_kinect20_by_name():
    index = joint_map(NTU25, KINECT20)
    names = [NTU25.joint_names[i] for i in index]
    assert names[0] == "SpineBase" and names[1] == "SpineMid" and names[2] == "SpineShoulder"
    assert names[4:] == list(KINECT20.joint_names[4:])


def test_kinect20_cannot_provide_ntu25_hand_tips():
    with pytest.raises(ValueError, match="HandTipLeft"):
        joint_map(KINECT20, NTU25)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("hands", (6, 7, 10, 11)), ("7, 6", (6, 7)), ([11, 10, 10], (10, 11))],
)
def test_resolve_joints(spec, expected):
    assert KINECT20.resolve_joints(spec) == expected


@pytest.mark.parametrize("spec", ["feet", "3,99", "", [-1]])
def test_resolve_joints_refuses_bad_specs(spec):
    with pytest.raises(ValueError):
        KINECT20.resolve_joints(spec)


def test_lookup_errors_name_the_choices():
    with pytest.raises(ValueError, match="kinect20"):
        get_layout("h36m17")
    with pytest.raises(ValueError, match="19 joints.*coco17 \\(17\\)"):
        layout_for_joints(19)
    assert layout_for_joints(25) is NTU25
    assert np.array_equal(joint_map(NTU25, NTU25), np.arange(25))


@pytest.mark.parametrize("layout", list(BUILTIN_LAYOUTS.values()), ids=list(BUILTIN_LAYOUTS))
def test_groups_split_the_body_and_names_are_unique(layout):
    g = {name: set(joints) for name, joints in layout.groups.items()}
    assert g["arms"] | g["legs"] | g["torso"] == set(range(layout.num_joints))
    assert not (g["arms"] & g["legs"] or g["arms"] & g["torso"] or g["legs"] & g["torso"])
    assert g["hands"] == g["left_hand"] | g["right_hand"] and g["hands"] <= g["arms"]
    canonical = [layout.canonical_name(j) for j in range(layout.num_joints)]
    assert len(set(canonical)) == layout.num_joints
    assert JointLayout.from_dict(json.loads(json.dumps(layout.to_dict()))) is layout


@pytest.mark.parametrize(("layout", "index", "name", "canonical"), [
    (COCO17, 5, "left_shoulder", "ShoulderLeft"),  # MMPose / RTMPose / YOLO-pose order
    (COCO17, 16, "right_ankle", "AnkleRight"),
    (OPENPOSE25, 1, "Neck", "SpineShoulder"),  # BODY_25: the shoulder midpoint
    (OPENPOSE25, 8, "MidHip", "SpineBase"),
    (OPENPOSE25, 21, "LHeel", "HeelLeft"),
    (OPENPOSE18, 13, "LAnkle", "AnkleLeft"),
    (MEDIAPIPE33, 0, "nose", "Nose"),
    (MEDIAPIPE33, 31, "left_foot_index", "FootIndexLeft"),
    (MEDIAPIPE33, 4, "right_eye_inner", "EyeInnerRight"),
    (KINECT20, 0, "HipCenter", "SpineBase"),
])
def test_pose_estimator_orders_and_canonical_names(layout, index, name, canonical):
    assert layout.joint_names[index] == name and layout.canonical_name(index) == canonical


def test_a_shared_joint_count_means_one_layout_and_the_others_must_be_named():
    assert {lay.name for lay in layouts_with_joints(25)} == {"ntu25", "openpose25"}
    assert layout_for_joints(25) is NTU25 and layout_for_joints(17) is COCO17
    assert "openpose25" not in LAYOUTS and get_layout("openpose25") is OPENPOSE25
    counts = [lay.num_joints for lay in LAYOUTS.values()]
    assert len(counts) == len(set(counts))


def test_openpose_maps_onto_coco_by_name():
    names = [OPENPOSE25.joint_names[i] for i in joint_map(OPENPOSE25, COCO17)]
    assert names[:7] == ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder"]


def test_derived_joints_average_the_joints_present():
    mapping = layout_mapping(MEDIAPIPE33, KINECT20)
    assert mapping.index is None
    assert mapping.derived["HipCenter"] == ("left_hip", "right_hip")
    x = np.random.default_rng(0).normal(size=(2, 3, 33, 3)).astype(np.float32)  # (M, T, V, 3)
    x[0, 1, 24] = 0  # right hip missing in one frame
    x[0, 2, [23, 24]] = 0  # both hips missing
    out = mapping.apply(x)
    assert out.shape == (2, 3, 20, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 0, 0], (x[1, 0, 23] + x[1, 0, 24]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1, 0], x[0, 1, 23])  # the hip that is there
    np.testing.assert_array_equal(out[0, 2, 0], 0)  # none there: absent, not a half-position
    np.testing.assert_array_equal(out[..., 4, :], x[..., 11, :])  # ShoulderLeft copied
    scores = np.linspace(0.1, 0.9, 33, dtype=np.float32)
    assert mapping.apply_scores(scores)[0] == pytest.approx(scores[23])  # min of the two hips


def test_derived_joints_work_for_2d_keypoints():
    xy = np.random.default_rng(1).uniform(size=(1, 4, 17, 2)).astype(np.float32)
    out = layout_mapping(COCO17, OPENPOSE18).apply(xy)  # OpenPose's Neck: the shoulder centre
    assert out.shape == (1, 4, 18, 2)
    np.testing.assert_allclose(out[0, :, 1], (xy[0, :, 5] + xy[0, :, 6]) / 2, rtol=1e-6)


def test_joint_map_refuses_what_only_derivation_gives():
    with pytest.raises(LayoutError, match="HipCenter.*layout_mapping"):
        joint_map(MEDIAPIPE33, KINECT20)
    with pytest.raises(LayoutError, match="HandLeft"):  # OpenPose has no hands to derive from
        layout_mapping(OPENPOSE25, KINECT20)


USER = {"name": "my_layout", "joints": ["pelvis", "chest", "head", "l_hand", "r_hand"],
        "bones": [["chest", "pelvis"], ["head", "chest"], [3, 1], ["r_hand", "chest"]],
        "groups": {"hands": ["l_hand", "r_hand"]},
        "aliases": {"pelvis": "SpineBase", "chest": "SpineShoulder", "head": "Head",
                    "l_hand": "HandLeft", "r_hand": "HandRight"}}


def test_a_user_layout_from_json(tmp_path):
    path = tmp_path / "my_layout.json"
    path.write_text(json.dumps(USER))
    layout = resolve_layout(str(path))
    assert layout.name == "my_layout" and layout.bones == ((1, 0), (2, 1), (3, 1), (4, 1))
    assert layout.resolve_joints("hands") == (3, 4) and layout.canonical_name(0) == "SpineBase"
    assert JointLayout.from_dict(layout.to_dict()) == layout
    derived = layout_mapping(MEDIAPIPE33, layout).derived
    assert derived == {"pelvis": ("left_hip", "right_hip"),
                       "chest": ("left_shoulder", "right_shoulder"),
                       "head": ("left_ear", "right_ear"),
                       "l_hand": ("left_pinky", "left_index"),
                       "r_hand": ("right_pinky", "right_index")}


@pytest.mark.parametrize(("change", "match"), [
    ({"name": "a b"}, "field 'name' must be 1-64 letters"),
    ({"joints": ["a", "a"]}, "field 'joints' repeats"),
    ({"joints": []}, "1..1024 joints"),
    ({"bones": [["chest", "pelvis"], ["head", "chest"], [3, 1]]}, "one tree with 4"),
    ({"bones": [["chest", "pelvis"], ["head", "chest"], [3, 1], [3, 2]]}, "two parents"),
    ({"bones": [["chest", "head"], ["head", "chest"], [3, 1], [4, 1]]}, "cycle"),
    ({"bones": [["chest", "pelvis"], ["head", "chest"], [3, 1], ["toe", 1]]}, "'toe'"),
    ({"bones": [["chest", "pelvis"], ["head", "chest"], [3, 1], [9, 1]]}, "index 0..4"),
    ({"bones": [["chest", "chest"]]}, "to itself"),
    ({"bones": "chest-pelvis"}, "field 'bones' must be a list"),
    ({"groups": {"hands": []}}, "groups.hands' must be a non-empty"),
    ({"groups": {"hands": ["foot"]}}, "'foot'"),
    ({"aliases": {"foot": "FootLeft"}}, "'foot', which is not one of the joints"),
    ({"aliases": {"pelvis": "SpineBase", "chest": "SpineBase"}}, r"same name \['SpineBase'\]"),
    ({"aliases": {"pelvis": 3}}, "must be a non-empty string"),
    ({"name": "ntu25"}, "built-in layout"),
])
def test_bad_user_layouts_are_named(tmp_path, change, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**USER, **change}))
    with pytest.raises(LayoutError, match=match) as info:
        resolve_layout(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("content", "match"), [
    (b"{", "expected a JSON layout"), (b"[1, 2]", "must be a JSON object"),
    (b"[" * 100 + b"]" * 100, "nested"), (b" " * (1 << 20) + b"{}", "limit"),
])
def test_layout_files_that_are_not_layouts(tmp_path, content, match):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(LayoutError, match=match):
        resolve_layout(path)


def test_layout_names_and_paths(tmp_path):
    assert resolve_layout("coco17") is COCO17
    with pytest.raises(LayoutError, match=r"expected one of \[.*\] or a layout .json file"):
        resolve_layout("h36m")
    with pytest.raises(LayoutError, match="cannot read"):
        resolve_layout(tmp_path / "missing.json")
    path = tmp_path / "my.json"
    path.write_text(json.dumps(USER))
    with pytest.raises(LayoutError, match="unknown joint layout"):
        get_layout(str(path))  # a name inside a data file never opens a file
