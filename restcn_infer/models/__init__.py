"""The models bundled with the package, so ``restcn-infer classify FILE`` works right after install.

All were trained on NW-UCLA (cross-view train split, views 1+2) by ``restcn-train``, seed 0,
and exported by ``scripts/build_bundled_model.sh``; each one's metadata records its exact
training commands, recipe and accuracy (``restcn-infer info NAME``):

- ``ensemble`` (the default): four Res-TCNs with the recipe (``--epochs 200 --dropout 0.3
  --roll 10``), one per modality (joint, bone, motion, bone-motion), fused by the mean of their
  log-probabilities in one graph; about four times the cost of one per window.
- ``res-tcn``: its joint member alone, the single-network choice.
- ``ms-res-tcn``: MS-Res-TCN with a targeted stream on the hands, the default recipe of the
  first release (README, "Bundled models").
"""

from __future__ import annotations

import os
from pathlib import Path

from restcn_infer.errors import ModelError

BUNDLED_MODELS = {  # name: file beside this module
    "ensemble": "ensemble_nw_ucla.onnx",
    "res-tcn": "res_tcn_nw_ucla.onnx",
    "ms-res-tcn": "ms_res_tcn_nw_ucla.onnx",
}
DEFAULT_MODEL = "ensemble"


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of bundled model ``name``; :class:`ModelError` if unknown or missing here."""
    if name not in BUNDLED_MODELS:
        raise ModelError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    path = Path(__file__).resolve().parent / BUNDLED_MODELS[name]
    if not path.is_file():
        raise ModelError(f"the bundled model {path} is missing from this install; pass --model "
                         "MODEL.onnx (build it with scripts/build_bundled_model.sh)")
    return path


def default_model_path() -> Path:
    """Path of the default bundled model (:data:`DEFAULT_MODEL`)."""
    return bundled_model_path(DEFAULT_MODEL)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``None`` -> the default bundled model; a bundled name (that is not also an existing path)
    -> that model; anything else -> the path as given."""
    if model is None:
        return default_model_path()
    if str(model) in BUNDLED_MODELS and not Path(model).exists():
        return bundled_model_path(str(model))
    return Path(model)
