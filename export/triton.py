"""An exported model as a Triton Inference Server model repository (onnxruntime backend):
:func:`write_triton_repository` (``restcn-export ... --triton-repo DIR [--triton-name NAME]``).

Written, for a model exported with the Feature Map Decoder::

    DIR/NAME/config.pbtxt            backend onnxruntime, max_batch_size, dynamic_batching
    DIR/NAME/labels.txt              class names, line i = class i (``label_filename`` of logits)
    DIR/NAME/1/model.onnx            skeleton (batch, time, D) -> logits (batch, classes)
    DIR/NAME_decoded/...             the same, and decoded (batch, L, time, D)

In ``config.pbtxt`` the batch axis is Triton's (``max_batch_size``), ``-1`` stands for the time
axis, and the parameter ``restcn`` holds the model's metadata JSON (classes, layout, window and
policy, mean skeleton), so a client can fetch it with ``get_model_config`` and prepare input
with :func:`restcn_infer.client.prepare_batch`.

**Why two models, not the optional ``decode`` input.** The exported graph gates its decoder
behind an optional scalar input ``decode`` (an overridable initializer, default true). Triton's
onnxruntime backend refuses optional inputs on models that batch ("optional input ... is not
supported for models that support batching", ``src/onnxruntime.cc`` ``ValidateInputs``), and a
scalar has no batch axis. So each served graph has ``decode`` fixed (an initializer, no input):
``NAME`` without the decoder head (pruned from the graph: logits-only requests never pay for
it), ``NAME_decoded`` with it. A client that wants decoded skeletons asks the second model;
requests to one model always have the same inputs and batch together. Other outputs of the
export (diagnosis heads, per-model constants) are not served.

Each file is written atomically; other models and versions in ``DIR`` are left alone.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, numpy_helper

from restcn_export.errors import ExportError
from restcn_export.passes.graph_walk import ancestors, node_inputs
from restcn_infer.atomic import atomic_path, atomic_write_text
from restcn_infer.errors import ModelError
from restcn_infer.metadata import METADATA_KEY, ModelMetadata

#: Largest batch Triton's dynamic batcher forms.
DEFAULT_MAX_BATCH_SIZE = 64
#: How long the batcher waits for more requests (microseconds).
DEFAULT_QUEUE_DELAY_US = 2000
INPUT = "skeleton"
DECODE_INPUT = "decode"
LOGITS, DECODED = "logits", "decoded"
LABELS_FILE = "labels.txt"
#: Where the restcn metadata JSON sits in ``config.pbtxt`` (``parameters``).
PARAMETER_KEY = METADATA_KEY
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_TRITON_TYPES = {TensorProto.FLOAT: "TYPE_FP32", TensorProto.FLOAT16: "TYPE_FP16",
                 TensorProto.DOUBLE: "TYPE_FP64", TensorProto.BOOL: "TYPE_BOOL",
                 TensorProto.INT64: "TYPE_INT64", TensorProto.INT32: "TYPE_INT32",
                 TensorProto.UINT8: "TYPE_UINT8", TensorProto.INT8: "TYPE_INT8"}


@dataclass(frozen=True)
class TritonModel:
    """One model of the repository: its folder, files, and tensors as ``(name, type, dims)``
    with the batch axis left out (Triton's convention)."""

    name: str
    folder: Path
    config: Path
    model: Path
    labels: Path
    inputs: tuple[tuple[str, str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, str, tuple[int, ...]], ...]


def write_triton_repository(model_path: str | os.PathLike[str], repo: str | os.PathLike[str],
                            name: str | None = None, *,
                            max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                            queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
                            version: int = 1) -> list[TritonModel]:
    """Write the exported ``model_path`` into the Triton repository ``repo`` (module docstring).

    Args:
        name: the model's name in the repository; default the ONNX file's stem.

    Raises:
        ExportError: a bad name or setting, or a file that is not a restcn export (no metadata,
            no ``skeleton`` input with a batch axis, no ``logits``).
    """
    model_path, repo = Path(model_path), Path(repo)
    name = model_path.stem if name is None else name
    check_repository(repo, name)
    if max_batch_size < 1 or queue_delay_us < 0 or version < 1:
        raise ExportError(f"max_batch_size must be >= 1, queue_delay_us >= 0 and version >= 1, "
                          f"got {max_batch_size}, {queue_delay_us}, {version}")
    try:
        proto = onnx.load(str(model_path))
    except (OSError, DecodeError) as exc:
        raise ExportError(f"{model_path}: cannot read the ONNX model ({exc})") from None
    meta = _metadata(proto, model_path)
    outputs = {o.name for o in proto.graph.output}
    if LOGITS not in outputs:
        raise ExportError(f"{model_path}: the graph has no '{LOGITS}' output")
    variants = [(name, (LOGITS,), False)]
    if DECODED in outputs and meta.decoder_layers:
        variants.append((f"{name}_decoded", (LOGITS, DECODED), True))
    written = []
    for model_name, keep, decode in variants:
        graph = served_graph(proto, keep, decode)
        served_meta = meta if decode else dataclasses.replace(meta, decoder_layers=())
        _set_metadata(graph, served_meta)
        written.append(_write_model(repo / model_name, model_name, graph, served_meta,
                                    max_batch_size, queue_delay_us, version))
    return written


def check_repository(repo: str | os.PathLike[str], name: str) -> None:
    """Refuse, before any work, a model name Triton cannot serve or a repository path that is
    a file.

    Raises:
        ExportError: saying which.
    """
    if not _NAME.match(name):
        raise ExportError(f"Triton model name {name!r}: use 1-100 letters, digits, '_', '.' "
                          "or '-', starting with a letter or digit")
    if Path(repo).exists() and not Path(repo).is_dir():
        raise ExportError(f"{repo}: not a folder; --triton-repo names the repository folder")


def served_graph(proto: onnx.ModelProto, keep: Sequence[str], decode: bool) -> onnx.ModelProto:
    """A copy of ``proto`` with only the outputs ``keep``, the ``decode`` input fixed to
    ``decode`` (no longer an input), and the nodes and initializers nothing kept needs removed.
    """
    graph = onnx.ModelProto()
    graph.CopyFrom(proto)
    g = graph.graph
    kept = [o for o in g.output if o.name in keep]
    del g.output[:]
    g.output.extend(kept)
    inputs = [i for i in g.input if i.name != DECODE_INPUT]
    del g.input[:]
    g.input.extend(inputs)
    for init in g.initializer:
        if init.name == DECODE_INPUT:
            init.CopyFrom(numpy_helper.from_array(np.array(decode), DECODE_INPUT))
    needed = ancestors(g, list(keep))
    nodes = [node for i, node in enumerate(g.node) if i in needed]
    del g.node[:]
    g.node.extend(nodes)
    used = {name for node in g.node for name in node_inputs(node)} | set(keep)
    inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    names = {o for node in g.node for o in node.output} | {i.name for i in g.input}
    info = [v for v in g.value_info if v.name in names]
    del g.value_info[:]
    g.value_info.extend(info)
    try:
        onnx.checker.check_model(graph)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the served graph fails onnx.checker: {exc}") from exc
    return graph


def config_text(name: str, proto: onnx.ModelProto, meta: ModelMetadata, *,
                max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> str:
    """``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``) for ``proto``."""
    inputs = [_tensor(t) for t in proto.graph.input]
    outputs = [_tensor(t) for t in proto.graph.output]
    lines = [f"name: {_quote(name)}", 'backend: "onnxruntime"',
             f"max_batch_size: {max_batch_size}", "input ["]
    lines += _tensor_lines(inputs)
    lines += ["]", "output ["]
    lines += _tensor_lines(outputs, labels={LOGITS: LABELS_FILE})
    lines += ["]", f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}",
              "parameters {", f"  key: {_quote(PARAMETER_KEY)}",
              f"  value: {{ string_value: {_quote(meta.to_json())} }}", "}", ""]
    return "\n".join(lines)


def _write_model(folder: Path, name: str, graph: onnx.ModelProto, meta: ModelMetadata,
                 max_batch_size: int, queue_delay_us: int, version: int) -> TritonModel:
    model = folder / str(version) / "model.onnx"
    try:
        with atomic_path(model) as tmp:
            onnx.save_model(graph, str(tmp))
        labels = atomic_write_text(folder / LABELS_FILE,
                                   "".join(f"{c}\n" for c in meta.spec.classes))
        config = atomic_write_text(folder / "config.pbtxt", config_text(
            name, graph, meta, max_batch_size=max_batch_size, queue_delay_us=queue_delay_us))
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write the Triton model ({exc.strerror or exc})"
                          ) from None
    return TritonModel(name=name, folder=folder, config=config, model=model, labels=labels,
                       inputs=tuple(_tensor(t) for t in graph.graph.input),
                       outputs=tuple(_tensor(t) for t in graph.graph.output))


