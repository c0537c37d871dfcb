"""Capture conditions: what a microphone adds to a clean, tightly trimmed word.

Pure, seeded functions on float32 mono waveforms (values in [-1, 1]) at a
given sample rate, applied before the runtime's own read -> resample -> trim
-> MFCC -> CMVN path. ``random_capture`` draws a whole capture chain from a
``CaptureParams``; training uses it for augmentation and ``conditions.py``
uses it with degenerate ranges for the fixed evaluation conditions.

The chain, in physical order: room (reverberation from a cached bank of
pyroomacoustics impulse responses) -> untrimmed silence around the word ->
ambient noise at an SNR (white, pink, brown, babble, mains hum) -> gain ->
microphone noise floor (dBFS) -> microphone colour (low-cut, high-cut,
telephone band, mu-law 8 kHz round trip) -> DC offset -> clipping.

SNRs are relative to the speech's active power (``speech_power``): the mean
power of the 20 ms frames within 30 dB of the loudest, so silence already in
a clip does not lower the reference.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeError
from ..resample import resample

NOISE_KINDS = ("white", "pink", "brown", "babble", "hum")
BANK_VERSION = 1
_BANK_SECONDS = 20.0  # length of the precomputed coloured-noise banks


@dataclasses.dataclass(frozen=True)
class CaptureParams:
    """Probabilities (0-1) and uniform ranges of the random capture chain.

    Flat, JSON-able fields (tuples become lists): ``CaptureParams(**d)``
    rebuilds it from ``to_dict()`` after ``tuple()`` on the lists.
    """

    reverb: float = 0.5
    """Probability of room reverberation."""
    rt60: tuple[float, float] = (0.1, 0.8)
    """Reverberation time range of the impulse-response bank, seconds."""
    rir_count: int = 200
    """Impulse responses in the bank (built once per rate and range, cached)."""
    rir_seed: int = 0
    pad: float = 0.8
    """Probability of untrimmed silence around the word (it carries the noise floor)."""
    pad_seconds: tuple[float, float] = (0.2, 1.0)
    """Silence before and (drawn separately) after the word, seconds."""
    floor_dbfs: tuple[float, float] = (-70.0, -35.0)
    """RMS of the white noise floor under padded clips, dB re full scale."""
    floor_snr_db: float | None = 5.0
    """Keep the floor at least this far below the speech's active level after gain,
    so a quiet word never drowns (the label stays true); None: no limit."""
    noise: float = 0.7
    """Probability of ambient noise at an SNR."""
    noise_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.5)
    """Relative odds of the NOISE_KINDS (white, pink, brown, babble, hum);
    babble needs source clips and is skipped without them."""
    snr_db: tuple[float, float] = (0.0, 30.0)
    hum_hz: tuple[float, ...] = (50.0, 60.0)
    """Mains frequencies to choose from; hum has harmonics up to the 5th."""
    babble_talkers: tuple[int, int] = (3, 6)
    """Number of overlapping talkers in babble (inclusive range)."""
    gain_db: tuple[float, float] = (-30.0, 6.0)
    """Gain applied to speech and ambient noise (not to the floor), dB; always drawn."""
    lowcut: float = 0.15
    lowcut_hz: tuple[float, float] = (100.0, 400.0)
    highcut: float = 0.15
    highcut_hz: tuple[float, float] = (2500.0, 7000.0)
    """Skipped where the draw is above 0.9 x Nyquist."""
    telephone: float = 0.1
    """Probability of the telephone band, 300-3400 Hz."""
    mulaw: float = 0.1
    """Probability of a mu-law 8-bit round trip at 8 kHz."""
    dc: float = 0.1
    dc_offset: tuple[float, float] = (-0.05, 0.05)
    clipping: float = 0.05
    clip_drive_db: tuple[float, float] = (1.0, 12.0)
    """Clipping threshold below the peak, dB."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaptureParams:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


# ---------------------------------------------------------------- levels


def power(samples: np.ndarray) -> float:
    """Mean square of a signal (0 for an empty one)."""
    return float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0


LEVEL_FRAME = 0.02  # seconds


