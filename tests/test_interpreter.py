"""Interpreter backends: identical outputs, broken ones skipped with a logged reason, and quiet."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import tiny_models
from audiomnist_edge import interpreter
from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.interpreter import (BACKENDS, BackendError, create_interpreter, install_hint,
                                         quiet_native_stderr)
from audiomnist_edge.model import Model

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "audiomnist_edge"]


@pytest.fixture(scope="module")
def content(fsdd) -> bytes:
    pytest.importorskip("tensorflow")  # the test model is built with the converter
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
    assert message.endswith(install_hint())


@pytest.mark.parametrize("system,machine,python,expected", [
    ("Linux", "aarch64", (3, 13), "pip install ai-edge-litert"),
    ("Windows", "AMD64", (3, 14), "pip install ai-edge-litert"),
    ("Linux", "armv7l", (3, 11), "pip install tflite-runtime==2.14.0 'numpy<2'"),
    ("Linux", "armv7l", (3, 13), "for Python 3.10-3.11 (this is 3.13)"),
    ("Darwin", "x86_64", (3, 12), "ai-edge-litert has no wheels for Darwin x86_64"),
])
def test_install_hint_names_what_works_on_each_platform(system, machine, python, expected) -> None:
    hint = install_hint(system, machine, python)
    assert expected in hint and "\n" not in hint


def test_unknown_backend_name(content) -> None:
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        create_interpreter(content, backend="nope")


def test_native_info_lines_go_to_the_debug_log_and_the_rest_stays(capfd, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger=interpreter.__name__), quiet_native_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: something the user must see\n")
    assert capfd.readouterr().err == "ERROR: something the user must see\n"
    assert "interpreter: INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in caplog.text


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120, cwd=REPO)


def test_predict_prints_no_interpreter_chatter() -> None:
    """--json: stdout has the records, stderr nothing but predict's one summary line."""
    result = run_cli("predict", "--json", "examples/digits")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("4 files, 0 failed, "), result.stderr


def test_predict_human_output_has_only_its_own_stderr_lines() -> None:
    result = run_cli("predict", "examples/digits")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("model default.tflite ("), result.stderr


def test_debug_shows_the_interpreter_line() -> None:
    result = run_cli("--debug", "predict", "--json", "examples/digits/2.wav")
    assert result.returncode == 0, result.stderr
    if "ai-edge-litert" in result.stderr:  # the backend whose C++ code prints it
        assert "DEBUG: interpreter: INFO: Created TensorFlow Lite XNNPACK delegate" in result.stderr
