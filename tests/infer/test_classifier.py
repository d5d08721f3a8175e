"""restcn_infer.classifier: preprocessing, batching, softmax, per-file errors, refused models."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bodies import body_sequence
from conftest import REPO
from helpers import CLASSES, WINDOW
from restcn_infer.classifier import Classifier, Prediction
from restcn_infer.errors import DeviceError, ModelError, SkeletonFormatError
from restcn_infer.layouts import KINECT20, NTU25
from restcn_infer.metadata import METADATA_KEY
from restcn_infer.spec import InputSpec


@pytest.fixture(scope="module")
def model_path(tiny_export):
    return tiny_export()


@pytest.fixture(scope="module")
def clf(model_path):
    return Classifier(model_path, device="cpu", threads=1)


def sequence(seed: int, frames: int = 40, joints: int = 20, bodies: int = 1) -> np.ndarray:
    return body_sequence(frames, "kinect20" if joints == 20 else "ntu25", bodies, seed)


def test_metadata_and_providers(clf):
    assert list(clf.spec.classes) == CLASSES and clf.spec.input.window == WINDOW
    assert clf.providers == ["CPUExecutionProvider"]


def test_prepare_is_the_shared_preprocessing(clf):
    seq = sequence(0, frames=23)
    want = InputSpec(layout=KINECT20, bodies=1, window=WINDOW).prepare(seq)
    np.testing.assert_array_equal(clf.prepare(seq), want)
    np.testing.assert_array_equal(clf.prepare(seq[0]), want)  # (T, V, 3): one body


def test_extra_bodies_are_dropped(clf):
    two = np.concatenate([sequence(1), sequence(2)])
    np.testing.assert_array_equal(clf.prepare(two), clf.prepare(two[:1]))


def test_ntu_joints_are_mapped_by_name_and_said_once(clf, caplog):
    ntu = sequence(3, joints=NTU25.num_joints)
    with caplog.at_level(logging.WARNING, logger="restcn_infer"):
        first = clf.prepare(ntu)
        clf.prepare(ntu)
    assert [r.getMessage() for r in caplog.records if "ntu25" in r.getMessage()] == [
        "input joints are in layout ntu25 (25 joints); mapping them by name to the model's "
        "layout kinect20 (20 joints)"]
    want = InputSpec(layout=KINECT20, bodies=1, window=WINDOW).prepare(ntu, layout=NTU25)
    np.testing.assert_array_equal(first, want)


def test_run_fetches_decoded_only_when_asked(clf):
    x = np.stack([clf.prepare(sequence(i)) for i in range(3)])
    logits, decoded = clf.run(x)
    assert logits.shape == (3, len(CLASSES)) and decoded is None
    logits2, decoded = clf.run(x, decode=True)
    np.testing.assert_allclose(logits2, logits, rtol=0, atol=1e-6)
    assert decoded.shape == (3, 4, WINDOW, 60)


def test_predict_is_a_sorted_softmax(clf):
    logits = np.array([[0.0, 2.0, 1.0, -1.0]], dtype=np.float32)
    (top,) = clf.predict(logits, top_k=10)
    assert [p.label for p in top] == [1, 2, 0, 3]
    probs = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose([p.probability for p in top], probs[[1, 2, 0, 3]], rtol=1e-6)
    assert top[0] == Prediction(1, CLASSES[1], pytest.approx(probs[1]))
    assert len(clf.predict(logits, top_k=2)[0]) == 2


def test_classify_gives_the_same_answers_in_any_batch_size(clf):
    seqs = [sequence(i, frames=10 + 7 * i) for i in range(5)]
    assert clf.classify(seqs, top_k=2, batch_size=2) == clf.classify(seqs, top_k=2, batch_size=64)


def test_classify_files_reports_bad_files_and_keeps_going(clf, tmp_path):
    good = [tmp_path / f"good{i}.npy" for i in range(3)]
    for i, path in enumerate(good):
        np.save(path, sequence(i))
    np.save(tmp_path / "nan.npy", np.full((1, 5, 20, 3), np.nan, np.float32))
    paths = [good[0], tmp_path / "nan.npy", good[1], tmp_path / "missing.npy", tmp_path, good[2]]
    results = list(clf.classify_files(paths, top_k=1, batch_size=2))
    assert [r.path for r in results] == paths
    assert [r.error is None for r in results] == [True, False, True, False, False, True]
    assert [r.top for r in results if r.top] == clf.classify([sequence(i) for i in range(3)],
                                                             top_k=1)
    messages = [str(r.error) for r in results if r.error]
    assert "nan.npy" in messages[0] and "finite" in messages[0]
    assert "no such file" in messages[1] and "directory" in messages[2]


@pytest.mark.parametrize("seq, match", [
    (np.zeros((1, 0, 20, 3), np.float32), "non-empty"),
    (np.zeros((1, 9, 20, 3), np.float32), "all are empty"),
    (np.full((1, 4, 20, 3), np.nan, np.float32), "finite"),
    (np.ones((1, 4, 13, 3), np.float32), "13 joints"),
    (np.ones((4, 20), np.float32), r"\(T, V, 3\)"),
])
def test_bad_sequences_are_refused_clearly(clf, seq, match):
    with pytest.raises(SkeletonFormatError, match=match):
        clf.prepare(seq)


def test_run_checks_the_batch_shape(clf):
    with pytest.raises(ValueError, match=r"\(B, T, 60\)"):
        clf.run(np.zeros((2, WINDOW, 59), np.float32))


def rewrite_metadata(src, dst, value):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(src))
    props = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    if value is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, value
    onnx.save(model, str(dst))
    return dst


def write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def edited_metadata(old: str, new: str):
    def make(src, tmp):
        text = Classifier(src, device="cpu").metadata.to_json()
        assert old in text
        return rewrite_metadata(src, tmp / "m.onnx", text.replace(old, new))
    return make


@pytest.mark.parametrize("make, match", [
    (lambda src, tmp: tmp / "missing.onnx", "no such model file"),
    (lambda src, tmp: tmp, "is a directory"),
    (lambda src, tmp: write_bytes(tmp / "x.onnx", b"\x08garbage"), "not a loadable ONNX model"),
    (lambda src, tmp: write_bytes(tmp / "t.onnx", src.read_bytes()[:5000]),
     "not a loadable ONNX model"),
    (lambda src, tmp: rewrite_metadata(src, tmp / "m.onnx", None), "no 'restcn' metadata"),
    (lambda src, tmp: rewrite_metadata(src, tmp / "m.onnx", "{not json"), "not JSON"),
    (edited_metadata('"format_version":2', '"format_version":99'), "newer than this runtime"),
    (edited_metadata('"window":32', '"window":0'), "window"),
    (edited_metadata('"classes":["wave","clap","sit","jump"]', '"classes":5'),
     "'classes' must be a list of non-empty strings, got 5"),
    (edited_metadata('"classes":["wave","clap","sit","jump"]', '"classes":"ab"'),
     "'classes' must be a list of non-empty strings"),
], ids=["missing", "directory", "garbage", "truncated", "no-metadata", "bad-json",
        "newer-format", "bad-window", "classes-int", "classes-str"])
def test_unusable_models_are_refused_with_a_reason(model_path, tmp_path, make, match):
    with pytest.raises(ModelError, match=match):
        Classifier(make(model_path, tmp_path), device="cpu")


def test_cuda_without_a_cuda_provider_is_refused(model_path, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(DeviceError, match="no CUDA provider"):
        Classifier(model_path, device="cuda")
    assert Classifier(model_path, device="auto").providers == ["CPUExecutionProvider"]


def test_cuda_fallback_is_one_quiet_line(model_path):
    """onnxruntime logs from C++ straight to fd 2: check the real stderr of a fresh process."""
    code = textwrap.dedent(f"""
        from restcn_infer.classifier import Classifier
        clf = Classifier({str(model_path)!r}, device="auto")
        print(clf.providers)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    if "CUDAExecutionProvider" in proc.stdout:  # a machine with a working GPU: nothing to say
        assert lines == []
    else:
        assert len(lines) <= 1, proc.stderr
        assert all("CUDA unavailable" in line and "running on CPU" in line for line in lines)


