"""The NumPy resampler against SciPy's polyphase resampler, and block-size invariance."""

from __future__ import annotations

import numpy as np
import pytest

from audiomnist_edge.resample import Resampler, resample
from audiomnist_edge.wav import read_wav
from signals import tone

signal = pytest.importorskip("scipy.signal")

RATES = [(48000, 8000), (44100, 8000), (16000, 8000), (8000, 16000), (22050, 16000)]


def reference(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    from math import gcd
    g = gcd(rate_in, rate_out)
    return signal.resample_poly(x.astype(np.float64), rate_out // g, rate_in // g)


def relative_error(ours: np.ndarray, expected: np.ndarray, margin: int) -> float:
    """RMS difference over RMS of the reference, away from the edges."""
    a, b = ours[margin:-margin], expected[margin:-margin]
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2)))


@pytest.mark.parametrize("rate_in,rate_out", RATES)
@pytest.mark.parametrize("freq", [100.0, 440.0, 1000.0, 3000.0])
def test_tones_match_scipy(rate_in: int, rate_out: int, freq: float) -> None:
    x = tone(freq, 0.5, rate_in)
    ours, expected = resample(x, rate_in, rate_out), reference(x, rate_in, rate_out)
    assert len(ours) == len(expected) == -(-len(x) * rate_out // rate_in)
    assert relative_error(ours, expected, margin=rate_out // 50) < 1e-2


@pytest.mark.parametrize("rate_in,rate_out", RATES)
def test_real_speech_matches_scipy(fsdd_test_clips, rate_in: int, rate_out: int) -> None:
    """Within 3% RMS: the two anti-aliasing filters differ only in the transition band."""
    speech, rate = read_wav(fsdd_test_clips[17])
    x = reference(speech, rate, rate_in).astype(np.float32)  # speech at the source rate
    ours, expected = resample(x, rate_in, rate_out), reference(x, rate_in, rate_out)
    assert len(ours) == len(expected)
    assert relative_error(ours, expected, margin=rate_out // 100) < 3e-2


def test_removes_content_above_the_new_nyquist() -> None:
    x = tone(6000, 0.5, 48000)  # above 4 kHz: must vanish at 8 kHz
    y = resample(x, 48000, 8000)
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 1e-3 * np.sqrt(np.mean(x ** 2))


@pytest.mark.parametrize("block", [1, 7, 256, 1024, 4000])
def test_streaming_in_blocks_equals_whole_signal(block: int) -> None:
    x = np.random.default_rng(3).normal(0, 0.2, 9001).astype(np.float32)
    whole = resample(x, 44100, 8000)
    stream = Resampler(44100, 8000)
    parts = [stream.process(x[i:i + block]) for i in range(0, len(x), block)] + [stream.flush()]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_same_rate_is_identity() -> None:
    x = tone(440, 0.1, 8000)
    np.testing.assert_array_equal(resample(x, 8000, 8000), x)
