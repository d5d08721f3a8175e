"""Every public domain error of every package is a RestcnError (what the CLIs turn into exit 1),
and keeps the builtin base callers already catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from restcn_infer.errors import RestcnError

PACKAGES = ["restcn_infer", "restcn_training", "restcn_export", "restcn_cli"]


def public_exceptions():
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            try:
                module = importlib.import_module(info.name)
            except ImportError:  # an optional extra not installed here (openvino, ...)
                continue
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, Exception)
                        and obj.__module__ == module.__name__ and not name.startswith("_")):
                    yield obj


def test_every_public_error_is_a_restcn_error_with_a_builtin_base():
    found = sorted(set(public_exceptions()), key=lambda c: c.__qualname__)
    assert len(found) >= 10  # the walk reached the packages
    strays = [c.__qualname__ for c in found if not issubclass(c, RestcnError)]
    assert not strays, strays
    builtin = (ValueError, OSError, RuntimeError, LookupError, TypeError, ImportError)
    bare = [c.__qualname__ for c in found if c is not RestcnError and not issubclass(c, builtin)]
    assert not bare, bare


@pytest.mark.parametrize("package", PACKAGES)
def test_the_walk_imports_each_package(package):
    assert importlib.import_module(package).__path__
