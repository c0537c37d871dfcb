"""SpecAugment-style masks: deterministic per seed, bounded spans, never the input itself."""

from __future__ import annotations

import numpy as np
from audiomnist_edge.train.masking import MaskParams, mask_features


def _runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D bool array."""
    edges = np.diff(np.r_[0, flags.astype(int), 0])
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_masks_are_whole_frames_and_coefficients_within_their_widths() -> None:
    params = MaskParams(time_masks=2, max_frames=10, coef_masks=2, max_coefs=3)
    x = np.random.default_rng(1).uniform(1, 2, (200, 101, 20)).astype(np.float32)
    masked = mask_features(x, np.random.default_rng(0), params)
    assert masked.shape == x.shape and masked.dtype == np.float32
    assert np.all(x >= 1)  # the input is left alone
    zero = masked == 0
    assert np.array_equal(masked[~zero], x[~zero])
    some_time, some_coef = 0, 0
    for z in zero:
        frames, coefs = z.all(axis=1), z.all(axis=0)
        assert np.array_equal(z, frames[:, None] | coefs[None, :])  # nothing but whole rows and columns
        # two spans may touch or overlap: together at most twice the widest
        assert len(_runs(frames)) <= 2 and sum(_runs(frames)) <= 20
        assert len(_runs(coefs)) <= 2 and sum(_runs(coefs)) <= 6
        some_time += frames.any()
        some_coef += coefs.any()
    assert some_time > 150 and some_coef > 150  # widths are drawn from 0..max, so a few draw none


def test_masks_depend_only_on_the_seed() -> None:
    x = np.ones((8, 101, 20), dtype=np.float32)
    a = mask_features(x, np.random.default_rng(3))
    assert np.array_equal(a, mask_features(x, np.random.default_rng(3)))
    assert not np.array_equal(a, mask_features(x, np.random.default_rng(4)))
    assert np.array_equal(mask_features(x, np.random.default_rng(3), MaskParams(0, 10, 0, 3)), x)
