"""MFCC features in pure NumPy, matching librosa for the same FeatureParams.

Every function is pure: arrays in, arrays out. Matrices that depend only on
parameters (window, mel filterbank, DCT) are built once and cached. Frames are
rows: a feature matrix has shape (n_frames, n_coefficients).
"""

from __future__ import annotations

import functools

import numpy as np

from .config import FeatureParams

# Slaney's mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel value of frequencies in Hz."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Frequencies in Hz of Slaney mel values."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def warp_frequencies(hz: np.ndarray, warp: float, fmax: float) -> np.ndarray:
    """Piecewise-linear VTLP warp: f * warp up to a knee, then a line to fmax.

    The knee sits at 0.8 * fmax * min(warp, 1) / warp, so warped frequencies stay
    within [0, fmax] and increasing for any warp in (0.5, 2).
    """
    knee = 0.8 * fmax * min(warp, 1.0) / warp
    upper = fmax - (fmax - knee * warp) * (fmax - hz) / (fmax - knee)
    return np.where(hz <= knee, hz * warp, upper)


@functools.lru_cache(maxsize=16)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, warp: float = 1.0
) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_mels, n_fft // 2 + 1).

    ``warp`` moves the band edges by ``warp_frequencies`` (vocal-tract-length
    perturbation for training augmentation); 1.0 is the filterbank librosa builds.
    """
    fft_hz = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    edges = warp_frequencies(edges, warp, fmax) if warp != 1.0 else edges
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights = np.asfortranarray(weights, dtype=np.float32)  # its transpose, a matmul's operand, is contiguous
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=16)
def analysis_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded to n_fft and centred."""
    n = np.arange(win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)
    window = np.zeros(n_fft, dtype=np.float32)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = hann
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=16)
def dct_matrix(n_mels: int, n_mfcc: int, norm: str | None) -> np.ndarray:
    """DCT-II basis, shape (n_mfcc, n_mels); ``norm='ortho'`` makes it orthonormal."""
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    basis = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels))
    if norm == "ortho":
        basis[0] *= np.sqrt(1.0 / (4 * n_mels))
        basis[1:] *= np.sqrt(1.0 / (2 * n_mels))
    basis = np.asfortranarray(basis, dtype=np.float32)  # its transpose, a matmul's operand, is contiguous
    basis.flags.writeable = False
    return basis


def frame_signal(samples: np.ndarray, n_fft: int, hop_length: int, center: bool = True) -> np.ndarray:
    """Split samples into overlapping frames, shape (n_frames, n_fft), read-only.

    With ``center`` the signal is zero-padded by n_fft // 2 on both sides, so
    there are 1 + len(samples) // hop_length frames. Without it, a signal
    shorter than n_fft is zero-padded to one frame.
    """
    x = np.asarray(samples, dtype=np.float32)
    pad = n_fft // 2 if center else 0
    padded = np.zeros(max(len(x) + 2 * pad, n_fft), dtype=np.float32)
    padded[pad : pad + len(x)] = x
    n_frames = 1 + (len(padded) - n_fft) // hop_length
    step = padded.strides[0]
    return np.lib.stride_tricks.as_strided(padded, (n_frames, n_fft), (hop_length * step, step), writeable=False)


def power_spectrum(frames: np.ndarray, window: np.ndarray, power: float = 2.0) -> np.ndarray:
    """|rFFT(frame * window)| ** power, shape (n_frames, n_fft // 2 + 1)."""
    spectrum = np.abs(np.fft.rfft(frames * window, axis=-1))
    if power == 2.0:
        spectrum *= spectrum  # in place: no second array
    elif power != 1.0:
        spectrum **= power
    return spectrum


def power_to_db(power: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = None) -> np.ndarray:
    """10 * log10(max(power, amin) / ref), optionally clamped top_db below the peak."""
    db = np.maximum(amin, power)
    np.log10(db, out=db)
    db *= 10.0
    if ref != 1.0:
        db -= 10.0 * np.log10(max(amin, ref))
    if top_db is not None:
        np.maximum(db, db.max() - top_db, out=db)
    return db


def lifter(mfccs: np.ndarray, coefficient: float) -> np.ndarray:
    """Sinusoidal liftering of the cepstral axis (last); 0 returns the input."""
    if coefficient <= 0:
        return mfccs
    n = np.arange(1, 1 + mfccs.shape[-1])
    return mfccs * (1 + (coefficient / 2) * np.sin(np.pi * n / coefficient))


def pcen(
    mel: np.ndarray,
    frames_per_second: float,
    seconds: float,
    gain: float = 0.98,
    bias: float = 2.0,
    power: float = 0.5,
    eps: float = 1e-12,
) -> np.ndarray:
    """Per-channel energy normalisation of a mel power spectrogram (n_frames, n_mels), same shape.

    Each band is divided by its own average over about ``seconds`` (a one-pole
    smoother that starts settled at the first frame, so a trimmed word is not
    measured against silence before it), to the power ``gain``, then compressed
    by ``(x + bias) ** power - bias ** power``. ``eps`` suits full-scale float
    audio: a -70 dBFS word's mel power is about 1e-7 (librosa's 1e-6 default
    assumes integer-scaled samples). Equals ``librosa.pcen`` on the transposed
    input with ``sr / hop_length = frames_per_second``, this ``eps`` and
    ``zi = (1 - b) * first frame``.
    """
    t_frames = seconds * frames_per_second
    b = (np.sqrt(1 + 4 * t_frames**2) - 1) / (2 * t_frames**2)
    x = np.asarray(mel, dtype=np.float64)
    smooth = np.empty_like(x)
    level = x[0] if len(x) else np.zeros(x.shape[1:])
    for t, frame in enumerate(x):
        level = b * frame + (1 - b) * level
        smooth[t] = level
    scale = np.exp(-gain * (np.log(eps) + np.log1p(smooth / eps)))
    return (bias**power * np.expm1(power * np.log1p(x * scale / bias))).astype(np.float32)