def test_auto_without_an_nvidia_driver_says_nothing(model_path, monkeypatch, caplog):
    from restcn_infer import session

    monkeypatch.setattr(session, "nvidia_driver_present", lambda: False)
    with caplog.at_level(logging.WARNING, logger="restcn_infer"):
        clf = Classifier(model_path, device="auto")
    assert clf.providers == ["CPUExecutionProvider"] and caplog.records == []


def test_auto_with_a_driver_but_no_working_cuda_says_so_once(model_path, monkeypatch, caplog):
    import onnxruntime as ort

    from restcn_infer import session

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider to fail")
    monkeypatch.setattr(session, "nvidia_driver_present", lambda: True)
    with caplog.at_level(logging.WARNING, logger="restcn_infer"):
        clf = Classifier(model_path, device="auto")
    if "CUDAExecutionProvider" in clf.providers:
        pytest.skip("CUDA works here")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["CUDA unavailable"]
    with pytest.raises(DeviceError, match="cannot start CUDA"):
        Classifier(model_path, device="cuda")


def test_threads_must_be_positive(model_path):
    with pytest.raises(ValueError, match="threads"):
        Classifier(model_path, device="cpu", threads=0)


@pytest.mark.parametrize("name", [None, "ensemble", "ms-res-tcn", "res-tcn"])
def test_bundled_models_classify_the_examples(name):
    """The shipped models and examples: each example is a val (view 3) sequence of its class.
    ``None`` is the default, the four-modality ensemble; the others are there by name."""

    examples = sorted((REPO / "examples").glob("nw_ucla_*.npy"))
    assert len(examples) == 3
    clf = Classifier(name, device="cpu")
    expected = {None: "ensemble_nw_ucla.onnx", "ensemble": "ensemble_nw_ucla.onnx",
                "ms-res-tcn": "ms_res_tcn_nw_ucla.onnx", "res-tcn": "res_tcn_nw_ucla.onnx"}[name]
    assert clf.model_path.name == expected and clf.spec.input.layout.name == "kinect20"
    assert clf.spec.architecture == (name or "ensemble")
    results = list(clf.classify_files(examples, top_k=1))
    names = [p.stem.removeprefix("nw_ucla_").replace("_", " ") for p in examples]
    assert [r.top[0].name for r in results] == names


def test_a_file_named_like_a_bundled_model_wins_and_unknown_names_are_paths(tmp_path,
                                                                            monkeypatch,
                                                                            model_path):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copyfile(model_path, tmp_path / "res-tcn")
    assert Classifier("res-tcn", device="cpu").model_path == Path("res-tcn")
    with pytest.raises(ModelError, match="no-such-model: no such model file"):
        Classifier("no-such-model", device="cpu")
