"""restcn-diagnose compare: per-class table of two runs, the data-driven "targeted class" mark."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from restcn_infer.datasets import ListSplit
from restcn_infer.layouts import KINECT20
from restcn_infer.spec import InputSpec, ModelSpec
from restcn_training.checkpoint import Checkpoint
from restcn_training.compare import CompareError, compare_runs, motion_shares

CLASSES = ["clap", "walk", "kick"]
HANDS = list(KINECT20.groups["hands"])
LEGS = list(KINECT20.groups["legs"])


def sequence(kind: str, rng: np.random.Generator, frames: int = 30) -> np.ndarray:
    """(1, T, 20, 3): a resting body plus motion of the hands, the whole body, or the legs."""
    seq = np.repeat(rng.normal(size=(1, 1, 20, 3)), frames, axis=1).astype(np.float32)
    t = np.linspace(0, 2 * np.pi, frames)[:, None]  # (T, 1)
    wiggle = np.stack([np.sin(t), np.cos(t), 0 * t], axis=-1)  # (T, 1, 3)
    noise = 0.01 * rng.normal(size=seq.shape)  # a little motion everywhere
    if kind == "clap":
        seq[0][:, HANDS] += wiggle
    elif kind == "walk":
        seq[0] += 3 * t[..., None] * np.array([1.0, 0.0, 0.0])  # translation only
    else:
        seq[0][:, LEGS] += wiggle
    return (seq + noise).astype(np.float32)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A PYSKL pickle (kinect20, 3 classes x 4 sequences per split) with its label map."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    annotations, split = [], {"train": [], "val": []}
    for name in split:
        for label, kind in enumerate(CLASSES):
            for i in range(4):
                key = f"{name}_{kind}_{i}"
                kp = sequence(kind, rng)
                annotations.append({"frame_dir": key, "label": label, "total_frames": kp.shape[1],
                                    "keypoint": kp})
                split[name].append(key)
    (root / "toy.pkl").write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    (root / "label_map.txt").write_text("\n".join(CLASSES) + "\n")
    return root / "toy.pkl"


def fake_run(path: Path, architecture: str, per_class: list[float], data: Path,
             target_joints: list[int] | None = None, classes: list[str] = CLASSES,
             splits: tuple[str, str] = ("train", "val")) -> Path:
    """A run directory as restcn-train writes it (weights are not needed to compare)."""
    path.mkdir(parents=True)
    spec = ModelSpec(architecture=architecture,
                     input=InputSpec(layout=KINECT20, bodies=1, window=16), classes=classes,
                     mean=(0.0,) * 60, config={"target_joints": target_joints or []},
                     training={"data": str(data), "train_split": splits[0],
                               "val_split": splits[1]})
    Checkpoint(spec, {}).save(path / "checkpoint.pt")
    metrics = {"final_val_accuracy": float(np.mean(per_class)),
               "per_class_accuracy": dict(zip(classes, per_class))}
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def split(sequences: list[np.ndarray]) -> ListSplit:
    return ListSplit(sequences, np.zeros(len(sequences), np.int64),
                     [str(i) for i in range(len(sequences))])


def test_motion_shares_ignore_translation_and_absent_bodies():
    rng = np.random.default_rng(1)
    clap, kick = sequence("clap", rng), sequence("kick", rng)
    walk = sequence("walk", rng)
    torso = list(KINECT20.groups["torso"])
    shares = motion_shares(split([clap, kick, walk]), HANDS, torso)
    assert shares[0] > 0.95 and shares[1] < 0.05 and shares[2] < 0.3
    # Relative to the centroid of all joints the hands' own motion leaks into every joint.
    everything = motion_shares(split([clap]), HANDS)
    assert 0.6 < everything[0] < 0.9
    # Moving the whole body, and a second body absent in some frames, change nothing.
    moved = clap + rng.normal(size=(1, clap.shape[1], 1, 3)).astype(np.float32)
    second = np.where(np.arange(clap.shape[1])[:, None, None] % 3 == 0, 0.0, kick[0])
    two = np.concatenate([moved, second[None]], axis=0).astype(np.float32)  # (2, T, 20, 3)
    alone = motion_shares(split([moved]), HANDS, torso)
    assert alone[0] == pytest.approx(shares[0])
    energies = motion_shares(split([two]), HANDS, torso)
    assert 0.05 < energies[0] < 0.95  # both bodies count; zero frames add no jumps


def test_compare_marks_hand_classes_and_averages_seeds(tmp_path, dataset):
    base = tmp_path / "base"
    fake_run(base / "seed0", "res-tcn", [0.5, 0.9, 0.8], dataset)
    fake_run(base / "seed1", "res-tcn", [0.7, 0.9, 0.7], dataset)
    refined = fake_run(tmp_path / "ms", "ms-res-tcn", [0.9, 0.8, 0.7], dataset, target_joints=HANDS)
    result = compare_runs(base, refined)
    assert [r.name for r in result.rows] == CLASSES
    assert [r.targeted for r in result.rows] == [True, False, False]
    assert [r.a for r in result.rows] == pytest.approx([0.6, 0.9, 0.75])
    assert [r.delta for r in result.rows] == pytest.approx([0.3, -0.1, -0.05])
    assert result.mean_delta == pytest.approx(0.05)
    assert result.mean_delta_of(True) == pytest.approx(0.3)
    assert result.mean_delta_of(False) == pytest.approx(-0.075)
    assert len(result.a.runs) == 2
    assert result.a.accuracy_std == pytest.approx(
        np.std([np.mean([0.5, 0.9, 0.8]), np.mean([0.7, 0.9, 0.7])], ddof=1))
    assert result.target_joint_names == ["WristLeft", "HandLeft", "WristRight", "HandRight"]
    # Marking by the legs instead flips the mark to the kick.
    by_legs = compare_runs(base, refined, target_joints="legs")
    assert [r.targeted for r in by_legs.rows] == [False, False, True]


def test_compare_without_data_marks_nothing(tmp_path, dataset):
    a = fake_run(tmp_path / "a", "res-tcn", [0.5, 0.5, 0.5], tmp_path / "gone.pkl")
    b = fake_run(tmp_path / "b", "ms-res-tcn", [0.6, 0.5, 0.5], tmp_path / "gone.pkl")
    result = compare_runs(a, b)
    assert not any(r.targeted for r in result.rows)
    assert "no such file" in result.criterion["error"]
    assert compare_runs(a, b, data=dataset).rows[0].targeted  # data given explicitly


def test_compare_refuses_incomparable_runs(tmp_path, dataset):
    a = fake_run(tmp_path / "a", "res-tcn", [0.5, 0.5, 0.5], dataset)
    b = fake_run(tmp_path / "b", "ms-res-tcn", [0.5, 0.5], dataset, classes=["x", "y"])
    with pytest.raises(CompareError, match="different classes"):
        compare_runs(a, b)
    with pytest.raises(CompareError, match="no run directory"):
        compare_runs(a, tmp_path / "nothing")
    mixed = tmp_path / "mixed"
    fake_run(mixed / "s0", "res-tcn", [0.5, 0.5, 0.5], dataset)
    fake_run(mixed / "s1", "ms-res-tcn", [0.5, 0.5, 0.5], dataset)
    with pytest.raises(CompareError, match="is ms-res-tcn"):
        compare_runs(mixed, a)


def cli() -> typer.Typer:
    from restcn_cli.diagnose import app  # compare is registered there

    return app


def test_cli_json_and_table(tmp_path, dataset):
    a = fake_run(tmp_path / "a", "res-tcn", [0.5, 0.9, 0.8], dataset)
    b = fake_run(tmp_path / "b", "ms-res-tcn", [0.9, 0.8, 0.8], dataset, target_joints=HANDS)
    runner = CliRunner()
    out = runner.invoke(cli(), ["compare", str(a), str(b), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["a"]["architecture"] == "res-tcn" and doc["b"]["runs"] == [str(b)]
    assert doc["classes"][0] == {"name": "clap", "a": 0.5, "b": 0.9, "delta": pytest.approx(0.4),
                                 "targeted_share": pytest.approx(
                                     doc["classes"][0]["targeted_share"]),
                                 "targeted": True}
    assert doc["mean_class_delta"] == pytest.approx(0.1)
    out = runner.invoke(cli(), ["compare", str(a), str(b)])
    assert out.exit_code == 0
    assert "* clap" in out.stdout and "+0.4000" in out.stdout
    bad = runner.invoke(cli(), ["compare", str(a), str(tmp_path / "none")])
    assert bad.exit_code == 1 and "no run directory" in bad.stderr


def test_real_utd_mhad_hand_classes_are_marked(tmp_path, shared_data):
    data = shared_data / "utd_mhad" / "utd_mhad.pkl"
    classes = (shared_data / "utd_mhad" / "label_map.txt").read_text().split("\n")[:27]
    runs = [fake_run(tmp_path / name, "res-tcn", [0.5] * 27, data, classes=classes,
                     splits=("xsub_train", "xsub_val")) for name in ("a", "b")]
    marked = {r.name for r in compare_runs(*runs).rows if r.targeted}
    assert {"right hand wave", "two hand front clap", "right hand draw x"} <= marked
    assert not marked & {"forward lunge (left foot forward)", "sit to stand", "stand to sit",
                         "squat (two arms stretch out)"}