def mel_power(samples: np.ndarray, params: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """Mel power spectrogram, shape (n_frames, n_mels)."""
    frames = frame_signal(samples, params.n_fft, params.hop_length, params.center)
    spectrum = power_spectrum(frames, analysis_window(params.win_length, params.n_fft), params.power)
    filters = mel_filterbank(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax, warp)
    return spectrum.astype(np.float32, copy=False) @ filters.T


def log_mel(samples: np.ndarray, params: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """dB mel spectrogram, shape (n_frames, n_mels)."""
    return power_to_db(mel_power(samples, params, warp), params.db_ref, params.db_amin, params.top_db)


def mfcc(samples: np.ndarray, params: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """MFCCs of a 1-D float signal at params.sample_rate, shape (n_frames, n_mfcc).

    Equals ``librosa.feature.mfcc(S=power_to_db(melspectrogram(y)))`` with the
    keyword arguments FeatureParams gives, transposed. With params.pcen_seconds
    the DCT reads the PCEN mel spectrogram (``pcen``) instead of the dB one.
    """
    basis = dct_matrix(params.n_mels, params.n_mfcc, params.dct_norm)
    if params.pcen_seconds is None:
        bands = log_mel(samples, params, warp)
    else:
        bands = pcen(mel_power(samples, params, warp), params.sample_rate / params.hop_length, params.pcen_seconds)
    coefficients = bands @ basis.T
    return lifter(coefficients, params.lifter).astype(np.float32, copy=False)


def speech_bounds(samples: np.ndarray, params: FeatureParams) -> tuple[int, int]:
    """(start, end) sample indices of the speech in a clip.

    Frames (win_length long, hop_length apart) whose mean power is more than
    params.trim_db below the loudest frame are trimmed from both ends. A clip
    with no signal at all keeps its full length.
    """
    n = len(samples)
    if params.trim_db is None or n == 0:
        return 0, n
    x = np.asarray(samples, dtype=np.float64)
    win, hop = params.win_length, params.hop_length
    if n < win:
        x = np.pad(x, (0, win - n))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    energy = np.mean(frames**2, axis=1)
    peak = energy.max()
    if peak <= 0:
        return 0, n
    loud = np.flatnonzero(energy >= peak * 10.0 ** (-params.trim_db / 10.0))
    start = int(loud[0]) * hop
    end = min(n, int(loud[-1]) * hop + win)
    return start, end


def centre_crop(samples: np.ndarray, length: int) -> np.ndarray:
    """The middle ``length`` samples of a longer signal (the signal if shorter)."""
    excess = len(samples) - length
    if excess <= 0:
        return samples
    return samples[excess // 2 : excess // 2 + length]


def cmvn(features: np.ndarray, scale=None, eps: float = 1e-5) -> np.ndarray:
    """Zero mean per coefficient over the frames (axis 0) of a (k, d) matrix, divided by
    each coefficient's standard deviation over them, or by the fixed ``scale`` (d values)."""
    mean = features.mean(axis=0, keepdims=True)
    if scale is not None:
        return (features - mean) / np.asarray(scale, np.float32)
    std = features.std(axis=0, keepdims=True)
    return (features - mean) / np.maximum(std, eps)


def place_centred(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Put a (k, d) matrix in the middle of n_frames zero rows, shape (n_frames, d)."""
    out = np.zeros((n_frames, features.shape[1]), dtype=np.float32)
    k = min(len(features), n_frames)
    start = (n_frames - k) // 2
    skip = (len(features) - k) // 2
    out[start : start + k] = features[skip : skip + k]
    return out


def speech_mfcc(samples: np.ndarray, params: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """MFCCs of an utterance's speech alone, before any normalisation: trimmed to
    its speech bounds and at most one clip long (the middle), shape (k, n_mfcc)."""
    start, end = speech_bounds(samples, params)
    speech = centre_crop(np.asarray(samples[start:end], dtype=np.float32), params.clip_samples)
    return mfcc(speech, params, warp)


def clip_features(samples: np.ndarray, params: FeatureParams, warp: float = 1.0) -> np.ndarray:
    """The model's input for one utterance, shape params.input_shape.

    Trim silence, keep at most one clip of speech (the middle), compute MFCCs of
    the speech alone, normalise them per clip (params.cmvn, params.cmn_scale), append the raw
    MFCCs standardised by params.raw_mean and raw_std when set, and centre them
    in the clip's frame grid with zeros around.
    """
    raw = speech_mfcc(samples, params, warp)
    coefficients = cmvn(raw, params.cmn_scale) if params.cmvn else raw
    if params.raw_mean is not None and params.raw_std is not None:
        standardised = (raw - np.asarray(params.raw_mean, np.float32)) / np.asarray(params.raw_std, np.float32)
        coefficients = np.concatenate([coefficients, standardised], axis=1)
    return place_centred(coefficients, params.n_frames)
