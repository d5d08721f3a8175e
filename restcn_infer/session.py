"""One onnxruntime session, with the execution provider picked by a device name.

``device``: ``auto`` tries CUDA then CPU; ``cuda`` requires CUDA; ``cpu`` uses the CPU only.
``auto`` on a machine without an NVIDIA driver goes straight to the CPU, silently: there is
nothing to fix. When a driver is there (or ``cuda`` was asked for) but onnxruntime cannot start
CUDA (missing CUDA/cuDNN libraries), the caller gets one clear line through the
``restcn_infer`` logger instead of onnxruntime's wall of provider logs: onnxruntime's own
logging is silenced while the session is being created.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from restcn_infer.errors import DeviceError, ModelError

log = logging.getLogger("restcn_infer")

#: Runtime devices (``--device`` of every ``restcn-infer`` command).
DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
#: What onnxruntime raises for a file it cannot load (its own classes derive from Exception).
_LOAD_ERRORS = (RuntimeError, ValueError, ort_state.Fail, ort_state.InvalidArgument,
                ort_state.NoSuchFile, ort_state.NoModel, ort_state.InvalidProtobuf,
                ort_state.InvalidGraph, ort_state.NotImplemented, ort_state.RuntimeException)
#: onnxruntime's log levels: 0 verbose, 1 info, 2 warning (its default), 3 error, 4 fatal.
_ORT_DEFAULT_SEVERITY = 2


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for inference: all graph optimisations, quiet logs, ``threads`` intra-op threads
    that do not spin between calls.

    ``threads=None`` lets onnxruntime use one thread per physical core.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # Worker threads sleep between calls instead of spinning: a spinning thread takes the core
    # from the caller's own work between calls (a stream loop, other processes), measured
    # 1.15-1.5x faster at batch 16-128 and equal at batch 1 (benchmarks/infer_latency.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def create_session(path: Path, *, device: str = "auto", threads: int | None = None,
                   data: bytes | None = None) -> ort.InferenceSession:
    """An ``InferenceSession`` on ``path`` for ``device`` (see the module docstring).

    ``data``: the file's bytes when the caller has read (and checked) them already; the session
    is then made from exactly those bytes, so the file cannot change between check and load.

    Raises:
        DeviceError: unknown device.
        ValueError: a thread count below 1.
        DeviceError: ``device="cuda"`` and CUDA cannot be started.
        ModelError: onnxruntime cannot load the file (corrupt, not ONNX, unsupported ops).
    """
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {DEVICES}")
    want_cuda = device == "cuda" or (device == "auto" and nvidia_driver_present())
    if want_cuda and CUDA not in ort.get_available_providers():
        if device == "cuda":
            raise DeviceError("device 'cuda' requested but this onnxruntime has no CUDA provider; "
                              "install onnxruntime-gpu")
        want_cuda = False
    providers = [CUDA, CPU] if want_cuda else [CPU]
    options = session_options(threads)
    try:
        if want_cuda:  # a failing CUDA provider logs through the default logger, not the session's
            ort.set_default_logger_severity(4)
        session = ort.InferenceSession(str(path) if data is None else data, options,
                                       providers=providers)
    except _LOAD_ERRORS as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from None
    finally:
        if want_cuda:
            ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
    if want_cuda and CUDA not in session.get_providers():
        reason = cuda_load_error() or "no usable GPU"
        if device == "cuda":
            raise DeviceError(f"device 'cuda' requested but onnxruntime cannot start CUDA: "
                              f"{reason}")
        log.warning("CUDA unavailable (%s); running on CPU", reason)
    return session


@functools.cache
def nvidia_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver (``libcuda``): only then can CUDA work."""
    name = "nvcuda.dll" if os.name == "nt" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def cuda_load_error() -> str | None:
    """Why onnxruntime's CUDA provider library does not load (e.g. a missing libcublas), if so."""
    library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if os.name == "nt" or not library.is_file():
        return None
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return str(exc)  # e.g. "libcublasLt.so.13: cannot open shared object file: ..."
    return None
