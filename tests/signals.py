"""Deterministic test signals, built by code so nothing is committed but the recipe."""

from __future__ import annotations

import numpy as np


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A sine tone, float32, shape (round(seconds * rate),)."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def chirp(f0_hz: float, f1_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A linear chirp from f0 to f1 Hz, float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    phase = 2 * np.pi * (f0_hz * t + 0.5 * (f1_hz - f0_hz) / seconds * t ** 2)
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise(seconds: float, rate: int, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """Uniform white noise in [-amplitude, amplitude], float32, seeded."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-amplitude, amplitude, int(round(seconds * rate))).astype(np.float32)


def synthetic_signals(rate: int) -> dict[str, np.ndarray]:
    """Named edge cases for feature parity: silence, noise, tones, clipping, tiny clips."""
    return {
        "silence": np.zeros(rate, dtype=np.float32),
        "white_noise": noise(1.0, rate),
        "tone_440": tone(440, 1.0, rate),
        "tone_1234_5": tone(1234.5, 1.0, rate, 0.9),
        "full_scale_clipped": np.clip(3 * tone(300, 1.0, rate, 1.0), -1, 1),
        "chirp": chirp(100, rate / 2 - 100, 1.0, rate),
        "shorter_than_window": noise(100 / rate, rate, seed=1),
        "ten_samples": noise(10 / rate, rate, seed=2),
        "tone_then_silence": np.concatenate([tone(700, 0.3, rate), np.zeros(rate // 2, np.float32)]),
    }


def golden_signals() -> dict[str, np.ndarray]:
    """The signals whose librosa MFCCs are committed in tests/golden/mfcc.json."""
    silence = np.zeros(1500, dtype=np.float32)
    return {
        "tone_440": tone(440, 0.6, 8000),
        "chirp_100_3900": chirp(100, 3900, 0.8, 8000),
        "noise_burst": np.concatenate([silence, noise(0.4, 8000, seed=7), silence]),
        # longer than the 1 s window: only its middle second is kept
        "chirp_1400ms": chirp(200, 3000, 1.4, 8000),
        # 44 dB down (trimmed), then 20 dB down (kept: within 30 dB of the peak), then loud
        "quiet_lead_in": np.concatenate([noise(0.3, 8000, 0.003, seed=8), tone(300, 0.1, 8000, 0.05),
                                         tone(500, 0.5, 8000, 0.5)]),
    }
