"""Soft targets of distillation (train/distill.py); teacher checks run in test_fold_benchmarks.py."""

from __future__ import annotations

import numpy as np
from audiomnist_edge.train.distill import soft_targets


def test_soft_targets_blend_the_one_hot_label_with_the_teachers_mean() -> None:
    class Teacher:
        labels = ["0", "1", "2"]

        def __init__(self, p):
            self.p = np.asarray(p, dtype=np.float32)

        def probabilities(self, matrix):
            return self.p

    x, y = np.zeros((2, 4, 3)), np.array([0, 2])
    teachers = [Teacher([0.6, 0.4, 0.0]), Teacher([0.2, 0.4, 0.4])]
    np.testing.assert_allclose(soft_targets(x, y, teachers, 0.0), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(soft_targets(x, y, teachers, 1.0), [[0.4, 0.4, 0.2]] * 2, atol=1e-6)
    half = soft_targets(x, y, teachers, 0.5)
    np.testing.assert_allclose(half, [[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]], atol=1e-6)
    assert half.dtype == np.float32 and np.allclose(half.sum(axis=1), 1)
