"""The OpenVINO runtime behind onnxruntime's session interface (``pip install 'restcn[openvino]'``).

Why not onnxruntime's own OpenVINO execution provider: ``onnxruntime-openvino`` is a whole
onnxruntime build that replaces the ``onnxruntime`` package, so it cannot be installed beside
``onnxruntime-gpu``; the plugin EP package (``onnxruntime-ep-openvino``) installs beside it but
offers no device on a non-Intel CPU (measured on this project's AMD EPYC: it registers and lists
only onnxruntime's CPU provider). The OpenVINO runtime itself runs on any x86-64 CPU.

:class:`OpenVINOSession` answers the part of ``onnxruntime.InferenceSession`` the classifier
uses (``run``, ``get_inputs``, ``get_outputs``, ``get_modelmeta``,
``get_overridable_initializers``, ``get_providers``), so the classifier, its metadata checks
(digest, graph sizes, probe run) and streaming work on it unchanged. The model's description
(inputs, outputs, metadata) is read by an onnxruntime session that never runs; the arithmetic is
OpenVINO's:

- precision: ``bf16`` (OpenVINO's ``INFERENCE_PRECISION_HINT``) for a model exported with
  ``--precision bf16``, whose accuracy gate ran through this class; otherwise ``f32`` (an int8
  model's quantized ops stay int8 either way);
- the ``decode`` input: OpenVINO folds an input that has a default into a constant, so the
  logits-only calls run a second compiled model with ``logits`` as its only output (the decoder
  head pruned), compiled at first use.

``openvino`` is imported when a session is made, never when this module is: the runtime stays
numpy + onnxruntime unless this backend is asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from typing import Any

import numpy as np

from restcn_infer.errors import MissingDependencyError, ModelError, RestcnError

PROVIDER = "OpenVINO"
INSTALL_HINT = "the OpenVINO backend needs the openvino package: pip install 'restcn[openvino]'"
#: Precisions this backend runs: OpenVINO's inference precision hint.
PRECISIONS = ("f32", "bf16")


def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def _openvino():
    try:
        import openvino
    except ImportError as exc:
        raise MissingDependencyError(f"{INSTALL_HINT} ({exc})") from None
    return openvino


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AVX512_BF16 or AMX); elsewhere its
    bf16 hint runs in f32 and gains nothing."""
    if not openvino_available():
        return False
    core = _openvino().Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOSession:
    """An ONNX model compiled by OpenVINO for the CPU, with onnxruntime's session interface.

    Args:
        data: the ``.onnx`` file's bytes (checked by the caller).
        description: an onnxruntime session on the same bytes, used for its description only.
        precision: ``f32`` or ``bf16``; ``None``: ``bf16`` when the model's metadata says it
            was exported (and gated) for bf16, else ``f32``.
        threads: OpenVINO inference threads; ``None``: OpenVINO's default.

    Raises:
        MissingDependencyError: ``openvino`` is not installed.
        ModelError: OpenVINO cannot read or compile the model.
    """

    def __init__(self, data: bytes, description: Any, *, precision: str | None = None,
                 threads: int | None = None, source: str = "model") -> None:
        ov = _openvino()
        self._description = description
        self.precision = precision or model_precision(description)
        if self.precision not in PRECISIONS:
            raise ModelError(f"OpenVINO precision {self.precision!r}: expected one of "
                             f"{PRECISIONS}")
        self._core = ov.Core()
        self._config = {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY",
                        "NUM_STREAMS": 1}
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        self._source = source
        try:
            self._model = self._core.read_model(data)
            self._full = self._core.compile_model(self._model, "CPU", self._config)
        except RuntimeError as exc:  # OpenVINO's frontend and plugin errors
            raise ModelError(f"{source}: OpenVINO cannot compile the model "
                             f"({str(exc).splitlines()[0][:200]})") from None
        self._full_request = self._full.create_infer_request()
        self._logits_request = None
        # One infer request per compiled model: calls from several threads take turns
        # (onnxruntime's run may be called concurrently; an OpenVINO request may not).
        self._lock = threading.Lock()

    # -- the description (onnxruntime's) ------------------------------------------------------

    def get_inputs(self):
        return self._description.get_inputs()

    def get_outputs(self):
        return self._description.get_outputs()

    def get_modelmeta(self):
        return self._description.get_modelmeta()

    def get_overridable_initializers(self):
        return self._description.get_overridable_initializers()

    def get_providers(self) -> list[str]:
        return [f"{PROVIDER} ({self.precision})"]

    # -- the arithmetic (OpenVINO's) ----------------------------------------------------------

    def run(self, output_names: list[str] | None,
            feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """onnxruntime's ``run``: the named outputs (``None``: all) for ``feed``."""
        names = output_names or [o.name for o in self.get_outputs()]
        decode = feed.get("decode")
        logits_only = names == ["logits"] or (decode is not None and not bool(decode)
                                              and set(names) <= {"logits"})
        if decode is not None and not bool(decode) and not logits_only:
            raise ModelError(f"{self._source}: outputs {names} need decode=true")
        with self._lock:
            request = self._logits() if logits_only else self._full_request
            request.infer({"skeleton": np.ascontiguousarray(feed["skeleton"], np.float32)})
            return [np.array(request.get_tensor(name).data) for name in names]

    def _logits(self):
        """The logits-only model (decoder head pruned), compiled at first use."""
        if self._logits_request is None:
            ov = _openvino()
            model = ov.Model([self._model.output("logits")], self._model.get_parameters(),
                             "logits")
            self._logits_request = self._core.compile_model(
                model, "CPU", self._config).create_infer_request()
        return self._logits_request


def model_precision(description: Any) -> str:
    """``bf16`` when the model's metadata records a bf16 export, else ``f32``."""
    from restcn_infer.metadata import ModelMetadata

    try:
        meta = ModelMetadata.from_props(description.get_modelmeta().custom_metadata_map)
    except RestcnError:
        return "f32"  # the classifier reports bad metadata itself
    return "bf16" if meta.export.get("precision") == "bf16" else "f32"
