"""The models bundled with the package, so ``restcn-infer classify FILE`` works right after install.

Both were trained on NW-UCLA (cross-view train split, views 1+2) by ``restcn-train`` with the
default recipe and exported by ``scripts/build_bundled_model.sh``; each one's metadata records
its training command and accuracy (``restcn-infer info NAME``):

- ``ms-res-tcn`` (the default): MS-Res-TCN, the refined model with a targeted stream on the
  hands; better on NW-UCLA view 3 (see README, "Fix").
- ``res-tcn``: the plain Res-TCN baseline, half the size and about twice as fast.
"""

from __future__ import annotations

import os
from pathlib import Path

from restcn_infer.errors import ModelError

BUNDLED_MODELS = {  # name: file beside this module
    "ms-res-tcn": "ms_res_tcn_nw_ucla.onnx",
    "res-tcn": "res_tcn_nw_ucla.onnx",
}
DEFAULT_MODEL = "ms-res-tcn"


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of bundled model ``name``; :class:`ModelError` if unknown or missing from this install."""
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
