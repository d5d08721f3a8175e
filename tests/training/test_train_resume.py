"""Nothing lost: a run killed with SIGKILL and resumed ends with the uninterrupted run's weights
(trained and EMA)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from helpers import write_tiny_pyskl
from restcn_cli.train import app
from restcn_training.checkpoint import Checkpoint

EPOCHS = 30


pytestmark = pytest.mark.usefixtures("one_thread")


def _args(data, out) -> list[str]:
    return ["--data", str(data), "--train-split", "train", "--val-split", "val", "--window", "16",
            "--epochs", str(EPOCHS), "--batch-size", "4", "--lr", "0.05", "--schedule", "cosine",
            "--rotate", "30", "--scale", "0.1", "--crop", "0.8", "--seed", "3", "--device", "cpu",
            "--ema", "0.9", "--channels", "4,4,4,8,8,8,8,8,8", "--out", str(out)]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=8)
    runner = CliRunner()
    reference = runner.invoke(app, _args(data, tmp_path / "reference"))
    assert reference.exit_code == 0, reference.output

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", "from restcn_cli.train import app; app()",
                             *_args(data, run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists():  # written atomically: exists = one whole epoch saved
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no last.pt after 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(run / "last.pt", weights_only=True)
    assert 1 <= saved["epoch"] < EPOCHS and not (run / "checkpoint.pt").exists()

    resumed = runner.invoke(app, [*_args(data, run), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    ours = Checkpoint.load(run / "checkpoint.pt")
    theirs = Checkpoint.load(tmp_path / "reference" / "checkpoint.pt")
    assert ours.state_dict.keys() == theirs.state_dict.keys()
    for name, tensor in theirs.state_dict.items():
        assert torch.equal(ours.state_dict[name], tensor), name
    assert ours.spec.metrics["final_val_accuracy"] == theirs.spec.metrics["final_val_accuracy"]
    ours = torch.load(run / "last.pt", weights_only=True)["model"]  # the trained weights
    theirs = torch.load(tmp_path / "reference" / "last.pt", weights_only=True)["model"]
    for name, tensor in theirs.items():
        assert torch.equal(ours[name], tensor), name
    lines = (run / "history.csv").read_text().splitlines()
    assert len(lines) == EPOCHS + 1


def test_resume_refuses_other_arguments(tmp_path):
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=4)
    runner = CliRunner()
    args = _args(data, tmp_path / "run")
    args[args.index("--epochs") + 1] = "1"
    assert runner.invoke(app, args).exit_code == 0
    args[args.index("--lr") + 1] = "0.1"
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 1 and "different arguments (lr)" in result.output


def test_a_run_recorded_before_later_options_resumes_with_them_off(tmp_path):
    """last.pt from before --ema and --tilt existed: its recipe lacks them, and they were off."""
    data = write_tiny_pyskl(tmp_path / "tiny.pkl", per_class=4)
    runner = CliRunner()
    args = _args(data, tmp_path / "run")
    args[args.index("--epochs") + 1] = "1"
    args[args.index("--ema") + 1] = "0"
    args += ["--tilt", "0"]
    assert runner.invoke(app, args).exit_code == 0
    last = tmp_path / "run" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["recipe"]["ema"], state["recipe"]["augmentation"]["tilt"]
    torch.save(state, last)
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    args[args.index("--tilt") + 1] = "15"
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 1 and "different arguments (augmentation.tilt)" in result.output