def frame_powers(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """(mean square of each whole LEVEL_FRAME frame, shape (n,) float64; frame length in samples);
    a trailing part frame is left out."""
    frame = max(1, int(LEVEL_FRAME * rate))
    n = len(samples) // frame
    x = np.asarray(samples[:n * frame], dtype=np.float64).reshape(n, frame)
    return np.mean(x ** 2, axis=1), frame


def speech_power(samples: np.ndarray, rate: int, range_db: float = 30.0) -> float:
    """Active speech power: mean power of the 20 ms frames within ``range_db`` of the loudest."""
    energy, _ = frame_powers(samples, rate)
    if len(energy) == 0:
        return power(samples)
    peak = energy.max()
    if peak <= 0:
        return 0.0
    return float(energy[energy >= peak * 10.0 ** (-range_db / 10.0)].mean())


def db(value: float) -> float:
    """10 log10 of a power (-inf for 0)."""
    return float(10.0 * np.log10(value)) if value > 0 else float("-inf")


# ---------------------------------------------------------------- simple effects


def gain(samples: np.ndarray, db_: float) -> np.ndarray:
    """Scale by ``db_`` decibels (no clipping here)."""
    return (np.asarray(samples, dtype=np.float32) * np.float32(10.0 ** (db_ / 20.0))).astype(np.float32)


def pad(samples: np.ndarray, before: int, after: int) -> np.ndarray:
    """Digital silence of ``before`` and ``after`` samples around a signal."""
    return np.pad(np.asarray(samples, dtype=np.float32), (before, after))


def scale_to_snr(noise: np.ndarray, reference_power: float, snr_db: float) -> np.ndarray:
    """``noise`` scaled so its mean power is ``snr_db`` below ``reference_power``."""
    p = power(noise)
    if p <= 0 or reference_power <= 0:
        return np.zeros_like(noise, dtype=np.float32)
    return (noise * np.sqrt(reference_power / p / 10.0 ** (snr_db / 10.0))).astype(np.float32)


def dc_offset(samples: np.ndarray, offset: float) -> np.ndarray:
    return (np.asarray(samples, dtype=np.float32) + np.float32(offset)).astype(np.float32)


def clip(samples: np.ndarray, drive_db: float) -> np.ndarray:
    """Hard-clip ``drive_db`` below the peak: an overloaded input's flat tops, level kept."""
    x = np.asarray(samples, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    level = np.float32(peak * 10.0 ** (-drive_db / 20.0))
    return np.clip(x, -level, level).astype(np.float32)


# ---------------------------------------------------------------- noise


@functools.lru_cache(maxsize=16)
def _coloured_bank(kind: str, rate: int) -> np.ndarray:
    """_BANK_SECONDS of unit-power white, pink (1/f) or brown (1/f^2) noise, fixed seed."""
    n = int(_BANK_SECONDS * rate)
    rng = np.random.default_rng([BANK_VERSION, NOISE_KINDS.index(kind), rate])
    white = rng.standard_normal(n)
    if kind != "white":
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1.0 / rate)
        f[0] = f[1]
        spectrum *= f ** (-0.5 if kind == "pink" else -1.0)
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, n)
    bank = (white / np.sqrt(np.mean(white ** 2))).astype(np.float32)
    bank.flags.writeable = False
    return bank


