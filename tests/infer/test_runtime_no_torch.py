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

from bodies import body_sequence

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
def model_path(request):
    from restcn_infer.errors import ModelError
    from restcn_infer.models import default_model_path

    try:
        return default_model_path()
    except ModelError:  # not built yet: a tiny exported model serves as well
        pass
    return request.getfixturevalue("tiny_export")()


def test_importing_every_runtime_module_imports_no_torch():
    """Walk the package: a module added later is covered without editing this test. The
    optional extras (websockets, matplotlib) may be imported; torch and onnx may not."""
    report = run_guarded("""
        import importlib, pkgutil
        import restcn_infer, restcn_cli.infer, restcn_cli.common, restcn_cli.runtime
        names = [m.name for m in pkgutil.walk_packages(restcn_infer.__path__, "restcn_infer.")]
        for name in names:
            importlib.import_module(name)
        result = names
    """)
    assert report["attempts"] == [] and report["loaded"] == []
    assert {"restcn_infer.classifier", "restcn_infer.spec", "restcn_infer.datasets",
            "restcn_infer.readers.ntu_fast", "restcn_infer.stream_server"} <= set(report["result"])


def test_help_and_classify_run_without_torch(model_path, tmp_path):
    seq = tmp_path / "seq.npy"
    np.save(seq, body_sequence(30))
    report = run_guarded(f"""
        result = [run(["--help"]),
                  run(["classify", {str(seq)!r}, "--model", {str(model_path)!r}, "--json",
                       "--device", "cpu"]),
                  run(["info", {str(model_path)!r}])]
    """)
    assert report["result"] == [0, 0, 0]
    assert report["attempts"] == [] and report["loaded"] == []
