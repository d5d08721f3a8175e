"""The diagnosis of models whose weakness is known by construction: a model that cannot see the
hands must get low hand emphasis, and a suggestion that names them (and a model blind to the
legs, the legs) -- then the report as a user sees it, the CLI, and the fix trained from it."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from restcn_infer.classifier import Classifier  # noqa: E402
from restcn_infer.datasets import open_dataset  # noqa: E402
from restcn_infer.diagnosis_summary import diagnose  # noqa: E402
from restcn_infer.layouts import KINECT20  # noqa: E402
from restcn_infer.report import write_report  # noqa: E402

CLASSES = ["wave fast", "wave slow", "kick fast", "kick slow"]
GROUP_OF_CLASS = {"wave": "hands", "kick": "legs"}


def write_actions(path, per_class: int = 12, seed: int = 0):
    """A PYSKL pickle where the two wave classes move only the hands (at two speeds) and the
    two kick classes only the legs; ``train`` and ``val`` splits, a label map beside it.

    Named like NW-UCLA (``a01_s01_e03_v02``): every performance is seen from two views, the
    second the first turned 17 degrees about the vertical axis (fresh sensor noise), and both
    views of a performance lie in one split, so the diagnosis has view pairs to compare."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.3, (1, 1, 20, 3)) + [0, 1, 3]
    turn = np.array([[np.cos(0.3), 0, np.sin(0.3)], [0, 1, 0], [-np.sin(0.3), 0, np.cos(0.3)]])
    annotations, splits = [], {"train": [], "val": []}
    for label, name in enumerate(CLASSES):
        joints = list(KINECT20.groups[GROUP_OF_CLASS[name.split()[0]]])
        speed = 3.0 if "fast" in name else 1.5
        for performance in range(per_class):
            t = int(rng.integers(24, 33))
            phase = np.linspace(0, speed * 2 * np.pi, t) + rng.uniform(0, 6.28)
            motion = np.repeat(pose, t, axis=1)
            motion[0][:, joints, 1] += 0.15 * np.sin(phase)[:, None]
            centre = motion.mean(axis=(1, 2), keepdims=True)
            for view in (1, 2):
                seen = motion if view == 1 else (motion - centre) @ turn.T + centre
                seq = seen + rng.normal(0, 0.003, (1, t, 20, 3))
                key = f"a{label + 1:02d}_s01_e{performance:02d}_v{view:02d}"
                annotations.append({"frame_dir": key, "label": label, "total_frames": t,
                                    "keypoint": seq.astype(np.float32)})
                splits["train" if performance % 2 == 0 else "val"].append(key)
    path.write_bytes(pickle.dumps({"split": splits, "annotations": annotations}))
    (path.parent / "label_map.txt").write_text("\n".join(CLASSES) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Res-TCN that learnt the four actions (its run directory) and the data."""
    from restcn_training.augment import Augmentation
    from restcn_training.config import TrainConfig
    from restcn_training.engine import train

    root = tmp_path_factory.mktemp("actions")
    data = write_actions(root / "actions.pkl")
    torch.set_num_threads(1)
    metrics = train(TrainConfig(data=str(data), window=16, epochs=30, batch_size=8, lr=0.05,
                                channels=(8, 8, 8, 8, 8, 8, 16, 16, 16),
                                augmentation=Augmentation(), device="cpu",
                                out=str(root / "run"), command="restcn-train --data x"))
    assert metrics["final_val_accuracy"] >= 0.9  # it sees everything: it learnt the task
    return root / "run", data


def blinded(trained, group: str, tmp_path_factory):
    """The trained model with conv1's weights on ``group``'s joints zeroed, exported."""
    from restcn_export.onnx_export import export_onnx
    from restcn_training.checkpoint import Checkpoint

    run, _ = trained
    ckpt = Checkpoint.load(run)
    state = dict(ckpt.state_dict)
    weight = state["trunk.conv1.weight"].clone()  # (N, D, f)
    dims = [j * 3 + c for j in KINECT20.groups[group] for c in range(3)]
    weight[:, dims] = 0.0
    state["trunk.conv1.weight"] = weight
    root = tmp_path_factory.mktemp(f"blind_{group}")
    Checkpoint(ckpt.spec, state).save(root / "checkpoint.pt")
    return export_onnx(root / "checkpoint.pt", root / "model.onnx").path, root


@pytest.fixture(scope="module")
def hand_blind(trained, tmp_path_factory):
    path, root = blinded(trained, "hands", tmp_path_factory)
    result = diagnose(Classifier(path, device="cpu", threads=1), open_dataset(trained[1]), "val",
                      target_file=str(root / "diag" / "diagnosis.json"))
    return path, result, write_report(result, root / "diag")


def test_a_model_blind_to_the_hands_gets_low_hand_emphasis_and_a_hand_target(hand_blind):
    _, result, _ = hand_blind
    doc = result.document
    by_name = {c["name"]: c for c in doc["classes"]}
    assert by_name["kick fast"]["accuracy"] > 0.9 and by_name["kick slow"]["accuracy"] > 0.9
    assert min(by_name["wave fast"]["accuracy"], by_name["wave slow"]["accuracy"]) < 0.8
    assert set(doc["finding"]["weak_classes"]) <= {"wave fast", "wave slow"}
    assert doc["finding"]["weak_classes"]
    wave = by_name[doc["finding"]["weak_classes"][0]]
    assert wave["motion_share"]["hands"] > 0.8  # the weak class moves its hands
    assert max(wave["emphasis"]["hands"][1:]) < 0.5 * max(wave["emphasis"]["legs"][1:] + [1.0])
    target = doc["suggested_target_joints"]
    assert target["group"] == "hands" and target["joints"] == list(KINECT20.groups["hands"])
    assert "--model ms-res-tcn" in target["command"] and "diagnosis.json" in target["command"]
    assert doc["responses_available"] and doc["primitives"]["filters"]


def test_a_model_blind_to_the_legs_gets_a_leg_target(trained, tmp_path_factory):
    path, _ = blinded(trained, "legs", tmp_path_factory)
    doc = diagnose(Classifier(path, device="cpu", threads=1), open_dataset(trained[1]),
                   "val").document
    assert set(doc["finding"]["weak_classes"]) <= {"kick fast", "kick slow"}
    assert doc["suggested_target_joints"]["group"] == "legs"


def test_the_seeing_model_has_nothing_to_fix(trained, tmp_path_factory):
    from restcn_export.onnx_export import export_onnx

    run, data = trained
    path = export_onnx(run, tmp_path_factory.mktemp("seeing") / "m.onnx").path
    doc = diagnose(Classifier(path, device="cpu", threads=1), open_dataset(data), "val").document
    assert doc["finding"]["weak_classes"] == []
    assert doc["suggested_target_joints"] == {
        "joints": [], "group": None, "joint_names": [], "command": None,
        "reason": doc["finding"]["reason"]}


def test_the_json_is_strict_and_complete(hand_blind):
    _, result, (json_path, html_path) = hand_blind
    text = json_path.read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in diagnosis.json"))
    assert doc == result.document
    for key in ("accuracy", "classes", "confusion_matrix", "confused_pairs", "display_scale",
                "view_invariance", "finding", "suggested_target_joints", "samples", "layers"):
        assert key in doc
    assert len(doc["samples"]) >= 4 and html_path.stat().st_size > 10_000
    page = html_path.read_text()
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_the_fix_trains_from_the_diagnosis_and_records_it(hand_blind, trained, tmp_path):
    from typer.testing import CliRunner

    from restcn_cli.train import app
    from restcn_training.checkpoint import Checkpoint

    json_path = hand_blind[2][0]
    out = tmp_path / "fixed"
    result = CliRunner().invoke(app, [
        "--data", str(trained[1]), "--model", "ms-res-tcn", "--target-joints", str(json_path),
        "--window", "16", "--epochs", "1", "--channels", "4,4,4,8,8,8,8,8,8", "--device", "cpu",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = Checkpoint.load(out).spec
    assert spec.target_joints == tuple(KINECT20.groups["hands"])
    source = spec.training["target_joints_from"]
    assert source["diagnosis"] == str(json_path) and source["group"] == "hands"
    assert len(source["sha256"]) == 64
    from restcn_export.onnx_export import export_onnx

    shipped = Classifier(export_onnx(out, tmp_path / "fixed.onnx").path, device="cpu").spec
    assert shipped.target_joints == spec.target_joints  # the deployed model says the same
    assert shipped.training["target_joints_from"] == source


def test_a_diagnosis_that_suggests_nothing_is_refused_as_a_target(tmp_path, trained):
    from typer.testing import CliRunner

    from restcn_cli.train import app

    empty = tmp_path / "diagnosis.json"
    empty.write_text(json.dumps({"suggested_target_joints": {
        "joints": [], "group": None, "reason": "nothing stands out"}}))
    result = CliRunner().invoke(app, ["--data", str(trained[1]), "--model", "ms-res-tcn",
                                      "--target-joints", str(empty), "--out",
                                      str(tmp_path / "r"), "--device", "cpu"])
    assert result.exit_code == 1 and "suggests no target joints" in result.output


def test_cli_report_from_a_checkpoint_and_its_errors(trained, tmp_path):
    from typer.testing import CliRunner

    from restcn_cli.diagnose import app

    run, data = trained
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(run), "--data", str(data), "--split", "val",
                                 "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "report.html").is_file() and "accuracy" in result.output
    held = runner.invoke(app, ["report", str(run), "--data", str(data), "--split", "train",
                               "--holdout-fraction", "0.25", "--out", str(tmp_path / "h")])
    assert held.exit_code == 0, held.output
    doc = json.loads((tmp_path / "h" / "diagnosis.json").read_text())
    assert doc["split"] == "train (holdout)" and doc["sequences"] == 12  # 3 of 12 per class
    (tmp_path / "file").write_text("x")
    in_the_way = runner.invoke(app, ["report", str(run), "--data", str(data), "--split", "val",
                                     "--out", str(tmp_path / "file")])
    assert in_the_way.exit_code == 1 and "is a file" in in_the_way.output
    unknown = runner.invoke(app, ["report", str(run), "--data", str(data), "--split", "test",
                                  "--out", str(tmp_path / "e")])
    assert unknown.exit_code == 1 and "unknown split 'test'" in unknown.output


def test_a_model_without_a_decoder_is_refused_clearly(trained, tmp_path):
    from restcn_export.onnx_export import export_onnx
    from restcn_infer.errors import ModelError

    path = export_onnx(trained[0], tmp_path / "plain.onnx", decoder_layers=()).path
    with pytest.raises(ModelError, match="needs one"):
        diagnose(Classifier(path, device="cpu"), open_dataset(trained[1]), "val")


def test_old_models_are_diagnosed_without_responses(shared_data, tmp_path):
    """The bundled MS-Res-TCN predates the responses and filters outputs: the rest still
    works."""
    result = diagnose(Classifier("ms-res-tcn", device="cpu"),
                      open_dataset(shared_data / "nw_ucla" / "nw_ucla.pkl"), "val")
    doc = result.document
    assert doc["accuracy"] == pytest.approx(0.8642, abs=5e-4)
    assert not doc["responses_available"] and result.primitives is None
    assert all(c["response"] is None for c in doc["classes"])
    write_report(dataclasses.replace(result), tmp_path)
    assert "re-export it" in (tmp_path / "report.html").read_text()


@pytest.fixture
def browser():
    from browser import Browser, find_chromium

    pytest.importorskip("websockets")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    with Browser(executable) as page:
        yield page


def test_the_report_opens_in_a_browser_animates_and_shows_the_json_numbers(hand_blind,
                                                                           browser):
    import time

    _, _, (json_path, html_path) = hand_blind
    doc = json.loads(json_path.read_text())
    browser.open(html_path)
    first = browser.screenshot("#sample-panels")
    time.sleep(0.6)  # the animation advances a frame every 80 ms
    second = browser.screenshot("#sample-panels")
    assert first != second  # the skeletons move
    rows = browser.evaluate("""[...document.querySelectorAll('#class-table tbody tr')].map(
        tr => [tr.dataset.class, tr.querySelector('[data-field=accuracy]').textContent,
               tr.querySelector('[data-field=support]').textContent])""")
    want = {c["name"]: c for c in doc["classes"]}
    assert sorted(r[0] for r in rows) == sorted(want)
    for name, accuracy, support in rows:
        assert float(accuracy) == pytest.approx(want[name]["accuracy"], abs=5e-4)
        assert int(support) == want[name]["support"]
    cells = browser.evaluate("""[...document.querySelectorAll('#confusion-table td')].map(
        td => [Number(td.dataset.row), Number(td.dataset.col), td.textContent])""")
    for i, j, text in cells:
        assert int(text or 0) == doc["confusion_matrix"][i][j]
    assert float(browser.evaluate("document.querySelector('[data-field=accuracy]')"
                                  ".textContent")) == pytest.approx(doc["accuracy"], abs=5e-5)
    assert browser.evaluate("document.getElementById('target-joints').textContent") == ",".join(
        map(str, doc["suggested_target_joints"]["joints"]))
    assert browser.evaluate("document.getElementById('fix-command').textContent") == \
        doc["suggested_target_joints"]["command"]
    heat = browser.evaluate("""[...document.querySelectorAll('#emphasis-table td[data-group]')]
        .map(td => [td.dataset.class, td.dataset.group, td.textContent])""")
    for name, group, text in heat:
        value = want[name]["emphasis"][group][-1]
        assert (text == "\u2013") if value is None else float(text) == pytest.approx(value,
                                                                                     abs=5e-3)
    views = browser.evaluate("""[...document.querySelectorAll(
        '#views-class-table td[data-view-class]')].map(
        td => [td.dataset.viewClass, Number(td.dataset.viewLayer), td.textContent])""")
    per_class = {c["name"]: c["ratio"] for c in doc["view_invariance"]["per_class"]}
    assert {name for name, _, _ in views} == set(CLASSES)  # every class has its view pairs
    for name, layer, text in views:
        assert float(text) == pytest.approx(per_class[name][doc["layers"].index(layer)], abs=1e-3)
    signatures = browser.evaluate("""[...document.querySelectorAll(
        '#responses-body tr[data-class]')]
        .map(tr => [tr.dataset.class, tr.querySelector('[data-field=strength]').textContent,
                    tr.querySelector('[data-field=selectivity]').textContent])""")
    assert doc["responses_available"] and len(signatures) == len(CLASSES)
    for name, strength, selectivity in signatures:
        assert float(strength) == pytest.approx(want[name]["response"]["strength"], abs=1e-3)
        assert float(selectivity) == pytest.approx(want[name]["response"]["selectivity"],
                                                   abs=1e-3)
    pairs = browser.evaluate("""[...document.querySelectorAll('#pairs-table tr[data-pair]')]
        .map(tr => [tr.dataset.pair, tr.querySelector('[data-field=count]').textContent,
                    tr.querySelector('[data-field=input]').textContent])""")
    assert doc["confused_pairs"]  # the hand-blind model mixes the two waves up
    assert [p[0] for p in pairs] == [f"{q['a']},{q['b']}" for q in doc["confused_pairs"]]
    for (_, count, separability), q in zip(pairs, doc["confused_pairs"]):
        assert int(count) == q["count"]
        assert float(separability) == pytest.approx(q["separability"]["input"], abs=1e-3)
    browser.evaluate("document.querySelector('th.sortable').click()")  # sort by class
    browser.evaluate("document.getElementById('scrub').value = 3")
    assert browser.errors == []
