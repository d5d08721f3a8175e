"""Input plausibility: the envelope of the training data, the verdicts, the fixes they name, and
the bundled model refusing the issue's cases (cm, mm, pixels, y down, OpenPose read as ntu25)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body25, body_sequence, pose
from conftest import REPO
from restcn_cli.infer import app
from restcn_infer.classifier import Classifier
from restcn_infer.envelope import (
    DEFAULT_SCALE,
    Envelope,
    default_envelope,
    envelope_of,
    envelope_of_split,
    measure,
)
from restcn_infer.errors import ModelError
from restcn_infer.input_options import InputOptions, InputOptionsError
from restcn_infer.layouts import KINECT20, NTU25, get_layout
from restcn_infer.plausibility import ImplausibleInputError, InputChecker
from restcn_infer.spec import InputSpec, ModelSpec

EXAMPLE = REPO / "examples" / "nw_ucla_throw.npy"
runner = CliRunner()


@pytest.fixture(scope="module")
def bundled():
    return Classifier(None, device="cpu", threads=1)


@pytest.fixture(scope="module")
def throw() -> np.ndarray:
    return np.load(EXAMPLE).astype(np.float32)  # (1, T, 20, 3), metres


# -- the envelope -------------------------------------------------------------------------------

def test_measures_of_a_standing_body():
    found = measure(body_sequence(30), KINECT20)
    assert 0.15 < found.scale < 0.3  # metres: a human's median bone
    assert found.up @ np.array([0, 1, 0]) > 0.95  # head above the hips
    assert abs(found.centre[2] - 3.0) < 0.1 and found.depth_ratio > 0.05
    assert found.bone_ratios.shape == (len(KINECT20.bones),)


def test_absent_joints_and_bodies_are_not_measured():
    seq = body_sequence(10, bodies=2)
    seq[1] = 0.0  # the second body is absent
    seq[0, :, 3] = 0.0  # and the head untracked
    found = measure(seq, KINECT20)
    assert found.scale == pytest.approx(measure(seq[:1], KINECT20).scale)
    assert found.up is None  # no head in any frame: the vertical axis is unknown, not guessed
    empty = measure(np.zeros((1, 5, 20, 3), np.float32), KINECT20)
    assert empty.scale is None and empty.centre is None


def test_envelope_of_training_sequences_round_trips_through_json():
    env = envelope_of([body_sequence(30, seed=s) for s in range(20)], KINECT20)
    assert env.origin == "training data" and env.sequences == 20
    assert env.scale[0] <= env.scale[1] <= env.scale[2]
    assert Envelope.from_dict(json.loads(json.dumps(env.to_dict()))) == env


def test_envelope_of_a_split_measures_at_most_the_limit():
    class Split:
        calls = []

        def __len__(self):
            return 100

        def sequence(self, i):
            self.calls.append(i)
            return body_sequence(12, seed=i)

    split = Split()
    env = envelope_of_split(split, KINECT20, limit=7)
    assert env.sequences == 7 and split.calls == [0, 16, 33, 50, 66, 82, 99]


@pytest.mark.parametrize("raw, match", [
    ({"origin": "x", "sequences": 1}, "scale"),
    ({"scale": [0.3, 0.2, 0.1]}, "0 < p1"),
    ({"scale": [0.1, 0.2, 0.3], "up": [0, 1]}, "3 numbers"),
    ({"scale": [0.1, 0.2, 0.3], "up_cos_p1": "high"}, "finite number"),
    ({"scale": [0.1, 0.2, 0.3], "centre_low": [0, 0, 0]}, "both centre"),
    ([1, 2], "JSON object"),
])
def test_malformed_envelopes_are_model_errors(raw, match):
    with pytest.raises(ModelError, match=match):
        Envelope.from_dict(raw)


def test_a_spec_refuses_an_envelope_of_another_layout():
    spec_input = InputSpec(layout=KINECT20, bodies=1, window=8)
    env = Envelope("training data", 1, (0.1, 0.2, 0.3), bone_ratios=(1.0,) * 5)
    with pytest.raises(ModelError, match="bone_ratios has 5 values"):
        ModelSpec("res-tcn", spec_input, ("a", "b"), (0.0,) * 60, envelope=env)
    good = env.__class__("training data", 1, (0.1, 0.2, 0.3),
                         bone_ratios=(1.0,) * len(KINECT20.bones))
    spec = ModelSpec("res-tcn", spec_input, ("a", "b"), (0.0,) * 60, envelope=good)
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_default_envelope_uses_a_mean_that_looks_like_a_body():
    from_body = default_envelope(pose().ravel(), KINECT20, 1)
    assert from_body.origin == "mean skeleton" and from_body.up is not None
    noise = np.random.default_rng(0).normal(0, 0.3, 60)  # an untrained model's mean
    assert default_envelope(noise, KINECT20, 1).origin == "default"
    assert default_envelope(pose().ravel(), KINECT20, 1, joint_modality=False).up is None
    assert from_body.scale == DEFAULT_SCALE


def test_a_model_without_a_stored_envelope_derives_it_from_its_mean(bundled):
    old = Classifier("ms-res-tcn", device="cpu", threads=1)  # exported before envelopes
    env = old.checker.envelope
    assert env.origin == "mean skeleton" and env.up[1] > 0.9  # Kinect: y up
    assert old.spec.envelope is None  # format 1: nothing stored
    assert bundled.spec.envelope is not None  # the default stores its training data's
    stored = bundled.checker.envelope
    assert stored.origin == "training data" and stored.up[1] > 0.9


# -- verdicts -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checker() -> InputChecker:
    env = envelope_of([body_sequence(30, seed=s) for s in range(30)], KINECT20)
    spec = ModelSpec("res-tcn", InputSpec(layout=KINECT20, bodies=1, window=16), ("a", "b"),
                     (0.0,) * 60, envelope=env)
    return InputChecker(spec)


@pytest.mark.parametrize("change, words", [
    (lambda s: s * 100, "looks like centimetres: pass --units cm"),
    (lambda s: s * 1000, "looks like millimetres: pass --units mm"),
    (lambda s: s * 10, "check the input's units"),
    (lambda s: s * np.float32([1, -1, 1]), "y axis looks inverted (image-style, y down): pass "
                                           "--flip-y"),
    (lambda s: s[..., [1, 0, 2]], "rotate the coordinates"),
    (lambda s: np.concatenate([s[..., :2] * 400 + 500, np.full(s.shape[:-1] + (1,), 0.8,
                                                               np.float32)], -1),
     "2-D image keypoints"),
    (lambda s: s + np.float32([0, 0, 20]), "lies outside the training positions"),
    (lambda s: s[:, :, np.random.default_rng(1).permutation(20)], "do not fit layout kinect20"),
], ids=["cm", "mm", "dm", "y-down", "axes-swapped", "pixels", "far-away", "shuffled"])
def test_implausible_inputs_say_what_looks_wrong_and_how_to_fix_it(checker, change, words):
    verdict = checker.verdict(change(body_sequence(30, seed=99)))
    assert not verdict.plausible and len(verdict.problems) >= 1
    assert any(words in p for p in verdict.problems), verdict.problems


def test_a_plausible_input_passes_every_check(checker):
    verdict = checker.verdict(body_sequence(30, seed=99), guessed=True)
    assert verdict.plausible and verdict.problems == ()
    assert set(verdict.checked) == {"depth", "joints", "units", "axis", "position"}
    assert verdict.to_json()["layout_guessed"] is True


def test_check_refuses_unless_accepted(checker):
    mm = body_sequence(30) * 1000
    with pytest.raises(ImplausibleInputError, match="--accept-implausible") as info:
        checker.check(mm, source="a.npy")
    assert str(info.value).startswith("a.npy: the body is")
    lenient = InputChecker.__new__(InputChecker)
    lenient.__dict__.update(checker.__dict__, accept_implausible=True)
    verdict = lenient.check(mm, source="a.npy")
    assert verdict.accepted and not verdict.plausible
    assert verdict.to_json()["accepted_implausible"] is True


def test_coordinates_beyond_any_unit_are_refused_even_when_accepting(checker):
    lenient = InputChecker.__new__(InputChecker)
    lenient.__dict__.update(checker.__dict__, accept_implausible=True)
    with pytest.raises(Exception, match="beyond 1e\\+06 in any unit"):
        lenient.check(body_sequence(5) * 3e37, source="a.npy")


def test_openpose_body25_read_as_ntu25_is_refused_as_a_wrong_guess():
    ntu = body_sequence(40, "ntu25")
    env = envelope_of([body_sequence(40, "ntu25", seed=s) for s in range(20)], NTU25)
    spec = ModelSpec("res-tcn", InputSpec(layout=NTU25, bodies=1, window=16), ("a", "b"),
                     (0.0,) * 75, envelope=env)
    verdict = InputChecker(spec).verdict(body25(ntu), layout="ntu25", guessed=True)
    assert not verdict.plausible
    [problem] = verdict.problems  # the joint order, nothing measured on the wrong joints
    assert "do not fit layout ntu25" in problem and "guessed from the joint count" in problem
    assert "--layout" in problem


# -- input options ------------------------------------------------------------------------------

def test_input_options_convert_units_and_axis():
    seq = body_sequence(5) * 100
    options = InputOptions(units="cm", flip_y=True)
    out = options.convert(seq)
    np.testing.assert_allclose(out[..., 0], seq[..., 0] / 100, rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], -seq[..., 1] / 100, rtol=1e-6)
    assert options.describe() == "cm -> m, y flipped"
    zeros = np.zeros((1, 2, 20, 3), np.float32)
    assert not np.any(options.convert(zeros) != 0)  # absent joints stay absent
    assert InputOptions().convert(seq) is seq
    with pytest.raises(InputOptionsError, match="unknown units"):
        InputOptions(units="inch")
    assert InputOptions.from_names("ntu25").layout is get_layout("ntu25")


# -- the bundled model: the cases ------------------------------------------------------

@pytest.mark.parametrize("scale, units", [(100, "cm"), (1000, "mm")])
def test_bundled_model_refuses_other_units_and_the_fix_restores_the_answer(bundled, throw,
                                                                          scale, units):
    [want] = bundled.classify([throw], top_k=1)
    with pytest.raises(ImplausibleInputError, match=f"--units {units}"):
        bundled.prepare(throw * scale)
    fixed = Classifier(None, device="cpu", threads=1, options=InputOptions(units=units))
    [got] = fixed.classify([throw * scale], top_k=1)
    assert got[0].label == want[0].label and got[0].probability == pytest.approx(
        want[0].probability, abs=1e-4)


def test_bundled_model_refuses_y_down_and_flip_y_restores_the_answer(bundled, throw):
    down = throw * np.float32([1, -1, 1])
    with pytest.raises(ImplausibleInputError, match="--flip-y"):
        bundled.prepare(down)
    fixed = Classifier(None, device="cpu", threads=1, options=InputOptions(flip_y=True))
    assert fixed.classify([down], top_k=1)[0][0].label == bundled.classify([throw],
                                                                           top_k=1)[0][0].label


def test_classify_json_carries_the_verdict_and_refusals_go_to_stderr(throw, tmp_path):
    good, cm = tmp_path / "good.npy", tmp_path / "cm.npy"
    np.save(good, throw)
    np.save(cm, throw * 100)
    result = runner.invoke(app, ["classify", str(good), str(cm), "--json", "--device", "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [entry] = json.loads(result.stdout)
    assert entry["file"] == str(good)
    assert entry["input"]["plausible"] is True and entry["input"]["layout"] == "kinect20"
    assert entry["input"]["envelope"] == "training data"  # the default stores its own
    assert f"error: {cm}: the body is" in result.stderr and "--units cm" in result.stderr
    assert "note: input layout kinect20 assumed from the joint count" in result.stderr
    fixed = runner.invoke(app, ["classify", str(cm), "--units", "cm", "--json", "--device",
                                "cpu", "--layout", "kinect20"])
    assert fixed.exit_code == 0, fixed.output
    [entry] = json.loads(fixed.stdout)
    assert entry["input"]["converted"] == "cm -> m" and entry["input"]["layout_guessed"] is False
    assert "note:" not in fixed.stderr  # declared: nothing guessed


def test_accept_implausible_classifies_and_warns(throw, tmp_path):
    mm = tmp_path / "mm.npy"
    np.save(mm, throw * 1000)
    result = runner.invoke(app, ["classify", str(mm), "--accept-implausible", "--json",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert entry["input"]["accepted_implausible"] is True and entry["input"]["problems"]
    assert "classified although implausible" in result.stderr


def test_the_bundled_examples_and_real_data_pass(bundled, shared_data):
    from restcn_infer.readers import load_sequence
    from restcn_infer.readers.pyskl import read_pyskl

    for path in sorted((REPO / "examples").glob("*.npy")):
        assert bundled.prepare_input(np.load(path)).verdict.plausible
    for name in ("S001C001P001R001A001", "S001C003P008R002A058"):  # NTU, mapped to kinect20
        seq = load_sequence(shared_data / "ntu" / f"{name}.skeleton")
        assert bundled.prepare_input(seq).verdict.plausible
    utd = read_pyskl(shared_data / "utd_mhad" / "utd_mhad.pkl").split("xsub_val")
    assert all(bundled.prepare_input(a.keypoint).verdict.plausible for a in utd[:60])
