"""FeatureParams: the one description of the features a model was trained on.

Training and the device runtime both read this object, it travels inside the
model artifact, and its hash lets a runtime refuse features it cannot match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from typing import Any

from .errors import EdgeError

SCHEMA = 1


MAX_N_FFT = 8192
MAX_N_MELS = 512
MAX_FRAMES = 10_000


class ConfigError(EdgeError, ValueError):
    """A feature configuration the runtime cannot compute."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureParams:
    """Every parameter of the clip -> MFCC-matrix path.

    The MFCC part mirrors librosa (centre-padded STFT, periodic Hann window,
    Slaney mel filterbank with Slaney norm, dB, DCT); the clip part (trim,
    centre, per-clip normalisation) is this project's own.
    """

    sample_rate: int = 8000
    """Model sample rate in Hz; audio at other rates is resampled first."""
    clip_seconds: float = 1.0
    """Length of the model's input window in seconds."""
    n_fft: int = 256
    """FFT size in samples (32 ms at 8 kHz)."""
    win_length: int = 200
    """Analysis window in samples (25 ms at 8 kHz), centred in the FFT frame."""
    hop_length: int = 80
    """Frame step in samples (10 ms at 8 kHz)."""
    center: bool = True
    """Pad n_fft // 2 samples on both sides so frame t is centred on t * hop."""
    pad_mode: str = "constant"
    """Padding for center=True; only 'constant' (zeros) is supported."""
    power: float = 2.0
    """Exponent of the magnitude spectrum (2 = power)."""
    n_mels: int = 40
    """Number of mel bands."""
    fmin: float = 20.0
    """Lowest mel band edge in Hz."""
    fmax: float = 4000.0
    """Highest mel band edge in Hz (at most sample_rate / 2)."""
    db_ref: float = 1.0
    """Reference power for dB: fixed, so a frame depends only on its samples."""
    db_amin: float = 1e-8
    """Power floor before the logarithm (-80 dB): below it, float32 rounding
    noise of the spectrum would decide the value."""
    top_db: float | None = 50.0
    """Clamp, in dB, below the loudest mel bin of the utterance; None keeps frames independent.
    Without it a clip's quietest bins (digital silence at -80 dB, or a microphone's floor at
    -50 dBFS) decide much of its per-clip normalised MFCCs."""
    n_mfcc: int = 20
    """Cepstral coefficients kept."""
    dct_type: int = 2
    """DCT type; only 2 is supported."""
    dct_norm: str | None = "ortho"
    """DCT normalisation: 'ortho' or None."""
    lifter: float = 0.0
    """Sinusoidal liftering coefficient; 0 disables it."""
    trim_db: float | None = 30.0
    """Trim leading and trailing frames quieter than this many dB below the
    loudest frame; None keeps the whole clip."""
    cmvn: bool = True
    """Normalise each coefficient to zero mean and unit variance over the clip's
    speech frames; the frames outside the speech are zero."""
    raw_mean: tuple[float, ...] | None = None
    """With raw_std: the input gains n_mfcc more columns, the MFCCs before per-clip
    normalisation standardised by these fixed per-coefficient constants, so a model
    sees the level and colour of the speech beside its shape. None (the default)
    leaves them out."""
    raw_std: tuple[float, ...] | None = None
    """Per-coefficient scale of the raw columns (see raw_mean), each positive."""
    cmn_scale: tuple[float, ...] | None = None
    """With cmvn: divide each coefficient, after its clip mean is taken away, by this fixed
    per-coefficient scale (n_mfcc positive values) instead of by the clip's own standard
    deviation, so a clip keeps how much each coefficient moves. None (the default) divides
    by the clip's deviation."""
    pcen_seconds: float | None = None
    """Time constant, in seconds, of per-channel energy normalisation (``features.pcen``) in
    place of the dB scale: each mel band divided by its own recent average, then
    root-compressed, before the DCT. None (the default) keeps dB (and top_db)."""

    def __post_init__(self) -> None:
        for name in _OPTIONAL_FIELDS:  # JSON gives lists; keep tuples so the object stays hashable
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = self._type_problems()
        if problems:
            raise ConfigError("; ".join(problems))
        if self.sample_rate < 1000 or self.sample_rate > 192000:
            problems.append(f"sample_rate {self.sample_rate} Hz out of range")
        if not 0.1 <= self.clip_seconds <= 10:
            problems.append(f"clip_seconds {self.clip_seconds} out of range")
        if not 0 < self.win_length <= self.n_fft:
            problems.append("win_length must be in 1..n_fft")
        if self.hop_length < 1:
            problems.append("hop_length must be positive")
        if self.pad_mode != "constant":
            problems.append(f"pad_mode {self.pad_mode!r} unsupported (only 'constant')")
        if self.dct_type != 2:
            problems.append(f"dct_type {self.dct_type} unsupported (only 2)")
        if self.dct_norm not in ("ortho", None):
            problems.append(f"dct_norm {self.dct_norm!r} unsupported")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append("need 0 <= fmin < fmax <= sample_rate / 2")
        if not 0 < self.n_mfcc <= self.n_mels:
            problems.append("need 0 < n_mfcc <= n_mels")
        if self.power <= 0 or self.db_amin <= 0 or self.db_ref <= 0:
            problems.append("power, db_amin and db_ref must be positive")
        if self.n_fft > MAX_N_FFT or self.n_mels > MAX_N_MELS:
            problems.append(f"need n_fft <= {MAX_N_FFT} and n_mels <= {MAX_N_MELS}")
        if self.n_frames > MAX_FRAMES:
            problems.append(f"more than {MAX_FRAMES} frames per clip (hop_length too small)")
        if (self.raw_mean is None) != (self.raw_std is None):
            problems.append("raw_mean and raw_std go together")
        elif self.raw_mean is not None and self.raw_std is not None:
            if not len(self.raw_mean) == len(self.raw_std) == self.n_mfcc:
                problems.append(f"raw_mean and raw_std need n_mfcc ({self.n_mfcc}) values each")
            if any(v <= 0 for v in self.raw_std):
                problems.append("raw_std values must be positive")
        if self.cmn_scale is not None:
            if not self.cmvn:
                problems.append("cmn_scale needs cmvn")
            if len(self.cmn_scale) != self.n_mfcc or any(v <= 0 for v in self.cmn_scale):
                problems.append(f"cmn_scale needs n_mfcc ({self.n_mfcc}) positive values")
        if self.pcen_seconds is not None and not 0 < self.pcen_seconds <= 10:
            problems.append("pcen_seconds must be in (0, 10]")
        if problems:
            raise ConfigError("; ".join(problems))

    def _type_problems(self) -> list[str]:
        """One message per field whose value has the wrong type, or is NaN or infinite."""
        problems = []
        for field in dataclasses.fields(self):
            value, kinds = getattr(self, field.name), _FIELD_TYPES[field.name]
            if value is None and None in kinds:
                continue
            if kinds[0] is tuple:
                ok = isinstance(value, tuple) and all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in value
                )
                if not ok:
                    problems.append(f"{field.name} must be a list of finite numbers or null, not {value!r}")
                continue
            if kinds[0] is bool:
                ok = isinstance(value, bool)
            elif kinds[0] is int:
                ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            elif kinds[0] is float:
                ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            else:
                ok = isinstance(value, kinds[0])
            if not ok:
                names = " or ".join("null" if k is None else k.__name__ for k in kinds)
                problems.append(
                    f"{field.name} must be a finite {names}, not {value!r}"
                    if kinds[0] is float
                    else f"{field.name} must be {names}, not {value!r}"
                )
        return problems

    @property
    def clip_samples(self) -> int:
        """Samples in one model input window."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """Frames in one model input window (centre-padded framing)."""
        return 1 + self.clip_samples // self.hop_length

    @property
    def input_shape(self) -> tuple[int, int]:
        """Shape of the model's feature matrix: (n_frames, n_mfcc), or (n_frames, 2 * n_mfcc) with raw columns."""
        return (self.n_frames, self.n_mfcc * (1 if self.raw_mean is None else 2))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; optional fields left at None are omitted, so adding one keeps old hashes."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if not (k in _OPTIONAL_FIELDS and v is None)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the input of the hash."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureParams":
        if not isinstance(data, dict):
            raise ConfigError("feature configuration must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown feature parameters: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_json(cls, text: str) -> "FeatureParams":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"feature configuration is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("feature configuration must be a JSON object")
        return cls.from_dict(data)

    def stable_hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def librosa_melspectrogram_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``librosa.feature.melspectrogram(y=...)``."""
        return dict(
            sr=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window="hann",
            center=self.center,
            pad_mode=self.pad_mode,
            power=self.power,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=False,
            norm="slaney",
        )

    def librosa_power_to_db_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``librosa.power_to_db``."""
        return dict(ref=self.db_ref, amin=self.db_amin, top_db=self.top_db)

    def librosa_mfcc_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``librosa.feature.mfcc(S=dB_mel, ...)``.

        librosa's ``mfcc(y=...)`` applies ``power_to_db`` with its default
        ``top_db=80`` and no way to change it, so the exact path passes the dB
        mel spectrogram built with the two methods above as ``S``.
        """
        return dict(n_mfcc=self.n_mfcc, dct_type=self.dct_type, norm=self.dct_norm, lifter=self.lifter)


# The type each field must hold (None: the field may be null); checked before any range.
_FIELD_TYPES: dict[str, tuple] = {
    "sample_rate": (int,),
    "clip_seconds": (float,),
    "n_fft": (int,),
    "win_length": (int,),
    "hop_length": (int,),
    "center": (bool,),
    "pad_mode": (str,),
    "power": (float,),
    "n_mels": (int,),
    "fmin": (float,),
    "fmax": (float,),
    "db_ref": (float,),
    "db_amin": (float,),
    "top_db": (float, None),
    "n_mfcc": (int,),
    "dct_type": (int,),
    "dct_norm": (str, None),
    "lifter": (float,),
    "trim_db": (float, None),
    "cmvn": (bool,),
    "raw_mean": (tuple, None),
    "raw_std": (tuple, None),
    "cmn_scale": (tuple, None),
    "pcen_seconds": (float, None),
}
_OPTIONAL_FIELDS = ("raw_mean", "raw_std", "cmn_scale", "pcen_seconds")
"""Fields added after models were shipped: absent from to_dict (and the hash) while None."""
