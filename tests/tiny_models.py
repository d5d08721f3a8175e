"""Tiny restcn checkpoints and their ONNX exports, shared by the export/runtime tests.

Exports are cached per pytest session (the dynamo exporter takes seconds): ask for one through
:func:`exported_model` with the session's ``tmp_path_factory``.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = ["wave", "clap", "sit", "jump"]
WINDOW = 32
_CACHE: dict[tuple, Path] = {}


def write_checkpoint(path: Path, architecture: str = "res-tcn", seed: int = 0) -> Path:
    """A tiny random kinect20, one-body checkpoint with non-trivial BN statistics and mean."""
    import torch

    from restcn_infer.layouts import KINECT20
    from restcn_training.checkpoint import atomic_torch_save
    from restcn_training.registry import create_model

    torch.manual_seed(seed)
    d = KINECT20.num_joints * 3
    config = {"in_channels": d, "num_classes": len(CLASSES), "conv1_channels": 8,
              "unit_channels": (8, 8, 8, 12, 12, 12, 16, 16, 16)}
    if architecture == "ms-res-tcn":
        config |= {"num_joints": KINECT20.num_joints, "bodies": 1,
                   "target_joints": KINECT20.groups["hands"]}
    model = create_model(architecture, config).eval()
    model.set_mean(torch.randn(d))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    atomic_torch_save({
        "format": 1, "architecture": architecture, "config": model.config.to_dict(),
        "state_dict": model.state_dict(), "mean": model.mean.clone(), "classes": CLASSES,
        "layout": "kinect20", "bodies": 1, "window": WINDOW, "window_policy": "resample",
        "target_joints": list(config.get("target_joints", [])),
        "training": {"command": "restcn-train --data tiny.pkl", "data": "tiny"},
        "metrics": {"final_val_accuracy": 0.25},
    }, path)
    return path


def exported_model(tmp_path_factory, architecture: str = "res-tcn", **export_kwargs) -> Path:
    """The ONNX export of a tiny checkpoint (cached per session and arguments)."""
    from restcn_export.onnx_export import export_onnx

    key = (architecture, tuple(sorted(export_kwargs.items())))
    if key not in _CACHE:
        root = tmp_path_factory.mktemp("tiny_onnx")
        ckpt = write_checkpoint(root / "tiny.pt", architecture)
        _CACHE[key] = export_onnx(ckpt, root / "tiny.onnx", **export_kwargs).path
    return _CACHE[key]
