"""The export's parity check: onnxruntime must agree with torch before a model is written.

Inputs (:func:`check_inputs`): the mean skeleton plus unit noise at two batch sizes and two
lengths (the window and an odd short length, so both dynamic axes are exercised) and, when
given, real sequences preprocessed exactly as the runtime will (``InputSpec.prepare``). Every
output is compared, and ``logits`` once more with the decoder head switched off.

Each value must agree to :data:`PARITY_TOLERANCE` plus :data:`PARITY_RTOL` of its size: float32
resolves a decoded skeleton in metres far below 1e-4, but one in image pixels (values near
1,000, where one float32 step is 6e-5) only to a few steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from restcn_export.errors import ExportError
from restcn_export.passes.decoder_gate import DECODE_INPUT
from restcn_infer.datasets import open_dataset
from restcn_infer.errors import RestcnError
from restcn_infer.readers import load_sequence
from restcn_infer.spec import ModelSpec

PARITY_TOLERANCE = 1e-4
#: Allowed difference per unit of a value's size, beyond :data:`PARITY_TOLERANCE` (~8 float32
#: steps).
PARITY_RTOL = 1e-6
#: Real sequences taken from a data set given as check data.
CHECK_SEQUENCES = 8


def check_inputs(spec: ModelSpec, check_data: str | os.PathLike[str] | None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for the parity check: name -> ``(B, T, D)`` float32 (see the module docstring).

    ``check_data``: any file :func:`restcn_infer.load_sequence` reads, or a data set
    (:func:`restcn_infer.datasets.open_dataset`), whose first sequences of its first split are
    used.
    """
    rng = np.random.default_rng(seed)
    mean, shape = spec.mean_array, spec.input
    inputs = {
        "random": (mean + rng.standard_normal((2, shape.window, shape.D))).astype(np.float32),
        "random_short": (mean + rng.standard_normal((3, 17, shape.D))).astype(np.float32),
    }
    if check_data is not None:
        inputs["real"] = np.stack([shape.prepare(seq, source=check_data)
                                   for seq in _read_check_data(Path(check_data))])
    return inputs


def _read_check_data(path: Path) -> list[np.ndarray]:
    if path.is_dir() or path.suffix.lower() in (".pkl", ".pickle", ".npz"):
        try:
            data = open_dataset(path)
        except RestcnError:
            if path.suffix.lower() not in (".pkl", ".pickle"):
                raise
            return [load_sequence(path, coords=None)]  # a pickle of one sequence
        split = data.splits[sorted(data.splits)[0]]
        return [split.sequence(i) for i in range(min(CHECK_SEQUENCES, len(split)))]
    return [load_sequence(path, coords=None)]  # prepare refuses the other kind


def write_checked(proto, path: Path, wrapper: nn.Module,
                  inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Write ``proto`` to ``path`` and compare onnxruntime with torch on every input.

    Returns the largest absolute difference per input; raises ``ExportError`` where a value
    differs by more than :data:`PARITY_TOLERANCE` + :data:`PARITY_RTOL` x its size (NaN
    included).
    """
    import onnx
    import onnxruntime as ort

    onnx.save_model(proto, str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    diffs, excess = {}, {}
    for name, x in inputs.items():
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(x))
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run([o.name for o in session.get_outputs()], {"skeleton": x})
        if wrapper.decoder is not None:  # logits alone, decoder head skipped
            got.append(session.run(["logits"], {"skeleton": x, DECODE_INPUT: np.array(False)})[0])
            expected = (*expected, expected[0])
        pairs = [(g, e.numpy()) for g, e in zip(got, expected)]
        diffs[name] = max(float(np.abs(g - e).max()) for g, e in pairs)
        excess[name] = max(float((np.abs(g - e) - PARITY_RTOL * np.abs(e)).max()) for g, e in pairs)
    worst = max(excess, key=lambda k: np.nan_to_num(excess[k], nan=np.inf))
    if not excess[worst] <= PARITY_TOLERANCE:  # also catches NaN
        raise ExportError(f"onnxruntime disagrees with torch on {worst} input: max abs diff "
                          f"{diffs[worst]:.3g}, beyond {PARITY_TOLERANCE:g} + {PARITY_RTOL:g} x "
                          "|value|; nothing written")
    return diffs


def relative_rms(got: np.ndarray, want: np.ndarray, center: np.ndarray | float = 0.0) -> float:
    """``rms(got - want) / rms(want - center)``: the error of a lower-precision output relative
    to the float32 output's own size (around ``center``, e.g. the mean skeleton). NaN-safe: a
    NaN anywhere gives NaN, which every ``<=`` tolerance check refuses."""
    scale = float(np.sqrt(np.mean((np.asarray(want, np.float64) - center) ** 2)))
    return float(np.sqrt(np.mean((np.asarray(got, np.float64) - want) ** 2))) / max(scale, 1e-12)
