"""Runtime devices (restcn_infer.backends): TensorRT falls back to CUDA, then the CPU, in one
line; its engine cache lives in the user cache folder; OpenVINO serves the same classifier
interface (when installed) or says how to install it; auto picks OpenVINO only for bf16 models
on a CPU with native bf16."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from restcn_infer import backends
from restcn_infer.backends import RUNTIME_DEVICES, create_session, tensorrt_cache_dir
from restcn_infer.errors import DeviceError, MissingDependencyError


@pytest.fixture(scope="module")
def model_path(tiny_export):
    return tiny_export()


def feed(window=32, batch=2, decode=False):
    x = np.random.default_rng(0).normal(size=(batch, window, 60)).astype(np.float32)
    return {"skeleton": x, "decode": np.array(decode)}


def test_unknown_device_is_refused(model_path):
    with pytest.raises(DeviceError, match="expected one of"):
        create_session(model_path, device="tpu")
    assert RUNTIME_DEVICES == ("auto", "cpu", "cuda", "tensorrt", "openvino")


def test_tensorrt_without_its_provider_falls_back_in_one_line(model_path, caplog):
    with caplog.at_level(logging.WARNING, logger="restcn_infer"):
        session = create_session(model_path, device="tensorrt")
    assert session.get_providers()[-1] == "CPUExecutionProvider"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("TensorRT unavailable (")
    assert lines[0].endswith("running on CPU") or lines[0].endswith("running on CUDA")


def test_tensorrt_that_onnxruntime_cannot_start_falls_back_too(model_path, caplog, tmp_path,
                                                               monkeypatch):
    """The provider is listed but its libraries (libnvinfer, CUDA) are missing: onnxruntime
    drops it while making the session, quietly, and the fallback says so once."""
    monkeypatch.setattr(backends, "tensorrt_unavailable", lambda: None)
    monkeypatch.setenv("RESTCN_CACHE_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="restcn_infer"):
        session = create_session(model_path, device="tensorrt")
    if backends.TENSORRT in session.get_providers():
        pytest.skip("TensorRT really runs here")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "could not start it" in lines[0]
    assert (tmp_path / "tensorrt").is_dir()  # the engine cache folder was prepared
    logits = session.run(["logits"], feed())[0]
    assert logits.shape == (2, 4)


def test_tensorrt_cache_is_a_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RESTCN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tensorrt_cache_dir() == tmp_path / "xdg" / "restcn" / "tensorrt"
    monkeypatch.setenv("RESTCN_CACHE_DIR", str(tmp_path / "mine"))
    assert tensorrt_cache_dir() == tmp_path / "mine" / "tensorrt"


def test_tensorrt_options_are_fp16_cached_with_one_profile(tmp_path):
    options = backends.tensorrt_options(300, 150, tmp_path)
    assert options["trt_fp16_enable"] and options["trt_engine_cache_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_profile_min_shapes"] == "skeleton:1x300x150"
    assert options["trt_profile_max_shapes"] == f"skeleton:{backends.TENSORRT_MAX_BATCH}x300x150"


def test_openvino_without_the_package_says_how_to_install(model_path, monkeypatch):
    import restcn_infer.openvino_session as ovs

    monkeypatch.setattr(ovs, "openvino_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'restcn\[openvino\]'"):
        create_session(model_path, device="openvino")


def test_auto_stays_on_onnxruntime_for_fp32_models(model_path, monkeypatch):
    import restcn_infer.openvino_session as ovs

    monkeypatch.setattr(ovs, "native_bf16", lambda: True)
    assert create_session(model_path, device="auto").get_providers()[-1] == "CPUExecutionProvider"


def test_openvino_session_matches_onnxruntime_and_serves_the_classifier(model_path,
                                                                       monkeypatch):
    pytest.importorskip("openvino")
    from restcn_infer import classifier as classifier_module
    from restcn_infer.classifier import Classifier

    cpu = create_session(model_path, device="cpu")
    ov = create_session(model_path, device="openvino")
    assert ov.get_providers() == ["OpenVINO (f32)"]  # an fp32 model: f32 arithmetic
    logits_cpu, decoded_cpu = cpu.run(["logits", "decoded"], feed(decode=True))
    np.testing.assert_allclose(ov.run(["logits"], feed())[0], logits_cpu, atol=1e-4, rtol=0)
    logits_ov, decoded_ov = ov.run(["logits", "decoded"], feed(decode=True))
    np.testing.assert_allclose(decoded_ov, decoded_cpu, atol=1e-4, rtol=0)
    with pytest.raises(Exception, match="need decode=true"):
        ov.run(["logits", "decoded"], feed(decode=False))
    monkeypatch.setattr(classifier_module, "create_session", create_session)
    clf = Classifier(model_path, device="openvino")  # metadata, digest and probe checks pass
    assert clf.providers == ["OpenVINO (f32)"] and clf.weights_verified


def test_auto_picks_openvino_for_a_bf16_model_only_with_native_bf16(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    pytest.importorskip("torch")
    import restcn_infer.openvino_session as ovs
    from helpers import write_checkpoint, write_tiny_pyskl
    from restcn_export.onnx_export import export_onnx

    classes = ["class_0", "class_1", "class_2"]
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=30)
    path = export_onnx(write_checkpoint(tmp_path / "t.pt", classes=classes),
                       tmp_path / "bf16.onnx", precision="bf16", calibration=data).path
    monkeypatch.setattr(ovs, "native_bf16", lambda: True)
    assert create_session(path, device="auto").get_providers() == ["OpenVINO (bf16)"]
    monkeypatch.setattr(ovs, "native_bf16", lambda: False)
    assert create_session(path, device="auto").get_providers()[-1] == "CPUExecutionProvider"
