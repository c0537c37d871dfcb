"""Reference timings stored in a model at conversion time, for ``audiomnist-edge bench``.

Measured with the device runtime only (NumPy MFCC + the TFLite interpreter),
on a synthetic utterance the runtime can make anywhere, so a device's figures
can be compared with the converting machine's.
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable

import numpy as np

from audiomnist_edge.bench import cpu_name, synthetic_utterance
from audiomnist_edge.features import clip_features
from audiomnist_edge.model import Model

SIGNAL = "synthetic vowel: 0.5 s of 130 Hz harmonics in 1 s of -60 dB noise"


def median_ms(action: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``action()`` in milliseconds over ``repeats`` calls."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(1e3 * float(np.median(times)), 4)


def reference_bench(model: Model, repeats: int = 30) -> dict[str, Any]:
    """p50 timings (ms) of MFCC, interpreter invoke and samples -> decision, with context."""
    samples = synthetic_utterance(model.params.sample_rate, model.params.clip_seconds)
    features = clip_features(samples, model.params)
    rate = model.params.sample_rate
    return {
        "mfcc_ms": median_ms(lambda: clip_features(samples, model.params), repeats),
        "invoke_ms": median_ms(lambda: model.probabilities(features), repeats),
        "end_to_end_ms": median_ms(lambda: model.classify(samples, rate), repeats),
        "repeats": repeats,
        "signal": SIGNAL,
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "backend": f"{model.backend.name} {model.backend.version}",
    }
