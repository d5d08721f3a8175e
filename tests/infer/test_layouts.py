"""Joint layouts: the facts of ../shared/data/README.md, and cross-layout mapping by name."""

import numpy as np
import pytest

from restcn_infer.layouts import KINECT20, LAYOUTS, NTU25, get_layout, joint_map, layout_for_joints


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
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
        get_layout("coco17")
    with pytest.raises(ValueError, match="17 joints"):
        layout_for_joints(17)
    assert layout_for_joints(25) is NTU25
    assert np.array_equal(joint_map(NTU25, NTU25), np.arange(25))
