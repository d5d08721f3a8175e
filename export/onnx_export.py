"""Checkpoint -> self-describing ONNX model, checked against torch before it is written.

One graph per network (DESIGN section 6)::

    skeleton (batch, time, D) float32, raw coordinates (the graph subtracts the mean skeleton)
      -> logits  (batch, classes)
      -> decoded (batch, L, time, D)   the Feature Map Decoder of layers L (omitted with no layers)

The ONNX ``metadata_props`` key ``restcn`` holds :class:`restcn_infer.metadata.ModelMetadata` as
JSON; the key ``restcn_export`` records how the file was made (precision, opset, exporter, parity).

Nothing is written unless onnxruntime agrees with torch to :data:`PARITY_TOLERANCE` on random
input (two batch sizes and two lengths, so the dynamic axes are exercised) and on real input when
given: the graph goes to a temp file beside ``out_path`` and is renamed over it only on success.

Two graph passes follow the export, both covered by the parity check: the decoder head is put
behind an optional ``decode`` input (:mod:`.decoder_gate`), and 1-D convolutions run as 2-D ones
for onnxruntime's fast CPU kernels (:mod:`.conv_layout`).

Precision ``fp16`` stores the weights as float16 (half the file) and computes in float32: the
torch weights are rounded to float16 *before* export, so the checked graph holds exactly the
values the float16 file stores and the parity check stays exact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restcn_export.conv_layout import conv1d_as_conv2d
from restcn_export.decoder_gate import DECODE_INPUT, gate_decoder
from restcn_infer.errors import ModelError
from restcn_infer.layouts import get_layout, layout_for_joints
from restcn_infer.metadata import METADATA_KEY, ModelMetadata
from restcn_infer.preprocess import to_model_input
from restcn_training.checkpoint import load_checkpoint, model_from_checkpoint

PARITY_TOLERANCE = 1e-4
DEFAULT_OPSET = 18
DEFAULT_DECODER_LAYERS = (1, 4, 7, 10)
PRECISIONS = ("fp32", "fp16")
EXPORT_KEY = "restcn_export"


class ExportError(RuntimeError):
    """The model could not be exported, or the exported graph disagrees with torch."""


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


class ExportWrapper(nn.Module):
    """The exported graph: ``skeleton (B, T, D)`` -> ``logits`` [, ``decoded (B, L, T, D)``].

    Uses the model's ``forward_with_layers(x) -> (logits, main_stream_layers)`` when it has one
    (MS-Res-TCN), else ``forward_layers`` + ``forward_head`` (Res-TCN).
    """

    def __init__(self, model: nn.Module, decoder: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.decoder = decoder

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.model, "forward_with_layers"):
            logits, layers = self.model.forward_with_layers(skeleton)
        else:
            layers = self.model.forward_layers(skeleton)  # 10 x (B, C_l, T_l)
            logits = self.model.forward_head(layers[-1])  # (B, classes)
        if self.decoder is None:
            return logits
        return logits, self.decoder(layers, skeleton.shape[1])  # (B, L, T, D)


def make_decoder(model: nn.Module, layers: Sequence[int] | None) -> nn.Module | None:
    """The Feature Map Decoder for ``layers``; ``None`` means the default layers when available.

    Raises:
        ExportError: layers were asked for but ``restcn_training.decoder`` cannot be imported.
    """
    try:
        from restcn_training.decoder import FeatureMapDecoder
    except ImportError as exc:
        if layers is None:
            return None
        raise ExportError(f"decoder layers {list(layers)} requested but the Feature Map Decoder "
                          f"is not available ({exc}); export with --no-decoder") from exc
    layers = DEFAULT_DECODER_LAYERS if layers is None else tuple(layers)
    if not layers:
        return None
    try:
        return FeatureMapDecoder(model, layers).eval()
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def metadata_from_checkpoint(ckpt: dict[str, Any], decoder_layers: Sequence[int]) -> ModelMetadata:
    """The runtime's view of a checkpoint: everything it needs, nothing torch."""
    layout = get_layout(ckpt["layout"])
    mean = ckpt.get("mean", ckpt["state_dict"]["mean"])
    meta = ModelMetadata(
        architecture=ckpt["architecture"],
        layout=layout.name,
        joint_names=list(layout.joint_names),
        bodies=int(ckpt["bodies"]),
        D=int(ckpt["config"]["in_channels"]),
        window=int(ckpt["window"]),
        window_policy=ckpt.get("window_policy", "resample"),
        classes=[str(c) for c in ckpt["classes"]],
        mean=[float(v) for v in torch.as_tensor(mean).flatten()],
        decoder_layers=[int(layer) for layer in decoder_layers],
        target_joints=[int(j) for j in ckpt.get("target_joints", [])],
        training=_plain(ckpt.get("training", {})),
        metrics=_plain(ckpt.get("metrics", {})),
    )
    try:
        meta.validate("checkpoint")
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    return meta


def _plain(value: Any) -> Any:
    """JSON-safe copy of checkpoint extras (tensors and numpy scalars become numbers/lists)."""
    return json.loads(json.dumps(value, default=lambda v: np.asarray(v).tolist()))


