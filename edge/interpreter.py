"""TFLite interpreter backends, tried in order: ai-edge-litert, tflite-runtime, TensorFlow.

A backend that imports but cannot create an interpreter (tflite-runtime 2.14
built for NumPy 1.x fails under NumPy 2 only at that point) is skipped with a
logged reason.

The interpreters' C++ code prints "INFO: Created TensorFlow Lite XNNPACK
delegate for CPU." straight to file descriptor 2 (no option or environment
variable of ai-edge-litert 2.3 turns it off), so file descriptor 2 is
captured while an interpreter is created and first run: INFO lines become
debug log records (shown with ``--debug``), anything else is written back.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import EdgeError

log = logging.getLogger(__name__)

# backend name -> (module to import, attribute path of the Interpreter class, distribution)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "ai-edge-litert": ("ai_edge_litert.interpreter", "Interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "Interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow", "lite.Interpreter", "tensorflow-cpu"),
}


# (platform.system(), platform.machine()) pairs with ai-edge-litert wheels (cp310-cp314)
LITERT_PLATFORMS = {("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64"), ("Windows", "AMD64")}
ARM32 = ("armv7l", "armv8l")  # 32-bit userland (armv8l: a 64-bit CPU running a 32-bit OS)


def install_hint(system: str | None = None, machine: str | None = None, python: tuple[int, int] | None = None) -> str:
    """What to install for an interpreter on this platform (arguments default to this machine's)."""
    system = system or platform.system()
    machine = machine or platform.machine()
    python = python or (sys.version_info.major, sys.version_info.minor)
    if machine in ARM32:
        if python > (3, 11):
            return (
                f"on 32-bit ARM the only interpreter is tflite-runtime 2.14, for Python 3.10-3.11 "
                f"(this is {python[0]}.{python[1]}): use Python 3.11 (Raspberry Pi OS bookworm) "
                "or 64-bit Raspberry Pi OS"
            )
        return "pip install tflite-runtime==2.14.0 'numpy<2'"
    if (system, machine) in LITERT_PLATFORMS:
        return "pip install ai-edge-litert"
    return (
        f"ai-edge-litert has no wheels for {system} {machine}: pip install tensorflow if it has, "
        "or use 64-bit Linux, Apple silicon or Windows x64"
    )


class BackendError(EdgeError):
    """No TFLite interpreter backend could run the model."""


@dataclass(frozen=True)
class Backend:
    """The interpreter package in use and its version."""

    name: str
    version: str


def _version(distribution: str, module: Any) -> str:
    from importlib import metadata

    for name in (distribution, distribution.replace("-cpu", "")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return getattr(module, "__version__", "unknown")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Capture what native code writes to fd 2; INFO lines go to the debug log.

    Other lines (warnings, errors) are written back to fd 2 unchanged, so
    nothing but the interpreter's chatter is hidden.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured = sink.read().decode("utf-8", "replace")
    for line in captured.splitlines(keepends=True):
        if line.startswith("INFO: "):
            log.debug("interpreter: %s", line.rstrip())
        elif line.strip():
            os.write(2, line.encode())


def create_interpreter(model_content: bytes, backend: str | None = None, num_threads: int = 1) -> tuple[Any, Backend]:
    """An allocated interpreter for the model bytes, from the first backend that works.

    Args:
        model_content: the .tflite file's bytes.
        backend: a key of BACKENDS to use only that one; None tries them in order.
        num_threads: interpreter threads (1 suits a small model on a small CPU).
    """
    names = [backend] if backend else list(BACKENDS)
    reasons = []
    for name in names:
        if name not in BACKENDS:
            raise BackendError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
        module_name, attribute, distribution = BACKENDS[name]
        try:
            interpreter_class: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                interpreter_class = getattr(interpreter_class, part)
            with quiet_native_stderr():
                interpreter = interpreter_class(model_content=model_content, num_threads=num_threads)
                interpreter.allocate_tensors()
                interpreter.invoke()  # some backends apply their delegates (and log) on first run
        except ImportError as exc:
            reasons.append(f"{name}: not installed")
            log.debug("backend %s unavailable: %s", name, exc)
            continue
        except Exception as exc:  # a backend that imports but cannot run
            reasons.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            log.warning("skipping backend %s", reasons[-1])
            continue
        top = importlib.import_module(module_name.split(".")[0])
        return interpreter, Backend(name, _version(distribution, top))
    raise BackendError("no TFLite interpreter could run the model (" + "; ".join(reasons) + "); " + install_hint())
