"""The accuracy gate of a lower-precision model (int8, bf16): it is written only if it classifies
the validation windows (:mod:`.calibration`) within :data:`MAX_ACCURACY_DROP` of the float32
model, and its decoded skeletons stay within :data:`DECODED_TOLERANCE` of float32's.

Both models run through a session (onnxruntime, or the OpenVINO backend for bf16) on the same
prepared windows, so the figures are the deployed graphs', and are recorded in the model's
metadata (``export.accuracy``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from restcn_export.calibration import GateData
from restcn_export.errors import ExportError
from restcn_export.parity import relative_rms
from restcn_export.passes.decoder_gate import DECODE_INPUT

#: Largest accepted accuracy loss against float32 (0.5 points).
MAX_ACCURACY_DROP = 0.005
#: Largest accepted relative RMS error (:func:`.parity.relative_rms`) of ``decoded`` around the
#: mean skeleton against float32 (measured on an NW-UCLA Res-TCN: int8 0.028, bf16 0.0065).
DECODED_TOLERANCE = 0.05
#: Largest accepted relative RMS error of ``logits`` against float32 (measured on the same model:
#: int8 0.032, bf16 0.0022).
LOGITS_TOLERANCE = 0.1
#: Validation windows the decoded check runs on.
DECODED_WINDOWS = 32
BATCH = 64


class Session(Protocol):
    """What the gate needs of a session: onnxruntime's ``run``."""

    def run(self, output_names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def gate(fp32: Session, low: Session, data: GateData, precision: str, *, mean: np.ndarray,
         decoder: bool, gated: bool) -> dict[str, Any]:
    """Measure both models and refuse a lower-precision one that loses too much.

    Args:
        mean: the model's mean skeleton ``(D,)``.
        decoder: whether the graph has a ``decoded`` output; ``gated``: a ``decode`` input.

    Returns:
        The export facts: ``accuracy {"fp32", precision}``, ``top1_agreement``,
        ``logits_relative_error`` and, with a decoder, ``decoded_relative_error``.

    Raises:
        ExportError: accuracy more than :data:`MAX_ACCURACY_DROP` below float32, or logits or
            decoded skeletons further than their tolerance; the message gives both figures.
    """
    ref = _logits(fp32, data.validation, gated)
    got = _logits(low, data.validation, gated)
    acc_ref = float(np.mean(ref.argmax(1) == data.labels))
    acc_low = float(np.mean(got.argmax(1) == data.labels))
    facts: dict[str, Any] = {"accuracy": {"fp32": acc_ref, precision: acc_low},
                             "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
                             "logits_relative_error": relative_rms(got, ref)}
    where = (f"{len(data.labels)} validation windows ({data.facts.get('validation')})")
    if acc_low < acc_ref - MAX_ACCURACY_DROP:
        raise ExportError(f"{precision} accuracy {acc_low:.4f} is more than "
                          f"{100 * MAX_ACCURACY_DROP:g} points below fp32 {acc_ref:.4f} on "
                          f"{where}; nothing written (try other --calibration data, or export "
                          "fp32)")
    if not facts["logits_relative_error"] <= LOGITS_TOLERANCE:
        raise ExportError(f"{precision} logits differ from fp32 by "
                          f"{facts['logits_relative_error']:.3f} (relative RMS) > "
                          f"{LOGITS_TOLERANCE:g} on {where}; nothing written")
    if decoder:
        x = data.validation[:DECODED_WINDOWS]
        feed = {"skeleton": x, **({DECODE_INPUT: np.array(True)} if gated else {})}
        dec_ref = fp32.run(["decoded"], feed)[0]  # (B, L, T, D)
        error = relative_rms(low.run(["decoded"], feed)[0], dec_ref, center=mean)
        facts["decoded_relative_error"] = error
        if not error <= DECODED_TOLERANCE:  # NaN too
            raise ExportError(f"{precision} decoded skeletons differ from fp32 by {error:.3f} "
                              f"(relative RMS) > {DECODED_TOLERANCE:g} on {where}; nothing "
                              "written")
    return facts


def _logits(session: Session, windows: np.ndarray, gated: bool) -> np.ndarray:
    """``(N, C)`` logits of ``windows (N, T, D)``, :data:`BATCH` per call."""
    out = []
    for i in range(0, len(windows), BATCH):
        feed = {"skeleton": windows[i:i + BATCH],
                **({DECODE_INPUT: np.array(False)} if gated else {})}
        out.append(session.run(["logits"], feed)[0])
    return np.concatenate(out)
