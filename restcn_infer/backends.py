"""Every runtime device, one name each: which engine runs an exported model.

``RUNTIME_DEVICES`` (the ``--device`` choices once the CLI reads them from here):

- ``cpu``, ``cuda``: onnxruntime's CPU or CUDA provider (:mod:`restcn_infer.session`; ``cuda``
  refuses to run elsewhere);
- ``tensorrt``: onnxruntime's TensorRT provider with float16 kernels, its engines cached in the
  user cache folder (:func:`tensorrt_cache_dir`) so only the first session of a model builds
  them; where onnxruntime-gpu cannot start TensorRT it falls back to CUDA, then the CPU, with
  one logged line;
- ``openvino``: the OpenVINO runtime on the CPU (:mod:`restcn_infer.openvino_session`, the
  ``openvino`` extra): bf16 for models exported with ``--precision bf16``, f32 otherwise;
- ``auto``: CUDA when an NVIDIA driver is there (else the CPU, as before), except that a model
  exported with ``--precision bf16`` runs on OpenVINO when it is installed and this CPU computes
  bf16 natively — the one case where it measured faster than onnxruntime on every batch size
  (``benchmarks/infer_latency.py``: 1.9x onnxruntime float32 at batch 128 on AVX512_BF16).
  int8 models stay on onnxruntime, whose int8 kernels answer one window fastest.

:func:`create_session` returns an ``onnxruntime.InferenceSession`` or an object with the same
interface (:class:`~restcn_infer.openvino_session.OpenVINOSession`).
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from restcn_infer import session as ort_session
from restcn_infer.errors import DeviceError, ModelError
from restcn_infer.metadata import ModelMetadata

log = logging.getLogger("restcn_infer")

RUNTIME_DEVICES = ("auto", "cpu", "cuda", "tensorrt", "openvino")
TENSORRT = "TensorrtExecutionProvider"
#: Largest batch the TensorRT engines are built for (streams batch up to this many windows).
TENSORRT_MAX_BATCH = 1024
TENSORRT_OPT_BATCH = 64


def create_session(path: Path, *, device: str = "auto", threads: int | None = None,
                   data: bytes | None = None) -> Any:
    """A session on ``path`` (or its bytes ``data``) for ``device`` (see the module docstring).

    Raises:
        DeviceError: an unknown device, or ``cuda`` that cannot be started.
        MissingDependencyError: ``openvino`` without the openvino package.
        ModelError: the file cannot be loaded.
    """
    if device not in RUNTIME_DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {RUNTIME_DEVICES}")
    if device == "tensorrt":
        return _tensorrt_session(path, threads, data)
    if device == "openvino":
        return _openvino_session(path, threads, data)
    session = ort_session.create_session(path, device=device, threads=threads, data=data)
    if device == "auto" and ort_session.CUDA not in session.get_providers() and _prefers_openvino(
            session):
        return _openvino_session(path, threads, data, description=session)
    return session


def _prefers_openvino(session: Any) -> bool:
    from restcn_infer.openvino_session import model_precision, native_bf16, openvino_available

    return model_precision(session) == "bf16" and openvino_available() and native_bf16()


def _read(path: Path, data: bytes | None) -> bytes:
    if data is not None:
        return data
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model ({exc.strerror or exc})") from None


def _openvino_session(path: Path, threads: int | None, data: bytes | None,
                      description: Any = None) -> Any:
    from restcn_infer.openvino_session import OpenVINOSession, openvino_available

    if not openvino_available():
        from restcn_infer.errors import MissingDependencyError
        from restcn_infer.openvino_session import INSTALL_HINT

        raise MissingDependencyError(f"device 'openvino': {INSTALL_HINT}")
    data = _read(path, data)
    if description is None:  # onnxruntime reads the description only: no optimisation
        description = _description_session(path, data)
    return OpenVINOSession(data, description, threads=threads, source=str(path))


def _description_session(path: Path, data: bytes) -> ort.InferenceSession:
    options = ort_session.session_options(1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(data, options, providers=[ort_session.CPU])
    except Exception as exc:  # onnxruntime's load errors have no common base
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from None


def tensorrt_cache_dir() -> Path:
    """Where TensorRT engines are cached: ``$RESTCN_CACHE_DIR/tensorrt``, else the platform's
    user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``%LOCALAPPDATA%`` on
    Windows) ``/restcn/tensorrt``."""
    if os.environ.get("RESTCN_CACHE_DIR"):
        return Path(os.environ["RESTCN_CACHE_DIR"]) / "tensorrt"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "restcn" / "tensorrt"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "restcn" / "tensorrt"


def tensorrt_options(window: int, d: int, cache: Path) -> dict[str, Any]:
    """The TensorRT provider's options: float16, engine and timing caches in ``cache``, one
    optimisation profile for batches 1..:data:`TENSORRT_MAX_BATCH` of ``(window, d)`` inputs."""
    def shape(batch: int) -> str:
        return f"skeleton:{batch}x{window}x{d}"

    return {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache), "trt_profile_min_shapes": shape(1),
            "trt_profile_opt_shapes": shape(TENSORRT_OPT_BATCH),
            "trt_profile_max_shapes": shape(TENSORRT_MAX_BATCH)}


def _tensorrt_session(path: Path, threads: int | None, data: bytes | None) -> Any:
    """TensorRT, then CUDA, then the CPU, saying in one line why TensorRT was not used."""
    reason = tensorrt_unavailable()
    if reason is None:
        data = _read(path, data)
        meta = ModelMetadata.from_props(
            _description_session(path, data).get_modelmeta().custom_metadata_map, str(path))
        cache = tensorrt_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeviceError(f"TensorRT engine cache {cache}: cannot create it "
                              f"({exc.strerror or exc}); set RESTCN_CACHE_DIR") from None
        options = ort_session.session_options(threads)
        providers = [(TENSORRT, tensorrt_options(meta.spec.input.window, meta.spec.input.D,
                                                 cache)), ort_session.CUDA, ort_session.CPU]
        ort.set_default_logger_severity(4)  # a failing provider logs through the default logger
        try:
            session = ort.InferenceSession(data, options, providers=providers)
        except Exception as exc:  # onnxruntime's load errors have no common base
            raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from None
        finally:
            ort.set_default_logger_severity(2)
        if TENSORRT in session.get_providers():
            return session
        reason = "onnxruntime could not start it (see TensorRT's libraries: libnvinfer)"
    session = ort_session.create_session(path, device="auto", threads=threads, data=data)
    where = "CUDA" if ort_session.CUDA in session.get_providers() else "CPU"
    log.warning("TensorRT unavailable (%s); running on %s", reason, where)
    return session


def tensorrt_unavailable() -> str | None:
    """Why onnxruntime's TensorRT provider cannot run here, or ``None`` when it may."""
    if TENSORRT not in ort.get_available_providers():
        return "this onnxruntime has no TensorRT provider; install onnxruntime-gpu"
    if not ort_session.nvidia_driver_present():
        return "no NVIDIA driver"
    library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_tensorrt.so"
    if os.name != "nt" and library.is_file():
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:  # e.g. "libnvinfer.so.10: cannot open shared object file"
            return str(exc)
    return None
