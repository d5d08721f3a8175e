"""For clients of a served model (Triton, or plain onnxruntime): the model's own input
preparation in one call, :func:`prepare_batch`, and its description from Triton,
:func:`metadata_from_triton_config`.

A served graph reads raw coordinates already in the model's joint layout, with its number of
bodies and brought to its window by its window policy (``resample`` or ``pad``), flattened
body-major: ``(batch, window, D)`` float32. Sending a raw recording instead would run, but on
the wrong input. :func:`prepare_batch` applies exactly what ``restcn-infer classify`` applies
(:meth:`restcn_infer.spec.InputSpec.prepare`), so a remote client needs only numpy::

    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient("localhost:8000")
    meta = metadata_from_triton_config(client.get_model_config("nw-ucla"))
    x = prepare_batch(meta, [read_keypoints(p) for p in paths])   # (B, window, D)

Every input of one batch then has the same shape, which is also what Triton's dynamic batcher
needs to put requests together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from restcn_infer.errors import ModelError
from restcn_infer.metadata import METADATA_KEY, ModelMetadata
from restcn_infer.readers.keypoints import Keypoints
from restcn_infer.spec import InputSpec, ModelSpec


def prepare_batch(model: ModelMetadata | ModelSpec | InputSpec,
                  sequences: Sequence[np.ndarray | Keypoints], *,
                  sources: Sequence[object] | None = None) -> np.ndarray:
    """Sequences as one network input ``(B, window, D)`` float32.

    Args:
        sequences: float32 ``(M, T, V, C)`` / ``(T, V, C)`` arrays (their layout found by joint
            count, as for files), or :class:`Keypoints` from
            :func:`restcn_infer.readers.read_keypoints` (their own layout; joints already
            masked by confidence as wanted: ``kp.masked(threshold)``).
        sources: a name per sequence for error messages (file paths).

    Raises:
        SkeletonFormatError: naming the source: a sequence that cannot be prepared.
    """
    spec = model.spec.input if isinstance(model, ModelMetadata) else (
        model.input if isinstance(model, ModelSpec) else model)
    if sources is not None and len(sources) != len(sequences):
        raise ValueError(f"{len(sources)} sources for {len(sequences)} sequences")
    rows = []
    for i, seq in enumerate(sequences):
        source = sources[i] if sources is not None else f"<sequence {i}>"
        if isinstance(seq, Keypoints):
            rows.append(spec.prepare(seq.sequence(source, spec.coords), layout=seq.layout,
                                     source=source))
        else:
            rows.append(spec.prepare(seq, source=source))
    if not rows:
        return np.zeros((0, spec.window, spec.D), dtype=np.float32)
    return np.stack(rows)  # (B, window, D)


def metadata_from_triton_config(config: Mapping[str, Any]) -> ModelMetadata:
    """The model metadata a restcn Triton model carries in its config parameter ``restcn``.

    Args:
        config: what ``tritonclient.http`` ``get_model_config(name)`` returns, or
            ``tritonclient.grpc`` ``get_model_config(name, as_json=True)`` (``{"config": ...}``).

    Raises:
        ModelError: the config has no restcn metadata, or it cannot be honoured.
    """
    config = config.get("config", config) if isinstance(config, Mapping) else config
    params = config.get("parameters", {}) if isinstance(config, Mapping) else {}
    entry = params.get(METADATA_KEY) if isinstance(params, Mapping) else None
    text = None
    if isinstance(entry, Mapping):
        text = entry.get("string_value", entry.get("stringValue"))
    name = config.get("name", "model") if isinstance(config, Mapping) else "model"
    if not isinstance(text, str):
        raise ModelError(f"Triton model {name!r}: its config has no '{METADATA_KEY}' parameter; "
                         "was its repository written by restcn-export --triton-repo?")
    return ModelMetadata.from_json(text, f"Triton model {name!r}")
