"""Interpreter backends: identical outputs, and broken ones skipped with a logged reason."""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import tiny_models
from audiomnist_edge import interpreter
from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.interpreter import BACKENDS, BackendError, create_interpreter
from audiomnist_edge.model import Model

pytest.importorskip("tensorflow")  # the test model is built with the converter


@pytest.fixture(scope="module")
def content(fsdd) -> bytes:
    return tiny_models.int8_model_bytes(str(fsdd))


def installed(name: str) -> bool:
    return importlib.util.find_spec(BACKENDS[name][0].split(".")[0]) is not None


def outputs(content: bytes, backend: str, x: np.ndarray) -> np.ndarray:
    model = Model(parse_artifact(content, Path("tiny.tflite")), backend=backend)
    assert model.backend.name == backend
    return np.stack([model.probabilities(m) for m in x])


REFERENCE = "ai-edge-litert"  # the runtime's own dependency: every other backend must match it
# What brings each backend in (the skip reason says it).
PROVIDED_BY = {"ai-edge-litert": "the base install", "tflite-runtime": "no extra: pip install tflite-runtime",
               "tensorflow": "the [train] extra"}


def test_every_backend_says_what_installs_it() -> None:
    assert set(PROVIDED_BY) == set(BACKENDS) and REFERENCE in BACKENDS


@pytest.mark.parametrize("backend", [name for name in BACKENDS if name != REFERENCE])
def test_backends_give_identical_outputs(fsdd, content, backend) -> None:
    for name in (REFERENCE, backend):
        if not installed(name):
            pytest.skip(f"{name} is not installed (it comes with {PROVIDED_BY[name]})")
    x = tiny_models.fsdd_arrays(str(fsdd))[2][::5]
    got = outputs(content, backend, x)
    assert got.shape == (len(x), 10) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, outputs(content, REFERENCE, x))


def fake_module(monkeypatch, name: str, error: Exception) -> None:
    """Install a module ``name`` whose Interpreter raises ``error`` when created."""
    class Interpreter:
        def __init__(self, **kwargs):
            raise error

    module = types.ModuleType(name)
    module.Interpreter = Interpreter
    monkeypatch.setitem(sys.modules, name, module)


def test_backend_that_imports_but_cannot_run_is_skipped(monkeypatch, caplog, content) -> None:
    fake_module(monkeypatch, "fake_runtime", RuntimeError("module compiled against NumPy 1.x\nmore"))
    monkeypatch.setattr(interpreter, "BACKENDS", {"fake": ("fake_runtime", "Interpreter", "fake-runtime"),
                                                  **BACKENDS})
    with caplog.at_level(logging.WARNING, logger=interpreter.__name__):
        _, backend = create_interpreter(content)
    assert backend.name in BACKENDS and backend.name != "fake"
    assert "skipping backend fake: module compiled against NumPy 1.x" in caplog.text


def test_no_working_backend_is_one_clear_error(monkeypatch, content) -> None:
    fake_module(monkeypatch, "fake_runtime", RuntimeError("cannot run"))
    monkeypatch.setattr(interpreter, "BACKENDS", {"fake": ("fake_runtime", "Interpreter", "fake-runtime"),
                                                  "absent": ("no_such_module_xyz", "Interpreter", "absent")})
    with pytest.raises(BackendError) as caught:
        create_interpreter(content)
    message = str(caught.value)
    assert "fake: cannot run" in message and "absent: not installed" in message and "\n" not in message


def test_unknown_backend_name(content) -> None:
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        create_interpreter(content, backend="nope")
