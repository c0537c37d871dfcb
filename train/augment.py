"""Waveform augmentation for robustness to new speakers and rooms.

Pure functions of (samples, parameters[, rng]); all operate on float32 mono at
the model's sample rate. The mel-filterbank warp (VTLP-like) is applied when
the features are computed: ``clip_features(samples, params, warp=...)``.
With ``capture > 0`` a copy may instead go through the capture chain of
``capture.py`` (rooms, padding, noise, microphone colour). Augmentation is for
training only; evaluation sees clean clips or the fixed ``conditions.py`` set.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import FeatureParams
from ..features import clip_features, speech_bounds
from .capture import (CaptureParams, load_babble_bank, load_rir_bank, random_capture, rir_bank,
                      rir_bank_path)


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """Ranges the random augmentation draws from (uniformly)."""

    copies: int = 4
    """Augmented copies per training clip (0 disables augmentation)."""
    speed: tuple[float, float] = (0.85, 1.15)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    shift_seconds: float = 0.1
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_probability: float = 0.8
    warp: float = 0.12
    """Mel-filterbank warp: factor drawn from [1 - warp, 1 + warp_up]."""
    warp_up: float = 0.0
    edge_cut: float = 0.0
    """Up to this many seconds cut off the word's start, and independently off its end, each
    side with probability 0.5 (``cut_edges``): a word whose onset or coda the recording lost,
    as in FSDD's tightly trimmed takes; 0 = off."""
    edge_cut_db: tuple[float, float] | None = None
    """With it, a side is cut at a level instead (still with probability 0.5, still at most a
    quarter of the word): trimmed to its first (last) frame within a threshold drawn from this
    range, in dB below the loudest frame, as a trimmer that cut into the word left FSDD's takes
    (37% of them start within 15 dB of their loudest 20 ms); None = the cut in seconds above.
    Absent from ``to_dict`` while None, so recipes without it keep their cache keys."""
    capture: float = 0.0
    """Probability per copy of the capture chain (capture.random_capture) in place of
    gain, shift and white noise; 0 keeps the augmentation above unchanged."""
    capture_reverb: float = 0.5
    """Probability of room reverberation within the capture chain."""
    capture_rt60: tuple[float, float] = (0.1, 0.8)
    capture_rirs: int = 200
    """Simulated rooms in the impulse-response bank (built once, cached)."""
    capture_snr_db: tuple[float, float] = (0.0, 30.0)
    capture_gain_db: tuple[float, float] = (-30.0, 6.0)
    capture_floor_dbfs: tuple[float, float] = (-70.0, -35.0)
    capture_floor_snr_db: float | None = 5.0
    """The floor stays this far below the speech after gain (None: no limit)."""
    capture_noise_weights: tuple[float, ...] = CaptureParams.noise_weights
    """Relative odds of the capture chain's ambient noises (capture.NOISE_KINDS: white, pink,
    brown, babble, hum)."""
    babble_bank: str = ""
    """A babble bank .npz (capture.build_babble_bank on the training clips); "" = no babble."""
    room_bank: str = ""
    """The impulse-response bank .npz (``prepare_capture``); "" = the default cache's."""

    def __post_init__(self) -> None:
        if isinstance(self.edge_cut_db, list):  # from JSON
            object.__setattr__(self, "edge_cut_db", tuple(float(v) for v in self.edge_cut_db))
        if self.edge_cut_db is not None:
            lo, hi = self.edge_cut_db
            if not 0 < lo <= hi <= 80:
                raise ValueError(f"edge_cut_db {list(self.edge_cut_db)}: need 0 < low <= high <= 80 dB")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.edge_cut_db is None:
            del out["edge_cut_db"]
        return out

    def test_warps(self) -> tuple[float, ...]:
        """The mel warps a model trained with these copies is decided over (``convert``'s default):
        1 and the middle of the training warp range (0.94 for the default 0.88-1), or 1 alone.

        Copies are warped, the clean clip is not: a model sees 1 as the edge of its
        range, and a held-out voice heard at both views is decided more often right
        (docs/training.md, "Test-time warps").
        """
        middle = round(1.0 - self.warp / 2 + self.warp_up / 2, 3) if self.copies > 0 else 1.0
        return (middle, 1.0) if middle != 1.0 else (1.0,)

    def capture_params(self) -> CaptureParams:
        """The capture chain's settings: these ranges, CaptureParams defaults for the rest."""
        return CaptureParams(reverb=self.capture_reverb, rt60=self.capture_rt60,
                             rir_count=self.capture_rirs, snr_db=self.capture_snr_db,
                             gain_db=self.capture_gain_db, floor_dbfs=self.capture_floor_dbfs,
                             floor_snr_db=self.capture_floor_snr_db,
                             noise_weights=self.capture_noise_weights)


