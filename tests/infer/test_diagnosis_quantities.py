"""Each quantity of the diagnosis on inputs whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from restcn_infer.diagnosis import (
    Sums,
    decoded_separability,
    display_scale,
    emphasis,
    pooled,
    response_signatures,
    view_invariance,
)
from restcn_infer.finding import find_target, weak_classes
from restcn_infer.layouts import KINECT20
from restcn_infer.motion import joint_motion_energy, reference_joints
from restcn_infer.preprocess import window_frames
from restcn_infer.sample_names import recording

HANDS = list(KINECT20.groups["hands"])
TORSO = reference_joints(KINECT20)


def still_body(frames: int = 20, seed: int = 0) -> np.ndarray:
    """(1, T, 20, 3): one body standing still."""
    pose = np.random.default_rng(seed).normal(0, 0.3, (1, 1, 20, 3)) + [0, 1, 3]
    return np.repeat(pose, frames, axis=1)


def test_motion_is_relative_to_the_torso_and_counts_only_present_joints():
    seq = still_body()
    wave = 0.1 * np.sin(np.linspace(0, 6, 20))[:, None]  # (T, 1)
    seq[0, :, HANDS, 0] += wave.T  # the hands move along x
    moved = seq + np.linspace(0, 2, 20)[None, :, None, None] * [1, 0, 0]  # walking: all move
    e, e_walk = joint_motion_energy(seq, TORSO), joint_motion_energy(moved, TORSO)
    np.testing.assert_allclose(e_walk, e, atol=1e-12)  # whole-body translation is not motion
    expected = np.square(np.diff(wave[:, 0])).sum()
    np.testing.assert_allclose(e[HANDS], expected)
    assert np.all(e[[j for j in range(20) if j not in HANDS]] < 1e-20)
    gone = seq.copy()
    gone[0, 10:, HANDS] = 0.0  # the hands not tracked from frame 10 on
    assert joint_motion_energy(gone, TORSO)[HANDS[0]] < e[HANDS[0]]


def test_display_scale_makes_a_layer_move_as_much_as_the_input():
    sums = Sums(input_energy=[np.full(20, 2.0), np.full(20, 1.0)],
                decoded_energy=[np.stack([np.full(20, 8.0), np.full(20, 0.5)]),
                                np.stack([np.full(20, 4.0), np.full(20, 0.25)])])
    np.testing.assert_allclose(display_scale(sums), [0.5, 2.0])  # sqrt(3 / 12), sqrt(3 / 0.75)


def test_emphasis_is_the_amplitude_ratio_at_the_display_scale():
    energy_in = np.array([[1.0, 4.0, 0.0]])  # (C, G): a group that never moves
    energy_dec = np.array([[[4.0, 4.0, 1.0]]])  # (C, L, G)
    out = emphasis(energy_in, energy_dec, np.array([0.5]))
    np.testing.assert_allclose(out[0, 0, :2], [1.0, 0.5])  # 0.5 * sqrt(4/1), 0.5 * sqrt(4/4)
    assert np.isnan(out[0, 0, 2])  # undefined where the input is still


def test_response_signature_strength_and_selectivity():
    responses = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.6, 0.4, 0.5, 0.5]])
    out = response_signatures(responses, np.array([0, 1, 1]), 3)
    np.testing.assert_allclose(out["selectivity"][:2], [1.0, 0.0], atol=0.01)  # near uniform
    np.testing.assert_allclose(out["strength"][:2], [0.25, 0.5])
    assert np.all(np.isnan(out["signature"][2]))  # no sequence of class 2
    mean = responses[1:].mean(axis=0)
    assert out["similarity"][0, 1] == pytest.approx(mean[0] / np.linalg.norm(mean))


def class_sums(features_by_class: dict[int, np.ndarray]) -> Sums:
    """Sums from (n, L+1, F) features per class, as the measurement pass keeps them."""
    sums = Sums()
    for c, f in features_by_class.items():
        sums.class_sum[c], sums.class_count[c] = f.sum(axis=0), len(f)
        sums.class_sumsq[c] = np.square(f).sum(axis=(0, 2))
    return sums


def test_separability_falls_where_a_layer_merges_two_classes():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (30, 3, 8))
    b = rng.normal(0, 0.1, (30, 3, 8))
    b[:, 0] += 1.0  # the input tells the classes apart
    b[:, 1] += 1.0  # so does layer 1; layer 2 maps both to the same place
    ratio = decoded_separability(class_sums({0: a, 1: b}), 0, 1)
    assert ratio[0] > 5 and ratio[1] == pytest.approx(ratio[0], rel=0.2) and ratio[2] < 1


def test_view_invariance_compares_two_views_of_one_performance():
    sums = Sums()
    x1, x2 = np.zeros((3, 6)), np.ones((3, 6))
    x2[1:] = 0.0  # layers 1 and 2 see both views alike
    sums.views = {"a01_s01_e00": [("v01", 0, x1), ("v02", 0, x2)], "lonely": [("v01", 0, x1)]}
    out = view_invariance(sums, np.array([1.0, 1.0]))
    assert out["pairs"] == 1 and out["input_distance"] == pytest.approx(np.sqrt(6))
    np.testing.assert_allclose(out["ratio"], [0.0, 0.0])
    assert view_invariance(Sums(views={"p": [("v01", 0, x1), ("v01", 0, x2)]}), np.ones(2)) is None


def test_view_invariance_per_class_tells_an_invariant_action_from_one_that_is_not():
    alike, apart = np.ones((3, 6)), np.ones((3, 6))
    apart[0] = 3.0  # the input differs between views by 2 per feature...
    apart[1:] = 3.0  # ...and class 1's layers keep that difference: not view-invariant
    invariant = np.ones((3, 6))
    invariant[0] = 3.0  # class 0: the input differs too, its layers map both views alike
    sums = Sums(views={"a01_s01_e00": [("v01", 0, alike), ("v02", 0, invariant)],
                       "a02_s01_e00": [("v01", 1, alike), ("v02", 1, apart)],
                       "a02_s01_e01": [("v01", 1, alike), ("v03", 1, apart)]})
    out = view_invariance(sums, np.array([1.0, 1.0]))
    np.testing.assert_allclose(out["per_class"][0]["ratio"], [0.0, 0.0])
    np.testing.assert_allclose(out["per_class"][1]["ratio"], [1.0, 1.0])
    assert out["per_class"][1]["pairs"] == 2 and out["pairs"] == 3
    np.testing.assert_allclose(out["ratio"], [2 / 3, 2 / 3])  # pooled over all three pairs


def test_view_pairs_are_taken_from_every_class_in_turn():
    from restcn_infer.diagnosis import _performances_with_views

    names, labels = [], []
    for action, count in ((1, 40), (2, 3), (3, 40)):  # class 1 has few performances
        for e in range(count):
            for view in (1, 2):
                names.append(f"a{action:02d}_s01_e{e:02d}_v{view:02d}")
                labels.append(action - 1)
    names.append("a04_s01_e00_v01")  # one view only: no pair
    labels.append(3)
    chosen = _performances_with_views(names, labels, 12)
    per_action = {a: sum(p.startswith(f"a{a:02d}") for p in chosen) for a in (1, 2, 3, 4)}
    assert per_action == {1: 5, 2: 3, 3: 4, 4: 0}  # not the first 12 performances of a01


def test_pooled_features_ignore_translation_and_absent_points():
    seq = still_body(16)
    present = np.any(seq != 0, axis=-1)
    np.testing.assert_allclose(pooled(seq + [5.0, 0, 0], present), pooled(seq, present),
                               atol=1e-12)


@pytest.mark.parametrize("name, view, performance", [
    ("S001C002P003R002A013", "C002", "S001P003R002A013"),
    ("a01_s01_e02_v03", "v03", "a01_s01_e02"),
    ("a10_s1_t1", None, None),
])
def test_sample_names_give_view_and_performance(name, view, performance):
    rec = recording(name)
    assert (rec.view, rec.performance) == (view, performance) if view else rec is None


def test_window_frames_are_the_recordings_frames():
    seq = np.zeros((1, 12, 20, 3))
    seq[0, 2:10] = 1.0  # frames 2..9 have a body
    np.testing.assert_allclose(window_frames(seq, 15), np.linspace(2, 9, 15))
    padded = window_frames(seq, 10, "pad")
    np.testing.assert_allclose(padded[:8], np.arange(2, 10))
    assert np.all(np.isnan(padded[8:]))


def test_weak_classes_are_clearly_below_the_rest():
    accuracy = np.array([0.95, 0.9, 0.5, 0.92, 0.85, 0.3])
    assert weak_classes(accuracy, np.ones(6)) == [5, 2]
    assert weak_classes(np.full(6, 0.9), np.ones(6)) == []


def finding_inputs(hand_emphasis: float):
    """Two classes; class 1 is weak, moves mostly its hands, and the layers play them down."""
    groups = {"hands": (6, 7, 10, 11), "legs": (12, 13, 14, 15), "arms": (5, 6, 7, 9, 10, 11)}
    energy = np.array([[0.1, 0.8, 0.2], [0.7, 0.1, 0.8]])  # (C, G)
    emph = np.ones((2, 3, 3))  # (C, L, G)
    emph[:, :, 0] = hand_emphasis
    emph[:, :, 2] = 0.5 * (1 + hand_emphasis)
    total = np.array([1.0, 1.6])  # all joints of each class
    return (["kick", "wave"], np.array([0.95, 0.4, ]), np.array([10, 10]), groups, energy, total,
            emph)


def test_the_finding_names_the_group_the_weak_class_moves_and_the_model_plays_down():
    found = find_target(*finding_inputs(0.3))
    assert found.weak_classes == ["wave"] and found.group == "hands"
    assert found.joints == [6, 7, 10, 11] and "wave" in found.reason
    evidence = {e["group"]: e for e in found.evidence}
    assert evidence["hands"]["qualifies"] and not evidence["legs"]["qualifies"]
    assert evidence["hands"]["share"] == pytest.approx(0.7 / 1.6)


def test_nothing_stands_out_when_the_layers_emphasise_every_group_alike():
    found = find_target(*finding_inputs(1.0))
    assert found.weak_classes == ["wave"] and found.group is None and found.joints == []
    assert found.reason.startswith("nothing stands out")
