"""The model registry: architecture name -> (model class, config class).

A checkpoint's spec stores ``{"architecture": name, "config": asdict(config)}``, so any tool
rebuilds a model from the checkpoint alone with :func:`create_model`. The built-in architectures
are registered when this module is imported; a name can be registered once, so a user's
``register_model`` adds to them and can never replace or hide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from restcn_infer.errors import LayoutError, RestcnError
from restcn_infer.spec import InputSpec
from restcn_training.ensemble import Ensemble, EnsembleConfig
from restcn_training.ms_res_tcn import MSResTCN, MSResTCNConfig
from restcn_training.network import SkeletonNetwork
from restcn_training.res_tcn import ResTCN, ResTCNConfig


class UnknownModelError(RestcnError, ValueError):
    """No architecture is registered under the name, or its config does not fit it."""


@dataclass(frozen=True)
class _Entry:
    model_cls: type[SkeletonNetwork]
    config_cls: type
    trainable: bool  # restcn-train can fit it from data (an ensemble is built from members)


_MODELS: dict[str, _Entry] = {}


def register_model(name: str, model_cls: type[SkeletonNetwork], config_cls: type, *,
                   trainable: bool = True) -> None:
    """Register ``name``; a second registration of the same name is a bug and raises.

    A trainable architecture's config class has ``for_input(spec, num_classes, **options)``.
    """
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = _Entry(model_cls, config_cls, trainable)


def model_names(*, trainable: bool = True) -> list[str]:
    """The registered architectures (``trainable=False``: all, ensembles included), sorted."""
    return sorted(name for name, entry in _MODELS.items() if entry.trainable or not trainable)


def create_model(name: str, config: dict[str, Any]) -> SkeletonNetwork:
    """Build architecture ``name`` from its config dict (as stored in a checkpoint).

    Raises:
        UnknownModelError: no such architecture, or a config it does not accept.
    """
    entry = _MODELS.get(name)
    if entry is None:
        raise UnknownModelError(f"unknown model {name!r}; expected one of "
                                f"{model_names(trainable=False)}")
    try:
        return entry.model_cls(entry.config_cls(**config))
    except (TypeError, ValueError) as exc:
        raise UnknownModelError(f"config of model {name!r} does not fit it: {exc}") from None


def config_for(name: str, spec: InputSpec, num_classes: int, **options: Any) -> dict[str, Any]:
    """The config dict of architecture ``name`` for ``spec``'s input (its config class's
    ``for_input``; options such as ``dropout``, ``channels``, ``target_joints``).

    Raises:
        UnknownModelError: no such architecture, or options it does not take or accept.
    """
    entry = _MODELS.get(name)
    if entry is None or not entry.trainable:
        raise UnknownModelError(f"unknown model {name!r}; expected one of {model_names()}")
    try:
        return entry.config_cls.for_input(spec, num_classes, **options).to_dict()
    except (TypeError, ValueError, LayoutError) as exc:
        raise UnknownModelError(f"model {name!r}: {exc}") from None


register_model("res-tcn", ResTCN, ResTCNConfig)
register_model("ms-res-tcn", MSResTCN, MSResTCNConfig)
register_model("ensemble", Ensemble, EnsembleConfig, trainable=False)