def check_inputs(meta: ModelMetadata, check_data: str | os.PathLike[str] | None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for the parity check: name -> ``(B, T, D)`` float32.

    ``random`` is the mean skeleton plus unit noise at two batch sizes and lengths (the window
    and an odd short length, so both dynamic axes are exercised); ``real`` comes from
    ``check_data`` (any file :func:`restcn_infer.load_sequence` reads, or a PYSKL dataset
    pickle, whose first 8 sequences are used), preprocessed exactly as the runtime will.
    """
    rng = np.random.default_rng(seed)
    mean = meta.mean_array()
    inputs = {
        "random": (mean + rng.standard_normal((2, meta.window, meta.D))).astype(np.float32),
        "random_short": (mean + rng.standard_normal((3, 17, meta.D))).astype(np.float32),
    }
    if check_data is not None:
        seqs = _read_check_data(Path(check_data))
        inputs["real"] = np.stack([
            to_model_input(s, layout=meta.joint_layout, bodies=meta.bodies, window=meta.window,
                           policy=meta.window_policy, source_layout=layout_for_joints(s.shape[2]))
            for s in seqs
        ])
    return inputs


def _read_check_data(path: Path) -> list[np.ndarray]:
    from restcn_infer.readers import load_sequence
    from restcn_infer.readers.pyskl import read_pyskl

    if path.suffix.lower() in (".pkl", ".pickle"):
        dataset = read_pyskl(path)
        return [ann.keypoint for ann in list(dataset.annotations.values())[:8]]
    return [load_sequence(path)]


def export_onnx(
    checkpoint_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    decoder_layers: Sequence[int] | None = None,
    precision: str = "fp32",
    check_data: str | os.PathLike[str] | None = None,
) -> ExportReport:
    """Export a restcn checkpoint to ONNX, check it, and write it atomically.

    Args:
        checkpoint_path: a checkpoint written by ``restcn-train``.
        out_path: the ``.onnx`` file to write (replaced only if every check passes).
        opset: ONNX opset of the graph.
        decoder_layers: layers of the ``decoded`` output; ``None``: 1,4,7,10 when the decoder
            is available; empty: no decoder head.
        precision: ``fp32`` or ``fp16`` (float16 weight storage, float32 compute).
        check_data: optional real sequence(s) for the parity check (see :func:`check_inputs`).

    Raises:
        ExportError: unknown precision, a decoder that cannot be built, a failed
            ``onnx.checker`` or a parity difference above :data:`PARITY_TOLERANCE`.
        ValueError / FileNotFoundError: the checkpoint cannot be read.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    ckpt = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(ckpt)
    if precision == "fp16":
        _round_to_fp16(model)
    decoder = make_decoder(model, decoder_layers)
    layers = tuple(decoder.layers) if decoder is not None else ()
    meta = metadata_from_checkpoint(ckpt, layers)
    wrapper = ExportWrapper(model, decoder).eval()

    proto, exporter = _export_graph(wrapper, meta, opset)
    if decoder is not None:
        gate_decoder(proto)
    conv1d_as_conv2d(proto)
    if precision == "fp16":
        _store_fp16(proto)
    _set_metadata(proto, meta, {"precision": precision, "opset": opset, "exporter": exporter,
                                "torch": torch.__version__})
    import onnx

    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported graph fails onnx.checker: {exc}") from exc

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    try:
        diffs = _write_checked(proto, Path(tmp), wrapper, check_inputs(meta, check_data))
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a model is meant to be shared
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportReport(path=out_path, size_bytes=out_path.stat().st_size, opset=opset,
                        precision=precision, exporter=exporter, decoder_layers=layers,
                        max_abs_diff=diffs, metadata=meta)


def _export_graph(wrapper: ExportWrapper, meta: ModelMetadata, opset: int):
    """Trace ``wrapper`` to an ``onnx.ModelProto`` with dynamic batch and time.

    The dynamo exporter (``torch.export``) is torch's supported path; the TorchScript exporter
    is the fallback for torch versions or models where it fails.
    """
    output_names = ["logits"] + (["decoded"] if wrapper.decoder is not None else [])
    example = torch.as_tensor(check_inputs(meta, None)["random"])
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
    """Silence a library's logger below ERROR for the block (e.g. "torchvision is not installed")."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _set_metadata(proto, meta: ModelMetadata, export_info: dict[str, Any]) -> None:
    del proto.metadata_props[:]
    for key, value in ((METADATA_KEY, meta.to_json()), (EXPORT_KEY, json.dumps(export_info))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _round_to_fp16(model: nn.Module) -> None:
    """Round every float parameter and buffer to the nearest float16 value (kept as float32)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def _store_fp16(proto) -> None:
    """Store float32 initializers as float16 + a ``Cast`` back, where that loses nothing.

    onnxruntime folds the casts when it loads the model, so compute stays float32.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.size < 16 or not np.array_equal(half.astype(np.float32), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}__cast"))
    nodes = casts + list(graph.node)  # casts first keeps the node list topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)


def _write_checked(proto, path: Path, wrapper: ExportWrapper,
                   inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Write ``proto`` to ``path`` and compare onnxruntime with torch on every input.

    Returns the largest absolute difference per input; raises :class:`ExportError` above
    :data:`PARITY_TOLERANCE`.
    """
    import onnx
    import onnxruntime as ort

    onnx.save_model(proto, str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    diffs = {}
    for name, x in inputs.items():
        with torch.no_grad():
            expected = wrapper(torch.from_numpy(x))
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {"skeleton": x})
        if wrapper.decoder is not None:  # logits alone, decoder head skipped
            got.append(session.run(["logits"], {"skeleton": x, DECODE_INPUT: np.array(False)})[0])
            expected = (*expected, expected[0])
        diffs[name] = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
    worst = max(diffs, key=diffs.get)
    if not diffs[worst] <= PARITY_TOLERANCE:  # also catches NaN
        raise ExportError(f"onnxruntime disagrees with torch on {worst} input: max abs diff "
                          f"{diffs[worst]:.3g} > {PARITY_TOLERANCE:g}; nothing written")
    return diffs