def coloured_noise(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-power white, pink or brown noise (a random slice of a fixed bank)."""
    bank = _coloured_bank(kind, rate)
    if n > len(bank):
        reps = int(np.ceil(n / len(bank)))
        return np.roll(np.tile(bank, reps)[:n], int(rng.integers(n)))
    start = int(rng.integers(0, len(bank) - n + 1))
    segment = bank[start:start + n]
    return (segment / np.sqrt(max(power(segment), 1e-12))).astype(np.float32)


def hum(n: int, rate: int, mains_hz: float, rng: np.random.Generator,
        harmonics: int = 5) -> np.ndarray:
    """Unit-power mains hum: ``mains_hz`` and its harmonics (amplitudes 1/k, random phases)."""
    t = np.arange(n) / rate
    x = np.zeros(n)
    for k in range(1, harmonics + 1):
        if k * mains_hz < rate / 2:
            x += np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi)) / k
    return (x / np.sqrt(max(power(x), 1e-12))).astype(np.float32)


def babble(sources: Sequence[np.ndarray], n: int, talkers: int,
           rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-power babble: ``talkers`` streams of random source clips, summed.

    Each stream is source clips (each normalised to unit power) one
    after another from a random start, so every talker speaks throughout.
    """
    voices = [s for s in sources if len(s) and np.any(s)]
    if not voices:
        raise ValueError("babble needs source clips with signal")
    out = np.zeros(n, dtype=np.float64)
    for _ in range(talkers):
        stream: list[np.ndarray] = []
        length = 0
        while length <= n:
            voice = np.asarray(voices[int(rng.integers(len(voices)))], dtype=np.float64)
            stream.append(voice / np.sqrt(power(voice)))
            length += len(voice)
        joined = np.concatenate(stream)
        start = int(rng.integers(0, len(joined) - n))
        out += joined[start:start + n]
    return (out / np.sqrt(max(power(out), 1e-12))).astype(np.float32)


# ---------------------------------------------------------------- rooms


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response (FFT); the room's tail is kept (n + len(rir) - 1)."""
    x = np.asarray(samples, dtype=np.float64)
    h = np.asarray(rir, dtype=np.float64)
    m = len(x) + len(h) - 1
    size = 1 << (m - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:m]
    return y.astype(np.float32)


def _shoebox_rir(rate: int, dims: np.ndarray, source: np.ndarray, mic: np.ndarray,
                 sabine_rt60: float) -> np.ndarray | None:
    """Image-source impulse response of one room (None if Sabine cannot reach that RT60 there)."""
    import pyroomacoustics as pra

    try:
        absorption, max_order = pra.inverse_sabine(sabine_rt60, dims)
    except ValueError:
        return None
    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(absorption),
                       max_order=min(max_order, 150), air_absorption=False)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def simulate_rir(rate: int, rt60: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(impulse response, its measured RT60 in s) of a random shoebox room with about ``rt60`` s.

    Room 3-10 x 2.5-8 x 2.4-3.5 m, source and mic at least 0.5 m from the walls
    and from each other. Wall absorption comes from Sabine's formula, corrected
    (up to twice) until the measured RT60 is within 10% of ``rt60``. The
    response starts 2 ms before the direct path, lasts 1.5 x rt60, peak 1.
    """
    for _ in range(200):
        dims = np.array([rng.uniform(3.0, 10.0), rng.uniform(2.5, 8.0), rng.uniform(2.4, 3.5)])
        margin = 0.5
        source = rng.uniform(margin, dims - margin)
        mic = rng.uniform(margin, dims - margin)
        if np.linalg.norm(mic - source) < 0.5:
            continue
        target, h = rt60, None
        for _ in range(3):
            trial = _shoebox_rir(rate, dims, source, mic, target)
            if trial is None:
                break
            h, measured = trial, measure_rt60(trial, rate)
            if abs(measured - rt60) <= 0.1 * rt60 or not np.isfinite(measured):
                break
            target *= rt60 / measured
        if h is not None:
            break
    else:
        raise ValueError(f"no shoebox room found for RT60 {rt60} s")
    start = max(0, int(np.argmax(np.abs(h))) - int(0.002 * rate))
    h = h[start:start + int(1.5 * rt60 * rate) + 1]
    return (h / np.max(np.abs(h))).astype(np.float32), measured


def measure_rt60(rir: np.ndarray, rate: int) -> float:
    """RT60 in seconds from the Schroeder decay of an impulse response (-5 to -35 dB, x2)."""
    energy = np.cumsum(np.square(rir[::-1], dtype=np.float64))[::-1]
    decay = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-30))
    i5, i35 = int(np.argmax(decay <= -5.0)), int(np.argmax(decay <= -35.0))
    if i35 <= i5:
        return float("nan")
    return 2.0 * (i35 - i5) / rate


@dataclasses.dataclass(frozen=True)
class RirBank:
    """Impulse responses at one rate: ``rirs[i, :lengths[i]]``; target and measured RT60s, seconds."""

    rate: int
    rirs: np.ndarray
    lengths: np.ndarray
    rt60: np.ndarray
    measured_rt60: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def get(self, i: int) -> np.ndarray:
        return self.rirs[i, :self.lengths[i]]


def rir_bank_path(rate: int, rt60: tuple[float, float], count: int, seed: int,
                  cache_dir=None) -> Path:
    from .cache import cache_root

    name = f"rir-v{BANK_VERSION}-r{rate}-t{rt60[0]:g}-{rt60[1]:g}-n{count}-s{seed}.npz"
    return cache_root(cache_dir) / "rir" / name


def build_rir_bank(rate: int, rt60: tuple[float, float], count: int, seed: int) -> RirBank:
    """``count`` simulated rooms, RT60 uniform in ``rt60``, random source and mic positions."""
    rng = np.random.default_rng([BANK_VERSION, seed, rate])
    targets = rng.uniform(rt60[0], rt60[1], count)
    rirs, measured = zip(*(simulate_rir(rate, float(t), rng) for t in targets))
    lengths = np.array([len(h) for h in rirs], dtype=np.int64)
    table = np.zeros((count, int(lengths.max())), dtype=np.float32)
    for i, h in enumerate(rirs):
        table[i, :len(h)] = h
    measured = np.array(measured, dtype=np.float32)
    return RirBank(rate, table, lengths, targets.astype(np.float32), measured)


def rir_bank(rate: int, rt60: tuple[float, float] = (0.1, 0.8), count: int = 200, seed: int = 0,
             cache_dir=None) -> RirBank:
    """The impulse-response bank for these settings: loaded from the cache, built once if absent.

    Cached as .npz under ``cache_root()/rir``; within a process the loaded
    bank is reused. Build it in the parent before starting workers.
    """
    span = (float(rt60[0]), float(rt60[1]))
    path = rir_bank_path(rate, span, count, seed, cache_dir)
    return _load_or_build(str(path), rate, span, count, seed)


@functools.lru_cache(maxsize=8)
def load_rir_bank(path: str) -> RirBank:
    """A cached impulse-response bank .npz (``rir_bank_path``), loaded once per process."""
    with np.load(path, allow_pickle=False) as data:
        return RirBank(int(data["rate"]), data["rirs"], data["lengths"], data["rt60"],
                       data["measured_rt60"])


@functools.lru_cache(maxsize=8)
def _load_or_build(path: str, rate: int, rt60: tuple[float, float], count: int, seed: int) -> RirBank:
    target = Path(path)
    if target.is_file():
        try:
            return load_rir_bank(path)
        except (OSError, ValueError, KeyError):
            pass
    bank = build_rir_bank(rate, rt60, count, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, rate=bank.rate, rirs=bank.rirs, lengths=bank.lengths, rt60=bank.rt60,
             measured_rt60=bank.measured_rt60)
    tmp.replace(target)
    return bank


# ---------------------------------------------------------------- microphone colour


def _filter(samples: np.ndarray, rate: int, response) -> np.ndarray:
    """Zero-phase filter by a magnitude response ``response(f_hz)`` in the FFT domain.

    The signal is padded by 0.1 s of zeros on both sides so the filter's ringing
    does not wrap around.
    """
    x = np.asarray(samples, dtype=np.float64)
    margin = int(0.1 * rate)
    n = len(x) + 2 * margin
    size = 1 << (max(n, 2) - 1).bit_length()
    spectrum = np.fft.rfft(np.pad(x, (margin, margin)), size)
    spectrum *= response(np.fft.rfftfreq(size, 1.0 / rate))
    return np.fft.irfft(spectrum, size)[margin:margin + len(x)].astype(np.float32)


def _highpass(f: np.ndarray, cutoff: float, order: int) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(1.0 + (cutoff / np.maximum(f, 1e-9)) ** (2 * order))


def _lowpass(f: np.ndarray, cutoff: float, order: int) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (f / cutoff) ** (2 * order))


def lowcut(samples: np.ndarray, rate: int, hz: float, order: int = 2) -> np.ndarray:
    """High-pass (Butterworth magnitude, ``order``) at ``hz``: a small or distant mic's thin bass."""
    return _filter(samples, rate, lambda f: _highpass(f, hz, order))


def highcut(samples: np.ndarray, rate: int, hz: float, order: int = 4) -> np.ndarray:
    """Low-pass (Butterworth magnitude, ``order``) at ``hz``: a dull mic or a muffled voice."""
    return _filter(samples, rate, lambda f: _lowpass(f, hz, order))


def telephone(samples: np.ndarray, rate: int, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """The telephone band: steep band-pass ``low``-``high`` Hz (Butterworth magnitudes, order 6 / 24)."""
    return _filter(samples, rate, lambda f: _highpass(f, low, 6) * _lowpass(f, high, 24))


def mulaw(samples: np.ndarray, rate: int, mu: int = 255) -> np.ndarray:
    """A G.711-style round trip: resample to 8 kHz, mu-law 8-bit encode/decode, resample back."""
    x = resample(np.clip(samples, -1.0, 1.0), rate, 8000) if rate != 8000 else np.asarray(samples)
    x = np.clip(x.astype(np.float64), -1.0, 1.0)
    code = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0)
    y = np.sign(code) * np.expm1(np.abs(code) / 127.0 * np.log1p(mu)) / mu
    y = y.astype(np.float32)
    if rate != 8000:
        y = resample(y, 8000, rate)[:len(samples)]
        y = np.pad(y, (0, len(samples) - len(y)))
    return y.astype(np.float32)


# ---------------------------------------------------------------- babble bank


def babble_bank_path(paths: Sequence[str | Path], rate: int, count: int, seed: int,
                     cache_dir=None) -> Path:
    from .cache import cache_root

    h = hashlib.sha256(json.dumps([str(Path(p).resolve()) for p in paths]).encode()).hexdigest()[:16]
    return cache_root(cache_dir) / "babble" / f"babble-v{BANK_VERSION}-r{rate}-n{count}-s{seed}-{h}.npz"


def build_babble_bank(paths: Sequence[str | Path], rate: int, count: int = 300, seed: int = 0,
                      cache_dir=None) -> Path:
    """Cache up to ``count`` of ``paths`` (seeded choice) at ``rate`` as babble sources; the .npz path.

    Pass training clips for training and held-out clips for evaluation, so no
    voice crosses the split. Each clip is cut to its active part.
    """
    from .cache import load_samples

    target = babble_bank_path(paths, rate, count, seed, cache_dir)
    if target.is_file():
        return target
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(paths), size=min(count, len(paths)), replace=False))
    clips = []
    for i in chosen:
        try:
            x = active_part(load_samples(paths[i], rate), rate)
        except (OSError, EdgeError):  # an unreadable clip is simply not a babble source
            x = np.zeros(0, dtype=np.float32)
        if len(x) and power(x) > 0:
            clips.append(x.astype(np.float32))
    if not clips:
        raise ValueError("no readable clips for the babble bank")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, samples=np.concatenate(clips), lengths=np.array([len(c) for c in clips]), rate=rate)
    tmp.replace(target)
    return target


