"""The one atomic write: the target is the old file or the new one, never torn, and nothing is
left behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from restcn_infer.atomic import FILE_MODE, atomic_path, atomic_write, atomic_write_bytes


def test_a_write_replaces_the_file_with_shared_permissions(tmp_path):
    target = tmp_path / "sub" / "model.onnx"  # the folder is created
    atomic_write_bytes(target, b"old")
    atomic_write(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == FILE_MODE
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "run.json"
    target.write_bytes(b"old")

    def write(fh):
        fh.write(b"half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_temporary_names_are_beside_the_target_and_unpredictable(tmp_path):
    target = tmp_path / "x.npz"
    names = []
    for _ in range(2):
        with atomic_path(target) as tmp:
            names.append(tmp.name)
            assert tmp.parent == tmp_path and tmp.name.startswith(".x.npz.")
            tmp.write_bytes(b"1")
    assert names[0] != names[1] and target.read_bytes() == b"1"
