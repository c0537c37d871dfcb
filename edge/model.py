"""A loaded model: checked artifact + interpreter, from samples to a digit.

model = Model.load()                      # the packaged default model
prediction = model.classify(samples, 16000)
prediction.label, prediction.probability, prediction.top

A model may name mel-filterbank warps in its metadata (``convert --warps``): its
decision is then the mean of its probabilities over those views of the utterance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifact import Artifact, ModelError, read_artifact
from .features import clip_features
from .interpreter import create_interpreter
from .resample import resample

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.tflite"
UNKNOWN_AT = 0.8
"""A label that is not a digit (a model's ``unknown``) is decided when it has at least this
probability, even below 0.5 where a digit may be more probable; else the most probable digit is."""


def decision_indices(probabilities: np.ndarray, labels: Sequence[str], unknown_at: float = UNKNOWN_AT) -> np.ndarray:
    """The decided label index of each row of ``probabilities``, shape (n, n_labels) -> (n,).

    The most probable label that is not a digit (a model's ``unknown``) if its
    probability is at least ``unknown_at``, else the most probable digit; ties
    go to the label listed first. Below 0.5 the rule rejects utterances whose
    best label is a digit too: a stricter gate than ``min_confidence`` alone. A
    model whose labels are all digits decides by its most probable label alone.
    """
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float32))
    is_digit = np.array([label.isdigit() for label in labels])
    if is_digit.all():
        return np.argmax(p, axis=1)  # the first of equal maxima, as a stable sort would rank them
    best_digit = np.argmax(np.where(is_digit, p, -np.inf), axis=1)
    best_other = np.argmax(np.where(is_digit, -np.inf, p), axis=1)
    return np.where(p[np.arange(len(p)), best_other] >= unknown_at, best_other, best_digit)


def probe_signal(sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """A fixed test utterance, float32 shape (seconds * rate,): a 200 Hz buzz with harmonics
    in the middle half, quiet noise around it."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    tone = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 8) if 200 * k < sample_rate / 2)
    envelope = np.zeros(n)
    envelope[n // 4 : n // 4 + n // 2] = np.hanning(n // 2)
    noise = np.random.default_rng(0).standard_normal(n) * 1e-3
    return (0.3 * envelope * tone / 2 + noise).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """A decision: the best label, its probability, and the top-k (label, p) pairs."""

    label: str
    probability: float
    top: list[tuple[str, float]]


class Model:
    """A checked model artifact bound to an interpreter backend."""

    def __init__(self, artifact: Artifact, backend: str | None = None, num_threads: int = 1) -> None:
        self.artifact = artifact
        self.params = artifact.params
        self.labels = artifact.labels
        self.warps = artifact.warps
        self._interpreter, self.backend = create_interpreter(artifact.content, backend, num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        expected = int(np.prod(self.params.input_shape))
        if int(np.prod(self._input["shape"])) != expected:
            raise ModelError(
                f"{artifact.path}: input shape {[int(n) for n in self._input['shape']]} does not "
                f"fit the feature configuration {list(self.params.input_shape)}"
            )
        if int(np.prod(self._output["shape"])) != len(self.labels):
            raise ModelError(
                f"{artifact.path}: {int(np.prod(self._output['shape']))} outputs for {len(self.labels)} labels"
            )

    @classmethod
    def load(cls, path: str | Path | None = None, backend: str | None = None, num_threads: int = 1) -> "Model":
        """Load and check a model file (the packaged default model when path is None)."""
        target = Path(path) if path is not None else DEFAULT_MODEL
        if path is None and not target.exists():
            raise ModelError(f"no default model packaged at {target}; pass --model")
        artifact = read_artifact(target)
        model = cls(artifact, backend, num_threads)
        log.debug(
            "loaded %s (%d bytes) with %s %s", target, len(artifact.content), model.backend.name, model.backend.version
        )
        return model

    @property
    def path(self) -> Path:
        return self.artifact.path

    @property
    def metadata(self) -> dict[str, Any]:
        return self.artifact.metadata

    @property
    def input_details(self) -> dict[str, Any]:
        return self._input

    @property
    def output_details(self) -> dict[str, Any]:
        return self._output

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_labels,), for one feature matrix.

        Args:
            features: float32 array of shape params.input_shape, as clip_features returns.
        """
        x = np.asarray(features, dtype=np.float32).reshape(self._input["shape"])
        scale, zero_point = self._input["quantization"]
        if self._input["dtype"] != np.float32:
            info = np.iinfo(self._input["dtype"])
            x = np.clip(np.round(x / scale) + zero_point, info.min, info.max)
        self._interpreter.set_tensor(self._input["index"], x.astype(self._input["dtype"]))
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(self._output["index"]).reshape(-1)
        scale, zero_point = self._output["quantization"]
        if self._output["dtype"] != np.float32:
            y = (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def utterance_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_labels,), of one utterance: the mean over the model's
        mel warps (``self.warps``, from its metadata) of ``probabilities(clip_features(...))``.

        Args:
            samples: float32 mono samples at params.sample_rate, shape (n,).
        """
        views = [self.probabilities(clip_features(samples, self.params, warp=w)) for w in self.warps]
        return np.mean(views, axis=0) if len(views) > 1 else views[0]

    def decide(self, probabilities: np.ndarray, top_k: int = 3, unknown_at: float = UNKNOWN_AT) -> Prediction:
        """The Prediction for a probability vector, shape (n_labels,): ``decision_indices``'s label.

        ``top`` ranks the labels by probability; ties go to the label listed first
        (the lowest digit): a stable sort of the negated probabilities, so every
        machine ranks equal int8 outputs alike.
        """
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(-1)
        order = np.argsort(-probabilities, kind="stable")[: max(1, top_k)]
        top = [(self.labels[i], float(probabilities[i])) for i in order]
        chosen = int(decision_indices(probabilities, self.labels, unknown_at)[0])
        return Prediction(label=self.labels[chosen], probability=float(probabilities[chosen]), top=top)

    def self_check(self) -> Prediction:
        """Decide on a probe signal; ModelError unless that works and gives finite probabilities.

        The check `flash` runs before installing or restoring a model, and `info` on load.
        """
        rate = self.params.sample_rate
        try:
            probabilities = self.utterance_probabilities(probe_signal(rate))
            if probabilities.shape != (len(self.labels),) or not np.all(np.isfinite(probabilities)):
                raise ModelError(f"{self.path}: the model gives no finite probabilities on a probe signal")
            return self.decide(probabilities)
        except ModelError:
            raise
        except Exception as exc:  # any failure here means the model cannot run on this runtime
            raise ModelError(f"{self.path}: the model fails on a probe signal ({type(exc).__name__}: {exc})") from None

    def classify(self, samples: np.ndarray, sample_rate: int, top_k: int = 3) -> Prediction:
        """Decide the digit spoken in one utterance.

        Args:
            samples: float32 mono samples in [-1, 1], shape (n,).
            sample_rate: their rate in Hz; resampled to the model's rate if different.
            top_k: how many (label, probability) pairs to return in ``top``.
        """
        samples = resample(samples, sample_rate, self.params.sample_rate)
        return self.decide(self.utterance_probabilities(samples), top_k)
