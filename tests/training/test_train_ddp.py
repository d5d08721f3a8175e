"""Data-parallel training under torchrun (2 CPU processes, gloo) on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from helpers import write_tiny_pyskl
from restcn_training.checkpoint import Checkpoint


def test_torchrun_two_processes_train_in_sync(tmp_path):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=6)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "restcn_cli.train", "--data", str(data), "--window", "16", "--epochs", "2",
           "--batch-size", "4", "--rotate", "20", "--ema", "0.9", "--device", "cpu",
           "--channels", "4,4,4,8,8,8,8,8,8", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["replicas_identical"] is True  # sha256 of every EMA weight equal on both ranks
    assert metrics["epochs"] == 2 and metrics["val_samples"] == 9
    assert len((out / "history.csv").read_text().splitlines()) == 3
    assert result.stdout.count("epoch   2") == 1  # only rank 0 reports

    ckpt = Checkpoint.load(out / "checkpoint.pt")
    assert not any(k.startswith("module.") for k in ckpt.state_dict)  # the unwrapped module
    model = ckpt.build_model()
    with torch.no_grad():
        assert model(torch.randn(2, 16, 60)).shape == (2, 3)
