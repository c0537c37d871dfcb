"""SpecAugment-style masks and mixup: deterministic per seed, bounded, never the input itself."""

from __future__ import annotations

import numpy as np
import pytest
from audiomnist_edge.train.masking import MaskParams, augmented_batches, mask_features, mix_pairs


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


def test_mixup_blends_pairs_and_keeps_each_example_its_own_label() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 101, 20)).astype(np.float32)
    labels = rng.integers(0, 11, 256)
    y = np.eye(11, dtype=np.float32)[labels]
    mixed_x, mixed_y = mix_pairs(x, y, np.random.default_rng(5), alpha=0.4)
    assert mixed_x.shape == x.shape and mixed_y.shape == y.shape
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    own = mixed_y[np.arange(256), labels]
    assert np.all(own >= 0.5 - 1e-6) and np.all(mixed_y.argmax(axis=1)[own > 0.5 + 1e-6] == labels[own > 0.5 + 1e-6])
    assert 0.6 < own.mean() < 0.95  # Beta(0.4, 0.4) folded to >= 0.5: mostly near-pure, some halfway
    # each example is its own share of itself plus the rest of one other example of the batch
    weight = own.reshape(-1, 1, 1)
    residue = (mixed_x - weight * x) / np.maximum(1 - weight, 1e-6)
    partners = [int(np.argmin(np.abs(x - r).reshape(256, -1).max(axis=1))) for r in residue[own < 0.99]]
    assert np.all(np.abs(residue[own < 0.99] - x[partners]).max(axis=(1, 2)) < 1e-3)
    assert np.array_equal(mix_pairs(x, y, np.random.default_rng(5), 0.4)[0], mixed_x)
    assert not np.array_equal(mix_pairs(x, y, np.random.default_rng(6), 0.4)[0], mixed_x)


def test_mixup_leaves_the_pure_class_alone_both_ways() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 101, 20)).astype(np.float32)
    labels = rng.integers(0, 11, 200)
    y = np.eye(11, dtype=np.float32)[labels]
    pure = labels == 10
    mixed_x, mixed_y = mix_pairs(x, y, np.random.default_rng(2), alpha=0.4, pure=pure)
    assert np.array_equal(mixed_x[pure], x[pure]) and np.array_equal(mixed_y[pure], y[pure])
    assert np.all(mixed_y[~pure][:, 10] == 0)  # no unknown share blended into a digit
    assert (np.abs(mixed_x[~pure] - x[~pure]).max(axis=(1, 2)) > 1e-3).mean() > 0.5  # digits still mixed



def test_augmented_batches_leave_flagged_examples_unmixed_whatever_their_targets() -> None:
    pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 101, 20)).astype(np.float32)
    y = rng.dirichlet(np.ones(11), size=64).astype(np.float32)  # soft targets: no row is one-hot
    pure = np.arange(64) % 4 == 0
    batches = augmented_batches(x, y, 16, None, seed=0, mixup=0.4, pure=pure)
    seen = 0
    for k in range(len(batches)):
        xb, yb = batches[k]
        for row_x, row_y in zip(xb, yb):
            match = np.flatnonzero(np.all(x == row_x, axis=(1, 2)))
            if len(match):
                seen += int(pure[match[0]])
                np.testing.assert_array_equal(row_y, y[match[0]])
    assert seen == pure.sum()  # every flagged example came through as it was