@functools.lru_cache(maxsize=4)
def load_babble_bank(path: str | Path) -> tuple[np.ndarray, ...]:
    """The source clips of a babble bank .npz (cached per process)."""
    with np.load(path, allow_pickle=False) as data:
        samples, lengths = data["samples"], data["lengths"]
    return tuple(np.split(samples, np.cumsum(lengths)[:-1]))


def active_part(samples: np.ndarray, rate: int, range_db: float = 30.0) -> np.ndarray:
    """From the first to the last 20 ms frame within ``range_db`` of the loudest."""
    x = np.asarray(samples, dtype=np.float32)
    energy, frame = frame_powers(x, rate)
    if len(energy) == 0:
        return x
    if energy.max() <= 0:
        return x[:0]
    loud = np.flatnonzero(energy >= energy.max() * 10.0 ** (-range_db / 10.0))
    return x[loud[0] * frame:(loud[-1] + 1) * frame]


# ---------------------------------------------------------------- the chain


def _choose_noise(params: CaptureParams, rng: np.random.Generator, has_babble: bool) -> str | None:
    weights = np.array(params.noise_weights, dtype=np.float64)
    if len(weights) != len(NOISE_KINDS):
        raise ValueError(f"noise_weights needs {len(NOISE_KINDS)} values ({', '.join(NOISE_KINDS)})")
    if not has_babble:
        weights[NOISE_KINDS.index("babble")] = 0.0
    if weights.sum() <= 0:
        return None
    return NOISE_KINDS[int(rng.choice(len(NOISE_KINDS), p=weights / weights.sum()))]


