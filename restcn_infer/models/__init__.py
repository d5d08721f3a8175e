"""The model bundled with the package, so ``restcn-infer classify FILE`` works right after install.

``res_tcn_nw_ucla.onnx``: Res-TCN trained on NW-UCLA (cross-view train split, views 1+2) by
``restcn-train`` and exported by ``scripts/build_bundled_model.sh``; its metadata records the
training command and accuracy (``restcn-infer info``).
"""

from __future__ import annotations

from pathlib import Path

from restcn_infer.errors import ModelError

BUNDLED_MODEL = "res_tcn_nw_ucla.onnx"


def default_model_path() -> Path:
    """Path of the bundled model; :class:`ModelError` if this install lacks it."""
    path = Path(__file__).resolve().parent / BUNDLED_MODEL
    if not path.is_file():
        raise ModelError(f"the bundled model {path} is missing from this install; pass --model "
                         "MODEL.onnx (build it with scripts/build_bundled_model.sh)")
    return path
