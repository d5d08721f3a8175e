"""For clients of a served model (Triton, or plain onnxruntime): the model's own input
preparation in one call, :func:`prepare_batch`, its answers as rankings, :func:`rank_logits`,
and its description from Triton, :func:`metadata_from_triton_config`.

A served graph reads raw coordinates already in the model's joint layout, with its number of
bodies and brought to its window by its window policy (``resample`` or ``pad``), flattened
body-major: ``(batch, window, D)`` float32. Sending a raw recording instead would run, but on
the wrong input. :func:`prepare_batch` applies exactly what ``restcn-infer classify`` applies
(:func:`restcn_infer.checked_input.prepare_checked`: units and axis options, layout found and
mapped, the plausibility check against the model's training data, the window policy), and
:func:`rank_logits` refuses non-finite scores row by row, so a remote client needs only numpy::

    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient("localhost:8000")
    meta = metadata_from_triton_config(client.get_model_config("nw-ucla"))
    x = prepare_batch(meta, [read_keypoints(p) for p in paths])   # (B, window, D)
    ...                                                           # logits (B, C) from Triton
    for top in rank_logits(meta, logits): ...                     # list[Prediction] or error

Every input of one batch then has the same shape, which is also what Triton's dynamic batcher
needs to put requests together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from restcn_infer.checked_input import (
    NonFiniteScoresError,
    Prediction,
    finite_rows,
    prepare_checked,
    rank,
)
from restcn_infer.errors import ModelError
from restcn_infer.input_options import InputOptions
from restcn_infer.metadata import METADATA_KEY, ModelMetadata
from restcn_infer.plausibility import InputChecker
from restcn_infer.readers.keypoints import Keypoints
from restcn_infer.spec import ModelSpec


def _spec(model: ModelMetadata | ModelSpec) -> ModelSpec:
    if isinstance(model, ModelMetadata):
        return model.spec
    if isinstance(model, ModelSpec):
        return model
    raise TypeError(f"expected the model's ModelMetadata or ModelSpec (its training data's "
                    f"envelope checks the input), got {type(model).__name__}")


def prepare_batch(model: ModelMetadata | ModelSpec,
                  sequences: Sequence[np.ndarray | Keypoints], *,
                  sources: Sequence[object] | None = None,
                  options: InputOptions | None = None) -> np.ndarray:
    """Sequences as one network input ``(B, window, D)`` float32, each checked as
    ``restcn-infer classify`` checks a file.

    Args:
        model: the served model's metadata (:func:`metadata_from_triton_config`) or spec.
        sequences: float32 ``(M, T, V, C)`` / ``(T, V, C)`` arrays (their layout declared by
            ``options.layout`` or found by joint count, as for files), or :class:`Keypoints`
            from :func:`restcn_infer.readers.read_keypoints` (their own layout; joints already
            masked by confidence as wanted: ``kp.masked(threshold)``).
        sources: a name per sequence for error messages (file paths).
        options: units, flip-y, layout, accept-implausible, as the CLIs' options.

    Raises:
        SkeletonFormatError: naming the source: a sequence that cannot be prepared, or
            (:class:`~restcn_infer.plausibility.ImplausibleInputError`) unlike the model's
            training data (centimetres, y down, another layout); the error says what to pass.
        ValueError: ``sources`` not one per sequence.
    """
    spec = _spec(model)
    options = options or InputOptions()
    options.check_model(spec.input)
    checker = InputChecker(spec, accept_implausible=options.accept_implausible)
    if sources is not None and len(sources) != len(sequences):
        raise ValueError(f"{len(sources)} sources for {len(sequences)} sequences")
    rows = []
    for i, seq in enumerate(sequences):
        source = sources[i] if sources is not None else f"<sequence {i}>"
        if isinstance(seq, Keypoints):
            prepared = prepare_checked(spec, checker, options,
                                       seq.sequence(source, spec.input.coords),
                                       source_layout=seq.layout, source=source)
        else:
            prepared = prepare_checked(spec, checker, options, seq, source=source)
        rows.append(prepared.x)
    if not rows:
        return np.zeros((0, spec.input.window, spec.input.D), dtype=np.float32)
    return np.stack(rows)  # (B, window, D)


def rank_logits(model: ModelMetadata | ModelSpec, logits: np.ndarray, top_k: int = 5, *,
                sources: Sequence[object] | None = None
                ) -> list[list[Prediction] | NonFiniteScoresError]:
    """The served model's ``logits (B, C)`` as the ``top_k`` classes per row (softmax
    probabilities), or, for a row that holds NaN or infinity, the error naming its source:
    one bad row never costs the others their answer."""
    classes = _spec(model).classes
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ValueError(f"expected logits of shape (B, {len(classes)}), got {logits.shape}")
    ok = finite_rows(logits)
    tops = iter(rank(classes, logits[ok], top_k) if ok.any() else [])
    return [next(tops) if ok[b] else NonFiniteScoresError(
        sources[b] if sources is not None else f"<sequence {b}>") for b in range(len(logits))]


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