def make_noise(kind: str, n: int, rate: int, rng: np.random.Generator, params: CaptureParams,
               babble_sources: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """``n`` samples of unit-power noise of one of NOISE_KINDS."""
    if kind == "hum":
        return hum(n, rate, float(rng.choice(params.hum_hz)), rng)
    if kind == "babble":
        lo, hi = params.babble_talkers
        return babble(babble_sources or (), n, int(rng.integers(lo, hi + 1)), rng)
    return coloured_noise(kind, n, rate, rng)


def random_capture(samples: np.ndarray, rate: int, rng: np.random.Generator,
                   params: CaptureParams | None = None,
                   babble: Sequence[np.ndarray] | None = None,
                   rooms: RirBank | None = None) -> np.ndarray:
    """One random capture of a clean word, drawn from ``params``.

    Args:
        samples: float32 mono speech in [-1, 1], shape (n,), at ``rate`` Hz.
        rate: sample rate in Hz (of the input and the output).
        rng: the only source of randomness: the same state gives the same output.
        params: probabilities and ranges (default ``CaptureParams()``).
        babble: source clips at ``rate`` for babble noise (other speakers of the
            same side of the split); without them babble is never drawn.
        rooms: the impulse-response bank (default: ``rir_bank`` for ``params``
            in the default cache).

    Returns:
        float32 samples in [-1, 1], shape (m,) with m >= n (padding, room tail).
    """
    p = params or CaptureParams()
    x: np.ndarray = np.nan_to_num(np.asarray(samples, dtype=np.float32))
    reference = speech_power(x, rate)
    if rng.random() < p.reverb:
        bank = rooms or rir_bank(rate, p.rt60, p.rir_count, p.rir_seed)
        x = reverberate(x, bank.get(int(rng.integers(len(bank)))))
    padded = rng.random() < p.pad
    if padded:
        lo, hi = (int(s * rate) for s in p.pad_seconds)
        x = pad(x, int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
    if rng.random() < p.noise:
        kind = _choose_noise(p, rng, bool(babble))
        if kind is not None:
            noise = make_noise(kind, len(x), rate, rng, p, babble)
            x = x + scale_to_snr(noise, reference, rng.uniform(*p.snr_db))
    gain_db = rng.uniform(*p.gain_db)
    x = gain(x, gain_db)
    if padded:
        floor = coloured_noise("white", len(x), rate, rng)
        floor_db = rng.uniform(*p.floor_dbfs)
        if p.floor_snr_db is not None and reference > 0:
            floor_db = min(floor_db, db(reference) + gain_db - p.floor_snr_db)
        x = x + floor * np.float32(10.0 ** (floor_db / 20.0))
    if rng.random() < p.lowcut:
        x = lowcut(x, rate, rng.uniform(*p.lowcut_hz))
    if rng.random() < p.highcut:
        hz = rng.uniform(*p.highcut_hz)
        if hz < 0.45 * rate:
            x = highcut(x, rate, hz)
    if rng.random() < p.telephone:
        x = telephone(x, rate)
    if rng.random() < p.mulaw:
        x = mulaw(x, rate)
    if rng.random() < p.dc:
        x = dc_offset(x, rng.uniform(*p.dc_offset))
    if rng.random() < p.clipping:
        x = clip(x, rng.uniform(*p.clip_drive_db))
    return np.clip(np.nan_to_num(x), -1.0, 1.0).astype(np.float32)
