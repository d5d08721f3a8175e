"""Checkpoint -> self-describing ONNX model, checked against torch before it is written.

One graph per network (DESIGN section 6)::

    skeleton (batch, time, D) float32, raw coordinates (the graph subtracts the mean skeleton)
      -> logits  (batch, classes)
      -> decoded (batch, L, time, D)   the Feature Map Decoder of layers L (omitted with no layers)

The ONNX ``metadata_props`` key ``restcn`` holds :class:`restcn_infer.metadata.ModelMetadata` as
JSON: the checkpoint's :class:`~restcn_infer.spec.ModelSpec`, the decoder layers and how the file
was made (precision, opset, exporter).

Nothing is written unless onnxruntime agrees with torch to :data:`PARITY_TOLERANCE`
(:mod:`.parity`): the graph goes to a temp file beside ``out_path`` and is renamed over it only
on success. The graph passes of :mod:`restcn_export.passes` run before that check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restcn_export.errors import ExportError
from restcn_export.low_precision import GATED_PRECISIONS
from restcn_export.parity import PARITY_TOLERANCE, check_inputs, write_checked
from restcn_export.passes.bn_as_conv import batchnorm_as_depthwise_conv
from restcn_export.passes.conv_layout import conv1d_as_conv2d
from restcn_export.passes.decoder_gate import gate_decoder
from restcn_export.passes.fp16_storage import round_to_fp16, store_fp16
from restcn_export.passes.trunk_layout import trunk_in_4d
from restcn_infer.atomic import atomic_path
from restcn_infer.errors import ModelError
from restcn_infer.metadata import METADATA_KEY, ModelMetadata
from restcn_infer.model_digest import DIGEST_KEY, weights_digest
from restcn_infer.output_paths import OutputPathError, check_output_file
from restcn_training.checkpoint import Checkpoint
from restcn_training.decoder import FeatureMapDecoder
from restcn_training.network import SkeletonNetwork

DEFAULT_OPSET = 18
DEFAULT_DECODER_LAYERS = (1, 4, 7, 10)
#: fp16: float16 weight storage, float32 compute; int8 and bf16: gated (:mod:`.low_precision`).
PRECISIONS = ("fp32", "fp16", "int8", "bf16")

__all__ = ["DEFAULT_DECODER_LAYERS", "PARITY_TOLERANCE", "PRECISIONS", "ExportError",
           "ExportReport", "export_onnx"]


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how closely onnxruntime matched torch.

    Attributes:
        path: the written ONNX file.
        max_abs_diff: per check (``random``, ``real``), the largest |onnxruntime - torch| over
            every output.
        decoder_layers: layers of the ``decoded`` output, empty when there is none.
    """

    path: Path
    size_bytes: int
    opset: int
    precision: str
    exporter: str
    decoder_layers: tuple[int, ...]
    max_abs_diff: dict[str, float]
    metadata: ModelMetadata
    #: int8/bf16: what the accuracy gate measured (:func:`restcn_export.precision_gate.gate`).
    gate: dict[str, Any] | None = None


#: The graph's outputs with a decoder head, in order (``DIAGNOSIS_OUTPUTS`` are gated).
OUTPUTS = ("logits", "decoded", "responses", "filters")
DIAGNOSIS_OUTPUTS = ("decoded", "responses")


