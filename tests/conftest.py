"""Shared fixtures: real data from ``../shared/data`` (skipped cleanly when absent) and tiny
exported models (one export per configuration per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FORMAT_V1 = Path(__file__).resolve().parent / "data" / "format_v1"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo; the test is skipped when it is not there."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """``tiny_export(architecture="res-tcn", *, window=32, classes=None, policy="resample",
    **export_kwargs) -> Path``: the ONNX export of a tiny random checkpoint
    (:func:`helpers.write_checkpoint`), made once per configuration per session. Needs torch."""
    pytest.importorskip("torch")
    from helpers import WINDOW, write_checkpoint
    from restcn_export.onnx_export import export_onnx

    cache: dict[tuple, Path] = {}

    def make(architecture: str = "res-tcn", *, window: int = WINDOW,
             classes: tuple[str, ...] | None = None, policy: str = "resample",
             **export_kwargs) -> Path:
        key = (architecture, window, classes, policy, tuple(sorted(export_kwargs.items())))
        if key not in cache:
            root = tmp_path_factory.mktemp(f"tiny_{architecture}")
            ckpt = write_checkpoint(root / "tiny.pt", architecture, window=window,
                                    classes=list(classes) if classes else None, policy=policy)
            cache[key] = export_onnx(ckpt, root / "tiny.onnx", **export_kwargs).path
        return cache[key]

    return make


@pytest.fixture
def one_thread():
    """torch on one thread: tiny models gain nothing from threads and lose much on a busy
    machine, and every run (and a killed subprocess) then does the same float arithmetic."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
