"""A small model registry: architecture name -> (model class, config class).

Checkpoints store ``{"architecture": name, "config": asdict(config)}``, so any tool rebuilds a
model from the checkpoint alone with :func:`create_model`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_MODELS: dict[str, tuple[type[nn.Module], type]] = {}


def register_model(name: str, model_cls: type[nn.Module], config_cls: type) -> None:
    """Register ``name``; a second registration of the same name is a bug and raises."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = (model_cls, config_cls)


def model_names() -> list[str]:
    _register_builtins()
    return sorted(_MODELS)


def create_model(name: str, config: dict[str, Any]) -> nn.Module:
    """Build architecture ``name`` from its config dict (as stored in a checkpoint)."""
    _register_builtins()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_MODELS)}")
    model_cls, config_cls = _MODELS[name]
    return model_cls(config_cls(**config))


def _register_builtins() -> None:
    if _MODELS:
        return
    from restcn_training.res_tcn import ResTCN, ResTCNConfig

    register_model("res-tcn", ResTCN, ResTCNConfig)
    try:
        from restcn_training.ms_res_tcn import MSResTCN, MSResTCNConfig
    except ImportError:  # MS-Res-TCN lands separately
        return
    register_model("ms-res-tcn", MSResTCN, MSResTCNConfig)
