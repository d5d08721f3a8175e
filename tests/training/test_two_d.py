"""2-D keypoints end to end: MMPose-style recordings -> restcn-build-dataset -> restcn-train
--data -> export -> classify, stream, decode and render; 2-D and 3-D never mixed.

The recordings are a synthetic person in 1080p image pixels (y down, as pose estimators give
them) whose class is how fast the wrists move; one training run and one export serve the
module."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from restcn_infer.errors import SkeletonFormatError

runner = CliRunner()
CLASSES = ("slow", "medium", "fast")
WINDOW = 16
#: A standing person in COCO-17 order, 1080p pixels, y down (x, y).
COCO_POSE = np.array([
    (960, 300), (975, 285), (945, 285), (990, 295), (930, 295),  # nose, eyes, ears
    (1020, 420), (900, 420), (1040, 560), (880, 560), (1050, 690), (870, 690),  # arms
    (990, 700), (930, 700), (995, 900), (925, 900), (1000, 1080), (920, 1080),  # legs
], np.float32)


def person(label: int, seed: int, frames: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 17, 2)`` pixels and ``(T, 17)`` scores: wrists and elbows wave at a speed set by
    the class, the body sways a little; one ankle scores low in every fourth frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float32)[:, None]
    seq = np.broadcast_to(COCO_POSE, (frames, 17, 2)).copy()
    wave = 60 * np.sin((label + 1) * 0.35 * t + rng.uniform(0, 6))
    seq[:, [7, 8], 1] += 0.5 * wave
    seq[:, [9, 10], 1] += wave
    seq[..., 0] += 8 * np.sin(0.1 * t) + rng.uniform(-40, 40)
    seq += rng.normal(0, 1.5, seq.shape).astype(np.float32)
    scores = np.full((frames, 17), 0.9, np.float32)
    scores[::4, 15] = 0.1  # below the 0.3 threshold: masked
    return seq, scores


def mmpose_document(seq: np.ndarray, scores: np.ndarray) -> list:
    """MMPoseInferencer's video result: one frame object per frame."""
    return [{"frame_id": i, "instances": [{"keypoints": seq[i].tolist(),
                                           "keypoint_scores": scores[i].tolist()}]}
            for i in range(len(seq))]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The recordings, the built 2-D data set, one tiny training run and its export."""
    from restcn_cli.build_dataset import app as build_app
    from restcn_cli.train import app as train_app
    from restcn_export.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("two_d")
    clips = root / "clips"
    clips.mkdir()
    rows = ["file,label,split"]
    for label, name in enumerate(CLASSES):
        for i in range(8):
            seq, scores = person(label, 100 * label + i)
            path = clips / f"{name}_{i}.json"
            path.write_text(json.dumps(mmpose_document(seq, scores)))
            rows.append(f"{path.name},{name},{'train' if i % 2 == 0 else 'val'}")
    (clips / "labels.csv").write_text("\n".join(rows) + "\n")
    data = root / "data" / "d.pkl"
    built = runner.invoke(build_app, [str(clips), "--labels", str(clips / "labels.csv"),
                                      "--out", str(data), "--bodies", "1"])
    assert built.exit_code == 0, built.output
    torch.set_num_threads(1)
    trained = runner.invoke(train_app, [
        "--data", str(data), "--out", str(root / "run"), "--epochs", "3", "--window",
        str(WINDOW), "--batch-size", "6", "--channels", "4,4,4,8,8,8,8,8,8", "--device", "cpu",
        "--shift", "20"])
    assert trained.exit_code == 0, trained.output
    report = export_onnx(root / "run", root / "model.onnx", check_data=data)
    return SimpleNamespace(root=root, clips=clips, data=data, run=root / "run",
                           model=report.path, report=report)


@pytest.fixture(scope="module")
def clf(run):
    from restcn_infer.classifier import Classifier

    return Classifier(run.model, device="cpu")


def test_a_2d_data_set_trains_and_the_model_says_it_reads_2d(run):
    from restcn_infer.datasets import open_dataset
    from restcn_infer.layouts import COCO17
    from restcn_training.checkpoint import Checkpoint

    data = open_dataset(run.data)
    assert data.coords == 2 and data.layout is COCO17  # declared by the pickle
    assert not data.split("train").sequence(0)[0, ::4, 15].any()  # low scores masked
    spec = Checkpoint.load(run.run).spec
    assert spec.input.coords == 2 and spec.input.D == 34 and spec.config["coords"] == 2
    assert spec.envelope is not None and len(spec.envelope.up) == 2
    assert spec.envelope.y_down  # image pixels: the head is at smaller y
    assert 20 < spec.envelope.scale[1] < 200  # a median bone in pixels, not metres
    meta = json.loads(runner.invoke(_infer_app(), ["info", str(run.model), "--json"]).stdout)
    assert meta["input"]["coords"] == 2 and meta["input"]["D"] == 34
    shown = runner.invoke(_infer_app(), ["info", str(run.model)])
    assert "coco17, 2-D (x, y), 1 bodies" in shown.stdout


def test_the_onnx_graph_answers_as_torch_on_2d_inputs(run, clf):
    from restcn_infer.datasets import open_dataset
    from restcn_training.checkpoint import Checkpoint
    from restcn_training.decoder import FeatureMapDecoder

    assert max(run.report.max_abs_diff.values()) < 2e-3  # pixels: a few float32 steps
    ckpt = Checkpoint.load(run.run)
    model = ckpt.build_model()
    split = open_dataset(run.data).split("val")
    x = np.stack([ckpt.spec.input.prepare(split.sequence(i)) for i in range(len(split))])
    logits, decoded = clf.run(x, decode=True)
    with torch.no_grad():
        want_logits, layers = model.forward_intermediates(torch.from_numpy(x))
        want_decoded = FeatureMapDecoder(model, clf.metadata.decoder_layers)(layers, WINDOW)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(decoded, want_decoded.numpy(), atol=1e-3, rtol=1e-4)
    assert decoded.shape == (len(split), 4, WINDOW, 34)


def test_classify_reads_pose_estimator_output_for_a_2d_model(run, clf):
    from restcn_infer.readers import read_keypoints

    path = run.clips / "fast_1.json"
    result = runner.invoke(_infer_app(), ["classify", str(path), "--model", str(run.model),
                                          "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert entry["input"]["plausible"] and entry["input"]["layout"] == "coco17"
    assert entry["input"]["layout_guessed"] is False  # MMPose output names its layout
    masked = read_keypoints(path).masked().coords  # the ankle below 0.3 is zeroed
    logits, _ = clf.run(clf.prepare(masked)[None])
    assert entry["top"][0]["label"] == int(np.argmax(logits))
    np.testing.assert_allclose(max(p["probability"] for p in entry["top"]),
                               np.exp(logits.max()) / np.exp(logits).sum(), rtol=1e-5)


def test_evaluate_on_the_2d_split_gives_the_training_run_s_accuracy(run):
    from restcn_training.checkpoint import Checkpoint

    result = runner.invoke(_infer_app(), ["evaluate", str(run.model), "--data", str(run.data),
                                          "--split", "val", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["samples"] == 12 and doc["errors"] == []
    trained = Checkpoint.load(run.run).spec.metrics["final_val_accuracy"]
    assert doc["accuracy"] == pytest.approx(trained)  # the runtime path is the training one


def test_a_3d_input_to_a_2d_model_and_the_reverse_are_refused(run, clf, tmp_path):
    from restcn_infer.classifier import Classifier

    seq, _ = person(0, 1)
    three = tmp_path / "three.npy"
    np.save(three, np.concatenate([seq, np.full(seq.shape[:-1] + (1,), 3.0, np.float32)], -1))
    two = tmp_path / "two.npy"
    np.save(two, seq)
    [refused] = clf.classify_files([three])
    assert "the model reads 2-D (x, y) keypoints, the input has 3" in str(refused.error)
    assert "does not project" in str(refused.error)
    [answered] = clf.classify_files([two])
    assert answered.error is None
    [reverse] = Classifier(device="cpu").classify_files([two])  # the bundled 3-D model
    assert "the model reads 3-D (x, y, z) coordinates, the input has 2" in str(reverse.error)
    with pytest.raises(SkeletonFormatError, match="reads 2-D"):
        clf.prepare(np.ones((1, 4, 17, 3), np.float32))


def test_units_do_not_apply_to_2d_and_sizes_are_checked_in_pixels(run, clf, tmp_path):
    from restcn_infer.input_options import InputOptionsError

    with pytest.raises(InputOptionsError, match="no metre scale: leave --units out"):
        type(clf)(run.model, device="cpu", options=type(clf.options)(units="cm"))
    seq, _ = person(2, 5)
    uhd = tmp_path / "uhd.npy"  # the same person filmed in 4K: twice the pixels
    np.save(uhd, seq * 2)
    result = runner.invoke(_infer_app(), ["classify", str(uhd), "--model", str(run.model),
                                          "--device", "cpu", "--layout", "coco17"])
    assert result.exit_code == 1
    assert "x the size of the training bodies" in result.stderr, result.stderr
    assert "in the training keypoints' units" in result.stderr
    assert "rescale the input by about 0.5" in result.stderr
    up = tmp_path / "up.npy"  # y up instead of the image's y down
    np.save(up, seq * np.float32([1, -1]))
    result = runner.invoke(_infer_app(), ["classify", str(up), "--model", str(run.model),
                                          "--device", "cpu", "--layout", "coco17"])
    assert "y axis points the other way" in result.stderr and "--flip-y" in result.stderr
    fixed = runner.invoke(_infer_app(), ["classify", str(up), "--model", str(run.model),
                                         "--device", "cpu", "--layout", "coco17", "--flip-y"])
    assert fixed.exit_code == 0, fixed.output


def test_a_2d_stream_decides_as_classify_on_the_same_windows(run, clf):
    from restcn_infer.layouts import COCO17
    from restcn_infer.streaming import StreamClassifier

    seq, _ = person(1, 3, frames=20)
    sc = StreamClassifier(clf, hop=5, top_k=2)
    for t in range(len(seq)):
        sc.push("cam", seq[t], layout=COCO17)
    decisions = sc.poll()
    assert [d.frame for d in decisions] == [5, 10, 15, 20]
    for d in decisions:
        x = clf.prepare(seq[None, max(0, d.frame - WINDOW):d.frame], source_layout=COCO17)
        logits, _ = clf.run(x[None])
        assert d.top[0].label == int(np.argmax(logits))
    with pytest.raises(SkeletonFormatError, match="reads 2-D .* has 3"):
        sc.push("cam", np.ones((17, 3), np.float32))
    lines = "\n".join(json.dumps({"stream": "s", "joints": seq[t].tolist(), "layout": "coco17"})
                      for t in range(10))
    result = runner.invoke(_infer_app(), ["stream", "--model", str(run.model), "--hop", "5",
                                          "--device", "cpu"], input=lines + "\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in records if "top" in r] == [5, 10]
    assert records[-1]["summary"]["rejected"] == 0


def test_decode_and_render_a_2d_model_head_up(run, tmp_path, monkeypatch):
    """decode writes (L, M, T, V, 2) skeletons; the picture of image keypoints (y down) is
    drawn with its y axis inverted, so the head, at the smallest y, is at the top."""
    pytest.importorskip("matplotlib")
    import restcn_infer.render as render

    drawn = {}
    original = render.render_sequences

    def spy(panels, layout, out, **kwargs):
        drawn.update(kwargs, panels=panels)
        return original(panels, layout, out, **kwargs)

    monkeypatch.setattr(render, "render_sequences", spy)
    out, png = tmp_path / "d.npz", tmp_path / "d.png"
    result = runner.invoke(_infer_app(), ["decode", str(run.clips / "slow_3.json"), "--model",
                                          str(run.model), "--out", str(out), "--render", str(png),
                                          "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with np.load(out) as npz:
        assert npz["input"].shape == (1, WINDOW, 17, 2)
        assert npz["decoded"].shape == (4, 1, WINDOW, 17, 2)
        assert np.isfinite(npz["decoded"]).all()
    assert png.stat().st_size > 1000
    assert drawn["y_down"] is True and drawn["panels"][0][1].shape == (1, WINDOW, 17, 2)
    fig = render.new_figure(1, 1)
    ax = fig.subplots()
    render._blank(ax, (0.0, 1.0, 300.0, 1080.0), y_down=True)
    assert ax.get_ylim() == (1080.0, 300.0)  # y grows downwards: y = 300 (the head) on top
    render._blank(ax, (0.0, 1.0, -1.0, 1.0))
    assert ax.get_ylim() == (-1.0, 1.0)  # Kinect: y up, unchanged


def test_a_2d_model_is_diagnosed_in_two_coordinates_and_drawn_head_up(run, clf, tmp_path):
    """The report's skeletons keep the model's 2 coordinates (not re-cut into 3), and the page
    is told that y points down."""
    from restcn_infer.datasets import open_dataset
    from restcn_infer.diagnosis_summary import diagnose
    from restcn_infer.report import animation_data, write_report

    result = diagnose(clf, open_dataset(run.data), "val")
    assert result.samples and result.y_down is True
    for sample in result.samples:
        assert sample.input.shape == (1, sample.input.shape[1], 17, 2)
        assert sample.decoded.shape[-2:] == (17, 2)
    assert result.primitives is not None and result.primitives.shape[-2:] == (17, 2)
    data = animation_data(result)
    assert data["y_down"] is True and len(data["samples"][0]["input"][0][0][0]) == 2
    json_path, html_path = write_report(result, tmp_path / "report")
    assert json.loads(json_path.read_text())["sequences"] == result.document["sequences"]


def test_a_2d_ensemble_decodes_in_pixels_as_its_joint_member(run):
    """The decoder divides the joint member's fixed 2-D unit back out, in an ensemble too."""
    from restcn_training.checkpoint import Checkpoint
    from restcn_training.decoder import FeatureMapDecoder
    from restcn_training.ensemble import ensemble_checkpoint

    member = Checkpoint.load(run.run).build_model().eval()
    ensemble = ensemble_checkpoint([run.run, run.run]).build_model().eval()
    assert member.input_scale != 1.0
    ours, theirs = FeatureMapDecoder(ensemble, [1, 4]), FeatureMapDecoder(member, [1, 4])
    assert ours.input_scale == theirs.input_scale
    torch.testing.assert_close(ours.mu, theirs.mu, rtol=0, atol=0)


def _infer_app():
    from restcn_cli.infer import app

    return app
