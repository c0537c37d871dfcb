"""The clip path of the runtime: trim, centre, CMVN, warp; shapes and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features, mel_filterbank, mfcc, speech_bounds, warp_frequencies
from signals import noise, tone

PARAMS = FeatureParams()


def with_silence(speech: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.concatenate([np.zeros(before, np.float32), speech, np.zeros(after, np.float32)])


def test_speech_bounds_find_the_burst() -> None:
    burst = noise(0.3, 8000, seed=4)
    start, end = speech_bounds(with_silence(burst, 2000, 3000), PARAMS)
    # Frame-based: the first loud frame may start up to a window before the burst.
    assert 2000 - PARAMS.win_length <= start <= 2000 and 4400 <= end <= 4400 + PARAMS.win_length


BURST = tone(500, 0.3, 8000) * np.hanning(2400).astype(np.float32)


def test_features_do_not_depend_on_position_or_surrounding_silence() -> None:
    """Shifts by whole hops and the silence around the speech leave the input unchanged."""
    a = clip_features(with_silence(BURST, 400, 400), PARAMS)
    b = clip_features(with_silence(BURST, 40 * PARAMS.hop_length, 4000), PARAMS)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_features_barely_depend_on_gain() -> None:
    """CMVN removes gain; only bands near the -80 dB floor could still move."""
    burst = noise(0.3, 8000, seed=6) * np.hanning(2400).astype(np.float32)
    a = clip_features(burst, PARAMS)
    b = clip_features(0.1 * burst, PARAMS)
    assert np.mean(np.abs(a - b)) < 0.05


def test_speech_frames_are_normalised_and_padding_is_zero() -> None:
    x = clip_features(noise(0.4, 8000, seed=5), PARAMS)
    assert x.shape == PARAMS.input_shape
    speech = np.any(x != 0, axis=1)
    assert 35 <= speech.sum() <= 45 and not speech[:25].any() and not speech[-25:].any()
    np.testing.assert_allclose(x[speech].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(x[speech].std(axis=0), 1, atol=1e-3)


def test_raw_columns_follow_the_normalised_ones_and_keep_the_level() -> None:
    """With raw_mean/raw_std the first n_mfcc columns are unchanged and the rest are the
    speech frames' MFCCs standardised by the constants: they move with gain, CMVN does not."""
    burst = noise(0.3, 8000, seed=6) * np.hanning(2400).astype(np.float32)
    dual = FeatureParams(raw_mean=(-240.0,) + (0.0,) * 19, raw_std=(70.0,) + (5.0,) * 19)
    loud, quiet = clip_features(burst, dual), clip_features(0.1 * burst, dual)
    assert loud.shape == (101, 40)
    np.testing.assert_array_equal(loud[:, :20], clip_features(burst, PARAMS))
    start, end = speech_bounds(burst, dual)
    raw = (mfcc(burst[start:end], dual) - np.asarray(dual.raw_mean)) / np.asarray(dual.raw_std)
    speech = np.any(loud != 0, axis=1)
    np.testing.assert_allclose(loud[speech, 20:], raw, rtol=1e-5, atol=1e-5)
    # 20 dB quieter: c0 falls by 20 x sqrt(n_mels) = 126 (ortho DCT), 1.8 of its raw_std here
    assert np.mean(loud[speech, 20] - quiet[speech, 20]) > 1.0
    np.testing.assert_allclose(loud[:, :20], quiet[:, :20], atol=0.1)


def test_fixed_cmn_scale_keeps_how_much_each_coefficient_moves() -> None:
    """With cmn_scale each coefficient loses its clip mean and is divided by the fixed scale, not by
    its own deviation: a burst that swells more moves c0 more, and gain still changes nothing."""
    scale = (40.0,) + (10.0,) * 19
    params = FeatureParams(cmn_scale=scale)
    burst = noise(0.3, 8000, seed=6)
    flat, swell = burst * np.hanning(2400).astype(np.float32) ** 0.2, burst * np.hanning(2400).astype(np.float32)
    x = clip_features(swell, params)
    speech = np.any(x != 0, axis=1)
    start, end = speech_bounds(swell, params)
    raw = mfcc(swell[start:end], params)
    np.testing.assert_allclose(x[speech], (raw - raw.mean(axis=0)) / np.asarray(scale), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x, clip_features(0.1 * swell, params), atol=1e-3)
    y = clip_features(flat, params)
    assert x[speech, 0].std() > 1.5 * y[np.any(y != 0, axis=1), 0].std()


@pytest.mark.parametrize("samples", [np.zeros(8000, np.float32), np.zeros(1, np.float32),
                                     noise(0.005, 8000), noise(3.0, 8000)])
def test_degenerate_and_long_inputs_keep_the_shape_and_stay_finite(samples: np.ndarray) -> None:
    x = clip_features(samples, PARAMS)
    assert x.shape == PARAMS.input_shape and np.all(np.isfinite(x))


@pytest.mark.parametrize("warp", [0.85, 0.92, 1.0, 1.08, 1.15])
def test_warped_filterbank_stays_within_band(warp: float) -> None:
    filters = mel_filterbank(8000, 256, 40, 20.0, 4000.0, warp)
    assert np.all(np.isfinite(filters)) and np.all(filters.sum(axis=1) > 0)
    edges = warp_frequencies(np.linspace(0, 4000, 50), warp, 4000.0)
    assert np.all(np.diff(edges) > 0) and edges[-1] == pytest.approx(4000.0)
    assert np.all(np.isfinite(clip_features(noise(0.5, 8000), PARAMS, warp=warp)))
