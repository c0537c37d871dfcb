"""Batch-time transforms of feature matrices: SpecAugment-style masks and mixup.

The model's input is the runtime's per-clip normalised MFCC matrix, shape
(frames, coefficients); after per-clip CMVN a masked value of 0 is the clip's
own mean. Mixup (Zhang et al. 2018) blends each example and its one-hot label
with another example of the batch. Both are drawn afresh for every training
batch and are training-time transforms only: the model and the device path
never see them.
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


def mix_pairs(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float,
              pure: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mixup: each example of ``x`` (n, ...) and row of ``y`` (n, classes) blended with another of the batch.

    Weights are drawn per example from Beta(alpha, alpha) and folded to at least
    0.5, so every mixed example keeps its own label as the larger share.
    Examples flagged in ``pure`` (bool, shape (n,)) are neither mixed nor mixed
    into others (the unknown class: a digit blended into a non-digit word is
    part digit, and the class would learn to doubt itself).
    """
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    partner = rng.permutation(len(x))
    if pure is not None:
        lam[pure | pure[partner]] = 1.0
    lx = lam.reshape(-1, *([1] * (x.ndim - 1)))
    return lx * x + (1 - lx) * x[partner], lam[:, None] * y + (1 - lam[:, None]) * y[partner]


def augmented_batches(x: np.ndarray, y_onehot: np.ndarray, batch_size: int, params: MaskParams | None, seed: int,
                   mixup: float = 0.0, pure: np.ndarray | None = None):
    """A Keras ``PyDataset``: shuffled batches of (x, y), masked (``params``) and mixed (``mixup`` > 0:
    the Beta parameter of ``mix_pairs``; examples flagged in ``pure``, bool (n,), left unmixed); new order, masks
    and pairs every epoch."""
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng([seed, 7])
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            pick = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            xb, yb = x[pick].astype(np.float32), y_onehot[pick].astype(np.float32)
            if params is not None:
                xb = mask_features(xb, self.rng, params)
            if mixup > 0:
                xb, yb = mix_pairs(xb, yb, self.rng, mixup, None if pure is None else pure[pick])
            return xb, yb

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return AugmentedBatches()
