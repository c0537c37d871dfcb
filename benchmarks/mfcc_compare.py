"""Our NumPy MFCC against librosa and python_speech_features, with the same parameters."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import mfcc

from .timing import Tick, ratio, spread_ms, time_over_clips

OURS = "numpy"


def implementations(params: FeatureParams) -> dict[str, Callable[[np.ndarray], Any]]:
    """Name -> MFCC function of a 1-D signal, all configured from ``params``.

    ``librosa`` is the exact path (melspectrogram, power_to_db, mfcc(S=...)),
    which our output matches within 1e-3; ``librosa_y`` is the one-call
    ``librosa.feature.mfcc(y=...)`` users write (same parameters, but librosa's
    fixed top_db=80); ``python_speech_features`` gets every parameter it has
    (its mel scale is HTK's and it does not centre frames).
    """
    import librosa
    import python_speech_features

    mel_kwargs = params.librosa_melspectrogram_kwargs()
    db_kwargs = params.librosa_power_to_db_kwargs()
    mfcc_kwargs = params.librosa_mfcc_kwargs()
    # mfcc(y=...) forwards extra keywords to melspectrogram, except norm (the DCT's there)
    one_call = {**{k: v for k, v in mel_kwargs.items() if k != "norm"}, **mfcc_kwargs}
    window = np.hanning(params.win_length + 1)[:-1]  # periodic Hann, as ours

    def librosa_exact(y: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=y, **mel_kwargs)
        return librosa.feature.mfcc(S=librosa.power_to_db(mel, **db_kwargs), **mfcc_kwargs)

    def speech_features(y: np.ndarray) -> np.ndarray:
        return python_speech_features.mfcc(
            y, samplerate=params.sample_rate, winlen=params.win_length / params.sample_rate,
            winstep=params.hop_length / params.sample_rate, numcep=params.n_mfcc,
            nfilt=params.n_mels, nfft=params.n_fft, lowfreq=params.fmin, highfreq=params.fmax,
            preemph=0, ceplifter=params.lifter, appendEnergy=False, winfunc=lambda n: window)

    return {
        OURS: lambda y: mfcc(y, params),
        "librosa": librosa_exact,
        "librosa_y": lambda y: librosa.feature.mfcc(y=y, **one_call),
        "python_speech_features": speech_features,
    }


def compare(clips: list[np.ndarray], params: FeatureParams, rounds: int,
            tick: Tick = lambda n: None) -> dict[str, Any]:
    """Per-clip times of every implementation and each one's ratio to ours (speed-up)."""
    seconds = time_over_clips(implementations(params), clips, rounds, tick)
    return {
        "times": {name: spread_ms(s) for name, s in seconds.items()},
        "speedup": {name: ratio(s, seconds[OURS]) for name, s in seconds.items() if name != OURS},
    }


def scaling(signals: dict[float, np.ndarray], params: FeatureParams, classify: Callable[[np.ndarray], Any],
            rounds: int, tick: Tick = lambda n: None) -> dict[str, Any]:
    """Per-call time of our MFCC, librosa's and the whole decision, by signal length in seconds."""
    librosa_exact = implementations(params)["librosa"]
    actions = {OURS: lambda y: mfcc(y, params), "librosa": librosa_exact, "end_to_end": classify}
    rows = []
    for seconds, signal in sorted(signals.items()):
        times = time_over_clips(actions, [signal], rounds)
        rows.append({"seconds": seconds, **{name: spread_ms(t) for name, t in times.items()}})
        tick(1)
    return {"by_length": rows}
