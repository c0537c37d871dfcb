"""audiomnist-edge: spoken-digit recognition on small devices.

This package is the device runtime: it needs NumPy, click and a TFLite
interpreter, never TensorFlow or librosa. Training (``audiomnist_edge.train``)
and conversion (``audiomnist_edge.convert``) need the ``[train]`` extra.

The Python API, imported on first use (``import audiomnist_edge`` itself loads nothing heavy)::

    from audiomnist_edge import Model, Recognizer, read_wav, recognize_file
    model = Model.load()                               # the packaged default model
    samples, rate = read_wav("talk.wav")
    recognizer = Recognizer(model, rate)               # streaming: feed blocks of any size
    detections = recognizer.feed(samples) + recognizer.finish()
    [d.digit for d in recognize_file(model, "talk.wav").detections]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "Model": "model",
    "Prediction": "model",
    "Recognizer": "recognizer",
    "Detection": "recognizer",
    "recognize_file": "recognizer",
    "read_wav": "wav",
    "open_audio": "wav",
    "AudioError": "wav",
    "FeatureParams": "config",
    "GateParams": "stream",
    "EdgeError": "errors",
}
__all__ = [
    "AudioError",
    "Detection",
    "EdgeError",
    "FeatureParams",
    "GateParams",
    "Model",
    "Prediction",
    "Recognizer",
    "open_audio",
    "read_wav",
    "recognize_file",
]

if TYPE_CHECKING:
    from .config import FeatureParams
    from .errors import EdgeError
    from .model import Model, Prediction
    from .recognizer import Detection, Recognizer, recognize_file
    from .stream import GateParams
    from .wav import AudioError, open_audio, read_wav


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
