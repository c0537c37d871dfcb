"""SpecAugment-style masks on feature matrices, drawn afresh for every training batch.

The model's input is the runtime's per-clip normalised MFCC matrix, shape
(frames, coefficients); after per-clip CMVN a masked value of 0 is the clip's
own mean. Masks are a training-time transform only: the model and the device
path never see them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskParams:
    """How many spans to mask per example and their widest extent."""

    time_masks: int = 2
    max_frames: int = 10
    """Widest time mask in frames (10 ms each at the default hop)."""
    coef_masks: int = 1
    max_coefs: int = 3
    """Widest mask over cepstral coefficients."""


def mask_features(x: np.ndarray, rng: np.random.Generator, params: MaskParams = MaskParams()) -> np.ndarray:
    """A copy of ``x`` (n, frames, coefficients) with random spans of frames and coefficients set to 0.

    Each example gets ``time_masks`` spans of 0..max_frames frames and
    ``coef_masks`` spans of 0..max_coefs coefficients, positions uniform.
    """
    out = np.array(x, dtype=np.float32, copy=True)
    n, frames, coefs = out.shape
    for count, widest, axis_len, axis in ((params.time_masks, params.max_frames, frames, 1),
                                          (params.coef_masks, params.max_coefs, coefs, 2)):
        for _ in range(count):
            width = rng.integers(0, min(widest, axis_len) + 1, size=n)
            start = rng.integers(0, axis_len - width + 1)
            pos = np.arange(axis_len)
            hit = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + width)[:, None])
            if axis == 1:
                out[hit] = 0.0
            else:
                out.transpose(0, 2, 1)[hit] = 0.0
    return out


def masked_batches(x: np.ndarray, y_onehot: np.ndarray, batch_size: int, params: MaskParams, seed: int):
    """A Keras ``PyDataset``: shuffled batches of (masked x, y), new order and masks every epoch."""
    import keras

    class MaskedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng([seed, 7])
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            pick = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            return mask_features(x[pick], self.rng, params), y_onehot[pick]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return MaskedBatches()
