"""Frame energy for voice activity: pure NumPy, no state.

Energy is measured in the speech band (300-3400 Hz by default) from each
frame's Hann-windowed power spectrum, so hum, rumble and other low-frequency
noise do not count as speech. Levels are in dB relative to a full-scale
signal: a full-scale sine inside the band gives about -3 dB, as its mean
square would.
"""

from __future__ import annotations

import functools

import numpy as np

SILENCE_DB = -120.0  # energy of an all-zero frame, in dB relative to full scale
SPEECH_BAND = (300.0, 3400.0)


@functools.lru_cache(maxsize=16)
def _band_weights(frame: int, rate: int, low: float, high: float) -> tuple[np.ndarray, int]:
    """(per-bin weights, n_fft) turning |rfft|^2 of a windowed frame into band mean square."""
    n_fft = 1 << max(1, (2 * frame - 1).bit_length())  # zero-padded: bins at most rate / (2 frame) apart
    window = _window(frame)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    inside = (freqs >= low) & (freqs <= min(high, rate / 2))
    one_sided = np.where((freqs > 0) & (freqs < rate / 2), 2.0, 1.0)
    weights = inside * one_sided / (n_fft * np.sum(window**2))
    weights.flags.writeable = False
    return weights, n_fft


@functools.lru_cache(maxsize=16)
def _window(frame: int) -> np.ndarray:
    window = np.hanning(frame + 2)[1:-1]
    window.flags.writeable = False
    return window


def band_energy_db(frames: np.ndarray, rate: int, band: tuple[float, float] | None = SPEECH_BAND) -> np.ndarray:
    """Energy of each row of a (n, frame) array in dB re full scale; shape (n,).

    Args:
        frames: float samples, one frame per row.
        rate: sample rate in Hz.
        band: (low, high) Hz to measure in; None for the whole band (DC removed).
    """
    if band is None:
        centred = frames - frames.mean(axis=1, keepdims=True)
        power = np.mean(np.square(centred, dtype=np.float64), axis=1)
    else:
        weights, n_fft = _band_weights(frames.shape[1], int(rate), float(band[0]), float(band[1]))
        spectrum = np.fft.rfft(frames * _window(frames.shape[1]), n_fft, axis=1)
        power = (np.abs(spectrum) ** 2) @ weights
    return 10.0 * np.log10(np.maximum(power, 10.0 ** (SILENCE_DB / 10.0)))


WEBRTC_RATES = (8000, 16000, 32000, 48000)
WEBRTC_WARMUP = 0.08  # seconds
WEBRTC_HINT = "pip install 'audiomnist-edge[vad]'"


class WebRtcLevels:
    """WebRTC's voice-activity decision per 10/20/30 ms frame, as levels the gate understands.

    A speech frame gets 0 dB and any other SILENCE_DB, so the energy gate's
    thresholds (relative to a floor at SILENCE_DB, or absolute) turn into the
    WebRTC decision. Needs the ``vad`` extra (webrtcvad-wheels).

    Its first WEBRTC_WARMUP seconds count as non-speech: the classifier calls them speech
    whatever they hold while it settles (measured on white noise from -70 to -40 dBFS).

    Args:
        rate: sample rate in Hz (8, 16, 32 or 48 kHz).
        aggressiveness: 0 (keeps most) to 3 (rejects most non-speech).
    """

    def __init__(self, rate: int, aggressiveness: int = 2) -> None:
        try:
            import webrtcvad
        except ImportError:
            from .errors import EdgeError

            raise EdgeError(f"--vad webrtc needs the vad extra: {WEBRTC_HINT}") from None
        if rate not in WEBRTC_RATES:
            raise ValueError(f"WebRTC VAD works at {', '.join(map(str, WEBRTC_RATES))} Hz, not {rate}")
        self.rate = rate
        self._vad = webrtcvad.Vad(aggressiveness)
        self._warmup = int(round(WEBRTC_WARMUP * rate))  # samples still to be ignored

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Levels in dB, shape (n,), of an (n, frame) float array (frames in stream order)."""
        pcm = np.clip(np.round(frames * 32768), -32768, 32767).astype("<i2")
        speech = np.array([self._vad.is_speech(row.tobytes(), self.rate) for row in pcm], dtype=bool)
        settling = min(len(speech), -(-self._warmup // frames.shape[1]))  # frames that start in the warm-up
        speech[:settling] = False
        self._warmup = max(0, self._warmup - len(speech) * frames.shape[1])
        return np.where(speech, 0.0, SILENCE_DB)