class ExportWrapper(nn.Module):
    """The exported graph, from one :meth:`SkeletonNetwork.forward_intermediates` pass of any
    architecture: ``skeleton (B, T, D)`` -> ``logits (B, C)``, and with a decoder head the
    diagnosis outputs of the decoded (main, joint) stream:

    - ``decoded (B, L, T, D)``: the Feature Map Decoder's skeletons of the decoder layers;
    - ``responses (B, N, T)``: ``|W_1 * (X_0 - mu)|``, conv1's response to the input without its
      bias, per filter and frame (the paper's Figure 8);
    - ``filters (N, D, f)``: conv1's weights, for the motion primitives (Figure 3).
    """

    def __init__(self, model: SkeletonNetwork, decoder: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.decoder = decoder

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        logits, layers = self.model.forward_intermediates(skeleton)  # (B, C), n x (B, C_l, T_l)
        if self.decoder is None:
            return logits
        conv1 = self.model.decoded_trunk.conv1
        bias = conv1.bias if conv1.bias is not None else torch.zeros_like(layers[0][0, :, 0])
        responses = (layers[0] - bias[:, None]).abs()  # X_1 without bias: (B, N, T)
        filters = conv1.weight * 1.0  # (N, D, f): an output, not the parameter itself
        return logits, self.decoder(layers, skeleton.shape[1]), responses, filters


def make_decoder(model: SkeletonNetwork, layers: Sequence[int] | None) -> nn.Module | None:
    """The Feature Map Decoder for ``layers`` (``None``: the default layers when the model
    reads joints; empty: none). Decoded *skeletons* need the joint modality: a bone or motion
    network's layers decode to bones or motion, which no skeleton viewer can draw.

    Raises:
        ExportError: layers the model does not have, or layers of a non-joint modality.
    """
    modality = model.decoded_modality
    if layers is None and modality != "joint":
        return None
    if layers and modality != "joint":
        raise ExportError(f"decoder layers need the joint modality; this model decodes "
                          f"{modality or 'nothing'} (export it with --no-decoder, or in an "
                          "--ensemble with a joint member)")
    layers = DEFAULT_DECODER_LAYERS if layers is None else tuple(layers)
    if not layers:
        return None
    try:
        return FeatureMapDecoder(model, layers).eval()
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def export_onnx(
    checkpoint_path: str | os.PathLike[str] | Checkpoint,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    decoder_layers: Sequence[int] | None = None,
    precision: str = "fp32",
    check_data: str | os.PathLike[str] | None = None,
    calibration: str | os.PathLike[str] | None = None,
    calibration_split: str | None = None,
) -> ExportReport:
    """Export a restcn checkpoint to ONNX, check it, and write it atomically.

    Args:
        checkpoint_path: a checkpoint written by ``restcn-train`` (file or run directory), or
            a :class:`Checkpoint` made in memory (e.g. ``ensemble_checkpoint``).
        out_path: the ``.onnx`` file to write (replaced only if every check passes).
        opset: ONNX opset of the graph.
        decoder_layers: layers of the ``decoded`` output; ``None``: 1,4,7,10 when the decoder
            is available; empty: no decoder head.
        precision: ``fp32``, ``fp16`` (float16 weight storage, float32 compute), ``int8``
            (onnxruntime static quantization) or ``bf16`` (OpenVINO bf16 compute), the last two
            gated on accuracy (:mod:`restcn_export.low_precision`).
        check_data: optional real sequence(s) for the parity check (see :func:`check_inputs`).
        calibration, calibration_split: int8/bf16: the data set (and split) to calibrate and
            validate on; default: the checkpoint's own training data
            (:func:`restcn_export.calibration.gate_data`).

    Raises:
        ExportError: unknown precision, a decoder that cannot be built, a failed
            ``onnx.checker`` or a parity difference above :data:`PARITY_TOLERANCE`.
        CheckpointError: the checkpoint cannot be read.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    out_path = check_output_path(out_path)
    ckpt = (checkpoint_path if isinstance(checkpoint_path, Checkpoint)
            else Checkpoint.load(checkpoint_path))
    gate_data = None
    if precision in GATED_PRECISIONS:  # a missing calibration set fails before the export work
        from restcn_export.calibration import gate_data as make_gate_data

        gate_data = make_gate_data(ckpt.spec, calibration, calibration_split)
    model = ckpt.build_model()
    if precision == "fp16":
        round_to_fp16(model)
    decoder = make_decoder(model, decoder_layers)
    layers = tuple(decoder.layers) if decoder is not None else ()
    export_info = {"precision": precision, "opset": opset, "torch": torch.__version__}
    wrapper = ExportWrapper(model, decoder).eval()
    inputs = check_inputs(ckpt.spec, check_data)

    proto, export_info["exporter"] = _export_graph(wrapper, inputs["random"], opset)
    try:
        meta = ModelMetadata(spec=ckpt.spec, decoder_layers=layers, export=export_info)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    if decoder is not None:
        gate_decoder(proto, DIAGNOSIS_OUTPUTS)
    conv1d_as_conv2d(proto)
    trunk_in_4d(proto)
    if precision == "int8":
        batchnorm_as_depthwise_conv(proto)
    if precision == "fp16":
        store_fp16(proto)
    meta = seal(proto, meta)

    facts = None
    with atomic_path(out_path) as tmp:
        diffs = write_checked(proto, tmp, wrapper, inputs)
        if gate_data is not None:  # the checked float32 graph, lowered and gated
            import onnx

            from restcn_export.low_precision import lower_precision

            proto, meta, facts = lower_precision(tmp, precision, meta, gate_data)
            meta = seal(proto, meta)
            onnx.save_model(proto, str(tmp))
    return ExportReport(path=out_path, size_bytes=out_path.stat().st_size, opset=opset,
                        precision=precision, exporter=export_info["exporter"],
                        decoder_layers=layers,
                        max_abs_diff=diffs, metadata=meta, gate=facts)


def seal(proto, meta: ModelMetadata) -> ModelMetadata:
    """Store ``meta`` in ``proto`` with the weights digest (:mod:`restcn_infer.model_digest`:
    everything but ``metadata_props``, hashed as stored, so the runtime refuses a file whose
    graph or weights changed after export) and run ``onnx.checker``; returns the sealed
    metadata.

    Raises:
        ExportError: the graph fails ``onnx.checker``.
    """
    import onnx

    del proto.metadata_props[:]
    meta = dataclasses.replace(meta, export={**meta.export,
                                             DIGEST_KEY: weights_digest(proto.SerializeToString())})
    _set_metadata(proto, meta)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker: {exc}") from exc
    return meta



def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if a model can be written there, checked before any work starts
    (:func:`restcn_infer.output_paths.check_output_file`, the runtime's one check).

    Raises:
        ExportError: ``path`` is a directory, lacks the ``.onnx`` suffix, or its folder cannot
            be created or written.
    """
    try:
        return check_output_file(path, what="--out", suffixes=(".onnx",))
    except OutputPathError as exc:
        raise ExportError(str(exc)) from None


def _export_graph(wrapper: ExportWrapper, example: Any, opset: int):
    """Trace ``wrapper`` to an ``onnx.ModelProto`` with dynamic batch and time.

    The dynamo exporter (``torch.export``) is torch's supported path; the TorchScript exporter
    is the fallback for torch versions or models where it fails.
    """
    output_names = list(OUTPUTS) if wrapper.decoder is not None else ["logits"]
    example = torch.as_tensor(example)
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    with warnings.catch_warnings(), torch.no_grad(), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                wrapper, (example,), input_names=["skeleton"], output_names=output_names,
                dynamic_shapes=({0: batch, 1: time},), opset_version=opset, dynamo=True,
                verbose=False,
            )
            return program.model_proto, "dynamo"
        except Exception as dynamo_exc:  # the dynamo exporter raises many types; try the other
            import io

            import onnx

            buffer = io.BytesIO()
            try:
                torch.onnx.export(
                    wrapper, (example,), buffer, input_names=["skeleton"],
                    output_names=output_names, opset_version=opset, dynamo=False,
                    dynamic_axes={"skeleton": {0: "batch", 1: "time"}},
                )
            except Exception as exc:
                raise ExportError(f"both ONNX exporters failed: dynamo: {dynamo_exc}; "
                                  f"torchscript: {exc}") from exc
            return onnx.load_from_string(buffer.getvalue()), "torchscript"


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Silence a library's logger below ERROR for the block ("torchvision is not installed")."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _set_metadata(proto, meta: ModelMetadata) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
