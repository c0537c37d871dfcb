"""A normal (non-editable) install carries the runtime, train/, convert/ and the model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path) -> None:
    # built from a clean copy: a stale build/ folder in the checkout would supply deleted files
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*_cache"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("audiomnist_edge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("audiomnist_edge/features.py", "audiomnist_edge/wav.py", "audiomnist_edge/cli.py",
                   "audiomnist_edge/train/__init__.py", "audiomnist_edge/convert/metadata.py"):
        assert module in names
    assert "audiomnist_edge/models/default.tflite" in names  # the model predict uses by default
    packaged = zipfile.ZipFile(wheel).read("audiomnist_edge/models/default.tflite")
    assert packaged == (REPO / "edge" / "models" / "default.tflite").read_bytes()
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "audiomnist-edge = audiomnist_edge.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
