"""Distillation: training targets softened by the mean prediction of teacher models.

A teacher is an earlier run trained on the *same* split, so it never heard the
student's test speakers: for speaker fold K its ``RUN/folds/fold-K.tflite``
(``evaluate RUN --folds``), for the run's own split its ``RUN/model-int8.tflite``
(``convert RUN``). Teachers score the student's training matrices through the
device runtime; every check that could leak a test speaker into the targets
(split, fold, held-out speakers, features, labels) refuses in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import FeatureParams
from ..convert.quantize import runtime_probabilities
from ..errors import EdgeError
from ..model import Model
from .datasets import Split


class TeacherError(EdgeError):
    """A teacher that cannot be used for this split without leaking, or that does not fit."""


def teacher_file(run_dir: str | Path, split: Split) -> Path:
    """The teacher run's int8 model trained on ``split``: fold K's model or the run's own."""
    run_dir = Path(run_dir)
    if split.name == "speaker":
        return run_dir / "folds" / f"fold-{split.fold}.tflite"
    return run_dir / "model-int8.tflite"


def load_teacher(run_dir: str | Path, split: Split, params: FeatureParams, labels: Sequence[str]) -> Model:
    """The checked teacher model of ``run_dir`` for ``split``; TeacherError when it would not do."""
    path = teacher_file(run_dir, split)
    if not path.is_file():
        made_by = "evaluate RUN --folds" if split.name == "speaker" else "convert RUN"
        raise TeacherError(f"teacher {run_dir}: no {path.name} (made by `{made_by}`)")
    model = Model.load(path)
    training = model.metadata.get("training") or {}
    same_split = training.get("split") == split.name and training.get("fold") == split.fold
    held_out = training.get("test_speakers")
    if not same_split or (held_out is not None and set(held_out) != set(split.test_speakers)):
        raise TeacherError(f"teacher {path}: trained on split {training.get('split')} fold {training.get('fold')} "
                           f"holding out {held_out}, not this split's {sorted(split.test_speakers)}")
    if model.params != params:
        raise TeacherError(f"teacher {path}: its features differ from the student's")
    if list(model.labels) != list(labels):
        raise TeacherError(f"teacher {path}: labels {model.labels} differ from the student's {list(labels)}")
    return model


def soft_targets(x: np.ndarray, y: np.ndarray, teachers: Sequence[Model], weight: float,
                 advance=None) -> np.ndarray:
    """Training targets (1 - weight) * one-hot(y) + weight * mean teacher probabilities.

    Args:
        x: training matrices, shape (n, frames, coefficients).
        y: their label indices, shape (n,).
        teachers: models with the student's labels (``load_teacher``).
        weight: share of the teachers in each target, 0-1.
        advance: called with 1 after each teacher's row (a progress bar's ``update``).
    Returns float32 rows summing to 1, shape (n, n_labels).
    """
    mean = np.mean([runtime_probabilities(teacher, x, advance) for teacher in teachers], axis=0, dtype=np.float64)
    mean /= np.maximum(mean.sum(axis=1, keepdims=True), 1e-12)  # int8 outputs sum to 1 only roughly
    onehot = np.eye(mean.shape[1])[np.asarray(y, dtype=np.int64)]
    return ((1.0 - weight) * onehot + weight * mean).astype(np.float32)
