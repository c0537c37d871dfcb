"""Both resampling engines against SciPy's polyphase resampler; block-size invariance; quality."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiomnist_edge.resample import ENGINES, Resampler, default_engine, resample
from audiomnist_edge.wav import read_wav
from signals import tone

signal = pytest.importorskip("scipy.signal")

REPO = Path(__file__).resolve().parents[1]

RATES = [(48000, 8000), (44100, 8000), (16000, 8000), (8000, 16000), (22050, 16000)]


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    if request.param == "soxr":
        pytest.importorskip("soxr")
    return request.param


def reference(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    from math import gcd
    g = gcd(rate_in, rate_out)
    return signal.resample_poly(x.astype(np.float64), rate_out // g, rate_in // g)


def relative_error(ours: np.ndarray, expected: np.ndarray, margin: int) -> float:
    """RMS difference over RMS of the reference, away from the edges."""
    a, b = ours[margin:-margin], expected[margin:-margin]
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2)))


def level_db(x: np.ndarray, y: np.ndarray) -> float:
    """RMS of y (middle 80%) over RMS of x, dB."""
    edge = len(y) // 10
    return float(20 * np.log10(np.sqrt(np.mean(y[edge:-edge].astype(np.float64) ** 2))
                               / np.sqrt(np.mean(x.astype(np.float64) ** 2))))


@pytest.mark.parametrize("rate_in,rate_out", RATES)
@pytest.mark.parametrize("freq", [100.0, 440.0, 1000.0, 3000.0])
def test_tones_match_scipy(engine: str, rate_in: int, rate_out: int, freq: float) -> None:
    x = tone(freq, 0.5, rate_in)
    ours, expected = resample(x, rate_in, rate_out, engine), reference(x, rate_in, rate_out)
    assert ours.dtype == np.float32
    assert len(ours) == len(expected) == -(-len(x) * rate_out // rate_in)
    assert relative_error(ours, expected, margin=rate_out // 50) < 1e-2


@pytest.mark.parametrize("rate_in,rate_out", RATES)
def test_real_speech_matches_scipy(fsdd_test_clips, engine: str, rate_in: int, rate_out: int) -> None:
    """Within 3% RMS: the anti-aliasing filters differ only in the transition band."""
    speech, rate = read_wav(fsdd_test_clips[17])
    x = reference(speech, rate, rate_in).astype(np.float32)  # speech at the source rate
    ours, expected = resample(x, rate_in, rate_out, engine), reference(x, rate_in, rate_out)
    assert len(ours) == len(expected)
    assert relative_error(ours, expected, margin=rate_out // 100) < 3e-2


def test_removes_content_above_the_new_nyquist(engine: str) -> None:
    x = tone(6000, 0.5, 48000)  # above 4 kHz: must vanish at 8 kHz
    y = resample(x, 48000, 8000, engine)
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 1e-3 * np.sqrt(np.mean(x ** 2))


def test_soxr_is_flat_to_3_7_khz_and_does_not_alias_4_1_khz() -> None:
    """The figures issue 12 asks of the fast engine (the NumPy one: -4.3 dB and -25 dB)."""
    pytest.importorskip("soxr")
    passband, above = tone(3700, 1.0, 48000), tone(4100, 1.0, 48000)
    assert abs(level_db(passband, resample(passband, 48000, 8000, "soxr"))) < 0.1
    assert level_db(above, resample(above, 48000, 8000, "soxr")) < -100
    assert level_db(above, resample(above, 48000, 8000, "numpy")) > -40  # the test can tell them apart


@pytest.mark.parametrize("rate_in,rate_out", [(44100, 8000), (48000, 8000), (8000, 16000)])
@pytest.mark.parametrize("block", [1, 7, 256, 1024, 4000])
def test_streaming_in_blocks_equals_whole_signal(engine: str, rate_in: int, rate_out: int,
                                                 block: int) -> None:
    x = np.random.default_rng(3).normal(0, 0.2, 9001).astype(np.float32)
    whole = resample(x, rate_in, rate_out, engine)
    stream = Resampler(rate_in, rate_out, engine)
    parts = [stream.process(x[i:i + block]) for i in range(0, len(x), block)] + [stream.flush()]
    streamed = np.concatenate(parts)
    assert len(streamed) == len(whole) == -(-len(x) * rate_out // rate_in)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("length", [0, 1, 2, 5, 6, 7, 100])
def test_output_length_is_ceil_for_short_signals(engine: str, length: int) -> None:
    x = np.full(length, 0.1, dtype=np.float32)
    assert len(resample(x, 48000, 8000, engine)) == -(-length * 8000 // 48000)


def test_last_sample_is_computed_not_padded() -> None:
    """ceil(n * out / in) samples; soxr alone would give round(): its last sample is real too."""
    pytest.importorskip("soxr")
    x = np.full(9001, 0.5, dtype=np.float32)  # 1500.17 output samples: ceil 1501, round 1500
    soxr_out, numpy_out = resample(x, 48000, 8000, "soxr"), resample(x, 48000, 8000, "numpy")
    assert len(soxr_out) == len(numpy_out) == 1501
    assert soxr_out[-1] > 0.2 and abs(soxr_out[-1] - numpy_out[-1]) < 0.01


def test_engines_agree_on_speech(fsdd_test_clips) -> None:
    pytest.importorskip("soxr")
    speech, rate = read_wav(fsdd_test_clips[3])
    x = reference(speech, rate, 48000).astype(np.float32)
    soxr_out, numpy_out = resample(x, 48000, 8000, "soxr"), resample(x, 48000, 8000, "numpy")
    assert relative_error(soxr_out, numpy_out, margin=80) < 5e-2


def test_same_rate_is_identity(engine: str) -> None:
    x = tone(440, 0.1, 8000)
    np.testing.assert_array_equal(resample(x, 8000, 8000, engine), x)
    stream = Resampler(8000, 8000, engine)
    np.testing.assert_array_equal(np.concatenate([stream.process(x), stream.flush()]), x)


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown resampling engine 'sinc'"):
        Resampler(48000, 8000, "sinc")


def test_default_engine_is_soxr_when_installed_else_numpy() -> None:
    """A fresh process with soxr made unimportable falls back to NumPy."""
    expected = "soxr" if importlib.util.find_spec("soxr") else "numpy"
    assert default_engine() == expected
    code = ("import sys; sys.modules['soxr'] = None\n"
            "from audiomnist_edge.resample import Resampler\n"
            "print(Resampler(48000, 8000).engine)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_benchmark_reports_both_engines_and_their_quality(fsdd) -> None:
    pytest.importorskip("soxr")
    done = subprocess.run([sys.executable, "-m", "benchmarks.resample_compare", "--json", "--clips", "2",
                           "--rounds", "2", "--data", str(fsdd)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["times"]) == {"soxr", "numpy", "soxr_stream", "numpy_stream"}
    assert set(result["speedup"]) == {"whole", "stream"}
    assert result["quality"]["soxr"]["passband_3700_db"] > -0.1
    assert result["quality"]["numpy"]["passband_3700_db"] < -3  # the fallback's known droop
    assert result["quality"]["soxr"]["alias_4100_db"] < -100 < result["quality"]["numpy"]["alias_4100_db"]


def test_readme_resampling_figures_are_the_committed_results() -> None:
    """benchmarks/results/resample.md and the README's sentence come from resample.json."""
    from benchmarks.resample_compare import markdown, summary

    results = REPO / "benchmarks" / "results"
    result = json.loads((results / "resample.json").read_text())
    assert (results / "resample.md").read_text() == markdown(result)
    readme = (REPO / "README.md").read_text()
    assert summary(result) + "." in readme
    quality = result["quality"]
    assert (f"{quality['soxr']['passband_3700_db']:+.2f} dB with soxr and at "
            f"{quality['numpy']['passband_3700_db']:+.2f} dB with NumPy") in readme
    assert (f"leaves {quality['soxr']['alias_4100_db']:.0f} dB and "
            f"{quality['numpy']['alias_4100_db']:.0f} dB") in " ".join(readme.split())
    assert result["speedup"]["whole"]["median"] >= 5  # issue 12's target, in the committed run


@pytest.mark.parametrize("rate_in,rate_out", [(767_999, 8000), (8000, 767_999), (999_983, 16000)])
def test_rates_without_a_common_divisor_keep_the_phase_table_small(rate_in: int, rate_out: int) -> None:
    """The exact 767,999 -> 8,000 Hz ratio needs a 26-million-entry table (209 MB); a near one serves."""
    from audiomnist_edge.resample import MAX_TABLE, PolyphaseStream

    stream = PolyphaseStream(rate_in, rate_out)
    assert stream.taps.size <= MAX_TABLE
    assert abs(stream.up / stream.down - rate_out / rate_in) < 3.3e-5 * rate_out / rate_in
    n = rate_in // 4  # a quarter second of a 440 Hz tone keeps its pitch
    y = resample(np.sin(2 * np.pi * 440 * np.arange(n) / rate_in), rate_in, rate_out, "numpy")
    assert abs(len(y) - n * rate_out / rate_in) <= 2
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * rate_out / len(y) - 440) < 8


def test_rates_with_a_common_divisor_are_exact() -> None:
    from audiomnist_edge.resample import polyphase_ratio

    assert polyphase_ratio(44100, 8000) == (80, 441) and polyphase_ratio(7999, 8000) == (8000, 7999)
