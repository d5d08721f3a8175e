"""The runtime never imports torch or onnx: import it, run ``restcn-infer --help`` and ``classify``
in a fresh interpreter where any attempt to import them (or the training/export code) is
recorded and refused by a meta path finder."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

BLOCKED = ("torch", "onnx", "onnxscript", "restcn_training", "restcn_export")

GUARD = textwrap.dedent(f"""
    import json, sys

    BLOCKED = {BLOCKED!r}
    attempts = []

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{{name}} is blocked: the runtime must not import it")
            return None

    sys.meta_path.insert(0, Block())

    def run(args):
        from restcn_cli.infer import app
        try:
            app(args, prog_name="restcn-infer")
        except SystemExit as exc:
            return exc.code or 0
        return 0
""")


def run_guarded(body: str) -> dict:
    code = GUARD + textwrap.dedent(body) + textwrap.dedent("""
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({"result": result, "attempts": attempts, "loaded": loaded}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from restcn_infer.errors import ModelError
    from restcn_infer.models import default_model_path

    try:
        return default_model_path()
    except ModelError:  # not built yet: a tiny exported model serves as well
        pass
    pytest.importorskip("torch")
    from tiny_models import exported_model

    return exported_model(tmp_path_factory)


def test_importing_the_runtime_imports_no_torch():
    report = run_guarded("""
        import restcn_infer, restcn_infer.classifier, restcn_infer.session, restcn_cli.infer
        import restcn_infer.models
        result = 0
    """)
    assert report["attempts"] == [] and report["loaded"] == []


def test_help_and_classify_run_without_torch(model_path, tmp_path):
    seq = tmp_path / "seq.npy"
    np.save(seq, np.random.default_rng(0).normal(size=(1, 30, 20, 3)).astype(np.float32))
    report = run_guarded(f"""
        result = [run(["--help"]),
                  run(["classify", {str(seq)!r}, "--model", {str(model_path)!r}, "--json",
                       "--device", "cpu"]),
                  run(["info", {str(model_path)!r}])]
    """)
    assert report["result"] == [0, 0, 0]
    assert report["attempts"] == [] and report["loaded"] == []