def _metadata(proto: onnx.ModelProto, path: Path) -> ModelMetadata:
    props = {p.key: p.value for p in proto.metadata_props}
    try:
        meta = ModelMetadata.from_props(props, str(path))
    except ModelError as exc:
        raise ExportError(str(exc)) from None
    graph_inputs = [i for i in proto.graph.input if i.name != DECODE_INPUT]
    if [i.name for i in graph_inputs] != [INPUT]:
        raise ExportError(f"{path}: expected the one input '{INPUT}', got "
                          f"{[i.name for i in graph_inputs]}")
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if len(dims) != 3 or dims[0].HasField("dim_value"):
        raise ExportError(f"{path}: input '{INPUT}' must be (batch, time, D) with a dynamic "
                          "batch axis")
    return meta


def _set_metadata(proto: onnx.ModelProto, meta: ModelMetadata) -> None:
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = meta.to_json()


def _tensor(value: onnx.ValueInfoProto) -> tuple[str, str, tuple[int, ...]]:
    """``(name, Triton type, dims without the batch axis)``; symbolic dims are -1."""
    tensor = value.type.tensor_type
    kind = _TRITON_TYPES.get(tensor.elem_type)
    if kind is None:
        raise ExportError(f"tensor {value.name!r} has ONNX type {tensor.elem_type}, which this "
                          "writer does not map to Triton")
    dims = tensor.shape.dim
    if not dims or dims[0].HasField("dim_value"):
        raise ExportError(f"tensor {value.name!r} has no dynamic batch axis; Triton batches "
                          "every input and output")
    return value.name, kind, tuple(d.dim_value if d.HasField("dim_value") else -1
                                   for d in dims[1:])


def _tensor_lines(tensors: list[tuple[str, str, tuple[int, ...]]],
                  labels: dict[str, str] | None = None) -> list[str]:
    lines = []
    for i, (name, kind, dims) in enumerate(tensors):
        label = (f" label_filename: {_quote(labels[name])}" if labels and name in labels
                 else "")
        comma = "," if i < len(tensors) - 1 else ""
        lines.append(f"  {{ name: {_quote(name)} data_type: {kind} "
                     f"dims: [ {', '.join(map(str, dims))} ]{label} }}{comma}")
    return lines


def _quote(text: str) -> str:
    """A protobuf text-format string literal (backslash, quote and control escapes)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    if not escaped.isascii():
        escaped = "".join(c if c.isascii() else "".join(f"\\{b:03o}" for b in c.encode())
                          for c in escaped)
    return f'"{escaped}"'
