"""Rational-ratio polyphase resampling with a Kaiser-windowed sinc, in NumPy.

One implementation serves files and live streams: ``resample`` is a
``Resampler`` fed the whole signal at once, so feeding a stream in blocks of
any size gives the same samples as resampling the file.
"""

from __future__ import annotations

import functools
import math

import numpy as np

ZERO_CROSSINGS = 16  # filter half-length, in zero crossings of the narrower band
KAISER_BETA = 8.6    # about 90 dB stop-band attenuation
ROLLOFF = 0.94       # cutoff as a fraction of the lower Nyquist frequency


@functools.lru_cache(maxsize=16)
def _phase_filters(up: int, down: int) -> tuple[np.ndarray, int]:
    """Filter taps per output phase, shape (up, 2 * half), and half (in input samples).

    Output sample n sits at input time t = n * down / up. With base = floor(t)
    and phase p = n * down mod up it is sum_j x[base - half + 1 + j] * taps[p, j].
    """
    cutoff = ROLLOFF * min(1.0, up / down)  # in units of the input Nyquist
    half = int(math.ceil(ZERO_CROSSINGS / cutoff))
    j = np.arange(2 * half)
    delta = (np.arange(up)[:, None] / up) + (half - 1) - j[None, :]  # t - k
    taps = cutoff * np.sinc(cutoff * delta)
    taps *= np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (delta / half) ** 2, 0, 1))) / np.i0(KAISER_BETA)
    taps.flags.writeable = False
    return taps, half


class Resampler:
    """Streaming resampler from ``rate_in`` to ``rate_out`` (Hz, integers).

    ``process(block)`` returns every output sample whose filter support is
    already available; ``flush()`` returns the rest, treating the stream as
    followed by silence. The output has ceil(len * rate_out / rate_in) samples.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("sample rates must be positive")
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.taps, self.half = _phase_filters(self.up, self.down)
        # Input buffer starts with `half` zeros so the first outputs see silence before t=0.
        self._buffer = np.zeros(self.half, dtype=np.float64)
        self._offset = -self.half  # input index of self._buffer[0]
        self._n_out = 0            # next output index
        self._n_in = 0             # input samples received

    def _emit(self, last_input: int) -> np.ndarray:
        """Outputs whose taps reach at most input index ``last_input``.

        Outputs n, n + up, n + 2 up, ... share a phase and step ``down`` input
        samples apart, so each phase is one matrix-vector product over a
        strided (zero-copy) view of the buffer.
        """
        # base(n) + half <= last_input  <=>  n * down // up <= last_input - half
        limit = (last_input - self.half) * self.up // self.down
        count = limit + 1 - self._n_out
        if count <= 0:
            return np.zeros(0)
        out = np.empty(count)
        step = self._buffer.strides[0]
        for i in range(min(self.up, count)):
            n = self._n_out + i
            start = n * self.down // self.up - self.half + 1 - self._offset
            rows = len(range(i, count, self.up))
            windows = np.lib.stride_tricks.as_strided(
                self._buffer[start:], (rows, 2 * self.half), (self.down * step, step), writeable=False)
            out[i::self.up] = windows @ self.taps[n * self.down % self.up]
        self._n_out += count
        keep_from = (self._n_out * self.down // self.up) - self.half + 1 - self._offset
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._offset += keep_from
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next block of mono samples; returns float32 samples."""
        block = np.asarray(block, dtype=np.float64).reshape(-1)
        if self.up == self.down:
            return block.astype(np.float32)
        self._buffer = np.concatenate([self._buffer, block])
        self._n_in += len(block)
        return self._emit(self._offset + len(self._buffer) - 1).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The remaining output samples, as if the input continued with silence."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self.up // self.down)
        self._buffer = np.concatenate([self._buffer, np.zeros(2 * self.half + 1)])
        out = self._emit(self._offset + len(self._buffer) - 1)
        missing = total - (self._n_out - len(out))
        return out[:max(0, missing)].astype(np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a whole 1-D signal from rate_in to rate_out Hz; float32 output."""
    if rate_in == rate_out:
        return np.asarray(samples, dtype=np.float32)
    resampler = Resampler(rate_in, rate_out)
    return np.concatenate([resampler.process(samples), resampler.flush()])
