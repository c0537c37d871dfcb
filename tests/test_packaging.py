"""A normal (non-editable) install carries the runtime, train/, convert/, the model and the
licence; the dependency markers pick the right interpreter on every machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel and pip's verbose build log."""
    out = tmp_path_factory.mktemp("wheel")
    # built from a clean copy: a stale build/ folder in the checkout would supply deleted files
    source = out / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*_cache"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("audiomnist_edge-*.whl")
    return wheel, result.stdout + result.stderr


def metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def test_wheel_contents(built) -> None:
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("audiomnist_edge/features.py", "audiomnist_edge/wav.py", "audiomnist_edge/cli.py",
                   "audiomnist_edge/train/__init__.py", "audiomnist_edge/convert/metadata.py"):
        assert module in names
    assert "audiomnist_edge/models/default.tflite" in names  # the model predict uses by default
    packaged = zipfile.ZipFile(wheel).read("audiomnist_edge/models/default.tflite")
    assert packaged == (REPO / "edge" / "models" / "default.tflite").read_bytes()
    assert not any(name.startswith(("tests/", "benchmarks/", "deploy/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "audiomnist-edge = audiomnist_edge.__main__:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_licence_and_classifiers(built) -> None:
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    text = zipfile.ZipFile(wheel).read(licence).decode()
    assert text.startswith("MIT License") and "audiomnist-edge developers" in text
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.14" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # SPDX expression instead


def test_build_has_no_setuptools_warnings(built) -> None:
    _, log = built
    for warning in ("is absent from the `packages` configuration", "SetuptoolsDeprecationWarning"):
        assert warning not in log


def applicable(wheel: Path, system: str, machine: str, python: str, extra: str = "") -> dict[str, str]:
    """Name -> specifier of the requirements pip would install there."""
    sys_platform = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[system]
    environment = {"sys_platform": sys_platform, "platform_system": system, "platform_machine": machine,
                   "python_version": python, "python_full_version": python + ".0", "extra": extra,
                   "os_name": "nt" if system == "Windows" else "posix"}
    chosen: dict[str, str] = {}
    for line in metadata(wheel).get_all("Requires-Dist"):
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            chosen[requirement.name] = ",".join(filter(None, [chosen.get(requirement.name),
                                                              str(requirement.specifier)]))
    return chosen


@pytest.mark.parametrize("system,machine,python,interpreter", [
    ("Linux", "x86_64", "3.11", "ai-edge-litert"),
    ("Linux", "aarch64", "3.11", "ai-edge-litert"),   # 64-bit Raspberry Pi OS bookworm
    ("Linux", "aarch64", "3.13", "ai-edge-litert"),   # trixie
    ("Linux", "x86_64", "3.14", "ai-edge-litert"),    # no Python cap where wheels exist
    ("Darwin", "arm64", "3.14", "ai-edge-litert"),
    ("Windows", "AMD64", "3.12", "ai-edge-litert"),
    ("Linux", "armv7l", "3.11", "tflite-runtime"),    # 32-bit Raspberry Pi OS bookworm
    ("Linux", "armv7l", "3.13", None),                # no wheels at all: the first command says so
    ("Darwin", "x86_64", "3.12", None),
])
def test_markers_pick_the_interpreter_that_has_wheels(built, system, machine, python, interpreter) -> None:
    wheel, _ = built
    chosen = applicable(wheel, system, machine, python)
    interpreters = {"ai-edge-litert", "tflite-runtime"} & set(chosen)
    assert interpreters == ({interpreter} if interpreter else set())
    assert ("soxr" in chosen) == (machine in ("x86_64", "aarch64", "arm64", "AMD64"))
    if interpreter == "tflite-runtime":
        assert "<2" in chosen["numpy"]  # tflite-runtime 2.14 is built against NumPy 1.x
    else:  # nothing to keep NumPy 1.x for (and Python 3.12+ has no NumPy 1.x wheels)
        assert "<2" not in chosen["numpy"]


@pytest.mark.parametrize("system,machine,tensorflow", [
    ("Linux", "x86_64", "tensorflow-cpu"), ("Windows", "AMD64", "tensorflow-cpu"),
    ("Linux", "aarch64", "tensorflow"), ("Darwin", "arm64", "tensorflow"),
])
def test_train_extra_installs_a_tensorflow_with_wheels_there(built, system, machine, tensorflow) -> None:
    wheel, _ = built
    chosen = applicable(wheel, system, machine, "3.12", extra="train")
    assert {"tensorflow", "tensorflow-cpu"} & set(chosen) == {tensorflow}
    assert chosen[tensorflow] == "==2.21.0"
