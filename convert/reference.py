"""Reference timings stored in a model at conversion time, for ``audiomnist-edge bench``.

Measured with the device runtime only (NumPy MFCC + the TFLite interpreter),
on a synthetic utterance the runtime can make anywhere, so a device's figures
can be compared with the converting machine's.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features
from audiomnist_edge.model import Model

SIGNAL = "synthetic vowel: 0.5 s of 130 Hz harmonics in 1 s of -60 dB noise"


def synthetic_utterance(params: FeatureParams, seed: int = 0) -> np.ndarray:
    """A speech-like test clip: float32 samples at params.sample_rate, shape (clip_samples,).

    Half a second of a 130 Hz harmonic series under a Hann envelope, centred in
    low-level noise, so silence trimming and every MFCC stage do real work.
    """
    n = params.clip_samples
    t = np.arange(n) / params.sample_rate
    voiced = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 20)
                 if 130 * k < params.sample_rate / 2)
    envelope = np.zeros(n)
    start, length = n // 4, n // 2
    envelope[start:start + length] = np.hanning(length)
    noise = np.random.default_rng(seed).standard_normal(n) * 1e-3
    return (0.3 * envelope * voiced / np.max(np.abs(voiced)) + noise).astype(np.float32)


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo or the platform module names it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


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
    samples = synthetic_utterance(model.params)
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