def prepare_capture(aug: AugmentParams, rate: int, cache_dir=None) -> AugmentParams:
    """``aug`` with its impulse-response bank built (or loaded) once, in the parent, and named
    in ``room_bank`` so worker processes load that file."""
    if aug.capture > 0 and aug.capture_reverb > 0:
        p = aug.capture_params()
        rir_bank(rate, p.rt60, p.rir_count, p.rir_seed, cache_dir)
        path = rir_bank_path(rate, p.rt60, p.rir_count, p.rir_seed, cache_dir)
        return dataclasses.replace(aug, room_bank=str(path))
    return aug


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels, clipped to [-1, 1]."""
    return np.clip(samples * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0).astype(np.float32)


def shift(samples: np.ndarray, n: int) -> np.ndarray:
    """Delay by ``n`` samples (advance if negative), zero-filled, same length."""
    out = np.zeros_like(samples)
    if n >= 0:
        out[n:] = samples[:len(samples) - n] if n < len(samples) else []
    else:
        out[:n] = samples[-n:]
    return out


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise ``snr_db`` below the signal's mean power."""
    power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
    if power <= 0:
        return samples.astype(np.float32)
    noise = rng.standard_normal(len(samples)) * np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (samples + noise).astype(np.float32)


def speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and tempo together), by linear interpolation."""
    if factor == 1.0 or len(samples) < 2:
        return samples.astype(np.float32)
    n_out = max(2, int(round(len(samples) / factor)))
    positions = np.linspace(0, len(samples) - 1, n_out)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def cut_edges(samples: np.ndarray, rate: int, max_seconds: float, rng: np.random.Generator,
              level_db: tuple[float, float] | None = None) -> np.ndarray:
    """The word of ``samples`` (the runtime's default trim) with 0..max_seconds cut off its start
    and, independently, off its end, each with probability 0.5; at least half the word stays.
    The silence around the word goes too: the result starts and ends inside the speech.

    With ``level_db`` (low, high) a cut side is trimmed at a level instead: to its first (last)
    frame within a threshold drawn from low..high dB below the loudest, so weak sounds at the
    edge (the "th" of "three", the "f" of "four") go and the vowel stays."""
    start, end = speech_bounds(samples, FeatureParams(sample_rate=rate))
    longest = (end - start) // 4 if level_db else min(int(max_seconds * rate), (end - start) // 4)

    def depth(side: int) -> int:
        """Samples cut off the start (side 0) or the end (side 1)."""
        if rng.random() >= 0.5:
            return 0
        if level_db is None:
            return int(rng.integers(0, longest + 1))
        first, last = speech_bounds(samples, FeatureParams(sample_rate=rate, trim_db=float(rng.uniform(*level_db))))
        return min(longest, first - start if side == 0 else end - last)

    head = depth(0)
    tail = depth(1)
    return samples[start + head:end - tail].astype(np.float32)


def random_augment(samples: np.ndarray, rate: int, aug: AugmentParams,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(augmented samples, mel warp factor) drawn from ``aug``'s ranges."""
    if aug.edge_cut or aug.edge_cut_db:
        samples = cut_edges(samples, rate, aug.edge_cut, rng, aug.edge_cut_db)
    x = speed(samples, rng.uniform(*aug.speed))
    if aug.capture and rng.random() < aug.capture:
        babble = load_babble_bank(aug.babble_bank) if aug.babble_bank else None
        rooms = load_rir_bank(aug.room_bank) if aug.room_bank else None
        x = random_capture(x, rate, rng, aug.capture_params(), babble, rooms)
    else:
        x = gain(x, rng.uniform(*aug.gain_db))
        max_shift = int(aug.shift_seconds * rate)
        if max_shift:
            pad = np.zeros(max_shift, dtype=np.float32)
            x = shift(np.concatenate([pad, x, pad]), int(rng.integers(-max_shift, max_shift + 1)))
        if rng.random() < aug.noise_probability:
            x = add_noise(x, rng.uniform(*aug.snr_db), rng)
    warp = float(rng.uniform(1 - aug.warp, 1.0 + aug.warp_up)) if aug.warp or aug.warp_up else 1.0
    return x, warp


def augmented_features(samples: np.ndarray, params: FeatureParams, aug: AugmentParams,
                       rng: np.random.Generator, copies: int | None = None) -> np.ndarray:
    """``copies`` augmented feature matrices of one clip, shape (copies, *input_shape)."""
    n = aug.copies if copies is None else copies
    out = np.zeros((n, *params.input_shape), dtype=np.float32)
    for k in range(n):
        x, warp = random_augment(samples, params.sample_rate, aug, rng)
        out[k] = clip_features(x, params, warp=warp)
    return out
