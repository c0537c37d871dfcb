"""The NumPy MFCC path against librosa, its oracle (skipped where librosa is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import dct_matrix, mel_filterbank, mel_power, mfcc
from audiomnist_edge.wav import read_wav
from signals import synthetic_signals

librosa = pytest.importorskip("librosa")

PARAMS = [
    FeatureParams(),
    FeatureParams(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40,
                  fmax=8000.0, n_mfcc=20, lifter=22.0),
    FeatureParams(n_fft=200, win_length=200, hop_length=128, n_mels=26, fmin=0.0, n_mfcc=26,
                  dct_norm=None),
]
TOLERANCE = 1e-3


def tolerance(params: FeatureParams) -> np.ndarray:
    """1e-3 per coefficient in the units of the ortho DCT without lifter.

    Without 'ortho' the DCT scales coefficients up by sqrt(2 * n_mels) (2 * sqrt(n_mels)
    for c0), and liftering by up to 1 + lifter / 2, so the same float32 rounding in the
    spectrum shows as a larger absolute difference; the tolerance scales with them.
    """
    gain = np.ones(params.n_mfcc)
    if params.dct_norm is None:
        gain *= np.sqrt(2 * params.n_mels)
        gain[0] = 2 * np.sqrt(params.n_mels)
    if params.lifter > 0:
        n = np.arange(1, params.n_mfcc + 1)
        gain *= 1 + (params.lifter / 2) * np.sin(np.pi * n / params.lifter)
    return TOLERANCE * gain


def librosa_mfcc(samples: np.ndarray, params: FeatureParams) -> np.ndarray:
    """librosa's MFCCs with every argument pinned by FeatureParams, shape (frames, n_mfcc)."""
    mel = librosa.feature.melspectrogram(y=samples, **params.librosa_melspectrogram_kwargs())
    db = librosa.power_to_db(mel, **params.librosa_power_to_db_kwargs())
    return librosa.feature.mfcc(S=db, **params.librosa_mfcc_kwargs()).T


@pytest.mark.parametrize("params", PARAMS, ids=["default", "16k-lifter", "no-norm"])
def test_mel_filterbank_matches_librosa(params: FeatureParams) -> None:
    expected = librosa.filters.mel(sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels,
                                   fmin=params.fmin, fmax=params.fmax, htk=False, norm="slaney")
    ours = mel_filterbank(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax)
    np.testing.assert_allclose(ours, expected, atol=1e-6, rtol=0)


def test_mfcc_matches_librosa_on_real_speech(fsdd_test_clips) -> None:
    params = FeatureParams()
    clips = fsdd_test_clips[::5]  # 60 clips: every speaker and digit
    assert len(clips) >= 50
    worst = 0.0
    for path in clips:
        samples, rate = read_wav(path)
        assert rate == params.sample_rate
        ours, expected = mfcc(samples, params), librosa_mfcc(samples, params)
        assert ours.shape == expected.shape
        worst = max(worst, float(np.abs(ours - expected).max()))
    assert worst < TOLERANCE


def test_pcen_cepstra_match_librosa_on_real_speech(fsdd_test_clips) -> None:
    """PCEN in place of dB: librosa.pcen with the smoother settled at the first frame, then the DCT."""
    params = FeatureParams(pcen_seconds=0.4)
    t = 0.4 * params.sample_rate / params.hop_length
    b = (np.sqrt(1 + 4 * t**2) - 1) / (2 * t**2)
    basis = dct_matrix(params.n_mels, params.n_mfcc, params.dct_norm)
    worst = 0.0
    for path in fsdd_test_clips[::25]:
        samples, _ = read_wav(path)
        mel = librosa.feature.melspectrogram(y=samples, **params.librosa_melspectrogram_kwargs()).astype(np.float64)
        bands = librosa.pcen(mel, sr=params.sample_rate, hop_length=params.hop_length, time_constant=0.4,
                             eps=1e-12, zi=(1 - b) * mel[:, :1])
        ours = mfcc(samples, params)
        assert ours.shape == (mel.shape[1], params.n_mfcc)
        worst = max(worst, float(np.abs(ours - bands.T @ basis.T).max()))
    assert worst < TOLERANCE


def test_pcen_cepstra_hardly_move_with_level(fsdd_test_clips) -> None:
    """PCEN divides each band by its own average: 30 dB quieter speech keeps its cepstra, where dB shifts c0."""
    samples, _ = read_wav(fsdd_test_clips[0])
    for params, moves in ((FeatureParams(pcen_seconds=0.4), False), (FeatureParams(), True)):
        a, b = mfcc(samples, params), mfcc(samples * np.float32(10 ** (-30 / 20)), params)
        assert (np.abs(a - b).max() > 0.25 * np.abs(a).max()) == moves
    assert mel_power(samples, FeatureParams()).shape == (len(a), 40)


@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("params", PARAMS, ids=["default", "16k-lifter", "no-norm"])
@pytest.mark.parametrize("name", list(synthetic_signals(8000)))
def test_mfcc_matches_librosa_on_synthetic_signals(name: str, params: FeatureParams) -> None:
    samples = synthetic_signals(params.sample_rate)[name]
    ours, expected = mfcc(samples, params), librosa_mfcc(samples, params)
    assert ours.shape == expected.shape
    assert np.all(np.abs(ours - expected) <= tolerance(params)), np.abs(ours - expected).max(axis=0)


def test_frames_do_not_depend_on_the_rest_of_the_clip() -> None:
    """With top_db=None a frame's coefficients depend on its own samples only."""
    params = FeatureParams(top_db=None)
    quiet = synthetic_signals(8000)["tone_440"] * 0.01
    loud_tail = np.concatenate([quiet, np.ones(4000, np.float32) * 0.9])
    hop = params.hop_length
    keep = len(quiet) // hop - params.n_fft // hop  # frames untouched by the loud tail
    np.testing.assert_allclose(mfcc(loud_tail, params)[:keep], mfcc(quiet, params)[:keep], atol=1e-5)
