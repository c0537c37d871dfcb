"""The Python API: ``from audiomnist_edge import Model, Recognizer, read_wav`` and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

from pathlib import Path

import numpy as np
import pytest


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, audiomnist_edge; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'click', 'ai_edge_litert', 'tensorflow', 'sounddevice', 'soundfile') "
            "or m.startswith('audiomnist_edge.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names_resolve_to_their_modules():
    import audiomnist_edge
    from audiomnist_edge import Model, Recognizer, read_wav, recognize_file
    from audiomnist_edge.model import Model as ModelClass
    from audiomnist_edge.recognizer import Recognizer as RecognizerClass

    assert Model is ModelClass and Recognizer is RecognizerClass
    assert callable(read_wav) and callable(recognize_file)
    assert set(audiomnist_edge.__all__) <= set(dir(audiomnist_edge))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        audiomnist_edge.Nope


def test_typed_marker_ships_with_the_package():
    assert resources.files("audiomnist_edge").joinpath("py.typed").is_file()


def test_readme_api_example_runs():
    from audiomnist_edge import Model, Recognizer, read_wav, recognize_file

    clip = Path(__file__).resolve().parents[1] / "examples" / "digits" / "7.wav"  # the project's own "seven"
    model = Model.load()
    samples, rate = read_wav(clip)
    recognizer = Recognizer(model, rate)
    streamed = [recognizer.feed(block) for block in np.array_split(samples, 7)]
    detections = [d for found in streamed for d in found] + recognizer.finish()
    from_file = recognize_file(model, clip).detections
    assert [(d.start, d.end, d.label) for d in detections] == [(d.start, d.end, d.label) for d in from_file]
    assert len(from_file) == 1 and from_file[0].label == "7"
