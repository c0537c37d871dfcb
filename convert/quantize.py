"""Keras model -> TFLite bytes, and the figures that show what quantization cost.

The converter path is ``TFLiteConverter.from_keras_model`` (works with Keras 3
under the pinned TensorFlow for full-integer int8). Nothing it produces is
trusted: ``verify`` runs the converted bytes through the device runtime
(``audiomnist_edge.model.Model``) on the test split and compares them with the
Keras model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from audiomnist_edge.artifact import Artifact
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.model import Model, decision_indices

DIGITS = tuple(str(d) for d in range(10))

log = logging.getLogger(__name__)

QUANTS = ("int8", "float16", "float32")

# Hard floors: a conversion that misses one is refused (no file is written).
MAX_DROP_POINTS = 2.0
MIN_AGREEMENT = 0.97
# Targets: missing one is reported (and recorded in the metadata) but allowed.
TARGET_DROP_POINTS = 0.5
TARGET_AGREEMENT = 0.99
TARGET_INT8_BYTES = 100 * 1024
TARGET_INT8_FRACTION = 0.40


class ConversionError(EdgeError):
    """A conversion that failed or produced a model that misses a hard floor."""


def representative_set(x_train: np.ndarray, n: int = 500, seed: int = 0) -> np.ndarray:
    """Up to ``n`` training matrices, drawn without replacement, as float32.

    Args:
        x_train: training features, shape (n_train, frames, coefficients).
    Returns:
        float32 array of shape (min(n, n_train), frames, coefficients).
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)
    return np.asarray(x_train[np.sort(pick)], dtype=np.float32)


def convert_keras(model: Any, representative: np.ndarray | None, quant: str = "int8") -> bytes:
    """TFLite flatbuffer of a Keras model.

    Args:
        model: a Keras 3 model taking (batch, frames, coefficients) float32 input.
        representative: float32 calibration inputs, shape (n, frames, coefficients);
            needed for int8 only.
        quant: 'int8' (full-integer: int8 input/output, builtin int8 ops only),
            'float16' (float16 weights) or 'float32'.
    """
    import tensorflow as tf

    if quant not in QUANTS:
        raise ConversionError(f"unknown quantization {quant!r} (choose from {', '.join(QUANTS)})")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant == "int8":
        calibration = np.asarray(representative if representative is not None else [], dtype=np.float32)
        if calibration.ndim != 3 or len(calibration) == 0:
            raise ConversionError("int8 needs a non-empty representative set of feature matrices")

        def samples() -> Iterator[list[np.ndarray]]:
            for matrix in calibration:
                yield [matrix[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    chatter = io.StringIO()  # the Keras export prints its signature to stdout
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; report one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"TFLite conversion ({quant}) failed: {first}") from exc
    finally:
        log.debug("converter output: %s", chatter.getvalue())


def runtime_model(content: bytes, params: FeatureParams, labels: list[str],
                  backend: str | None = None, warps: Sequence[float] = (1.0,)) -> Model:
    """The device runtime's Model for bare TFLite bytes (before metadata is embedded), deciding
    over the mel ``warps`` (``Model.utterance_probabilities``)."""
    artifact = Artifact(path=Path("<converted>"), content=content,
                        metadata={"labels": list(labels), "warps": [float(w) for w in warps]}, params=params)
    return Model(artifact, backend=backend)


def runtime_probabilities(model: Model, x: np.ndarray,
                          advance: Callable[[int], Any] | None = None) -> np.ndarray:
    """Probabilities from the device runtime, shape (n, n_labels), for x of shape (n, frames, coeffs).

    ``advance(1)`` is called after each row (e.g. a progress bar's ``update``).
    """
    rows = []
    for matrix in x:
        rows.append(model.probabilities(matrix))
        if advance:
            advance(1)
    return np.stack(rows)


def device_probabilities(model: Model, features_at: Callable[[float], np.ndarray],
                         advance: Callable[[int], Any] | None = None,
                         unwarped: np.ndarray | None = None) -> np.ndarray:
    """Probabilities as ``Model.classify`` decides them, shape (n, n_labels): the mean over
    ``model.warps`` of ``runtime_probabilities(model, features_at(w))``, where ``features_at(w)``
    gives the clips' features at mel warp w, shape (n, frames, coeffs). ``unwarped``: the
    probabilities at warp 1 when the caller has them already (not computed again)."""
    return np.mean([unwarped if w == 1.0 and unwarped is not None
                    else runtime_probabilities(model, features_at(w), advance) for w in model.warps], axis=0)


def tensor_quantization(details: dict[str, Any]) -> dict[str, Any]:
    """JSON description of an interpreter tensor: dtype, scale, zero point, shape."""
    scale, zero_point = details["quantization"]
    return {"dtype": np.dtype(details["dtype"]).name, "scale": float(scale),
            "zero_point": int(zero_point), "shape": [int(n) for n in details["shape"]]}


def verify(keras_probs: np.ndarray, tflite_probs: np.ndarray, y_test: np.ndarray,
           labels: Sequence[str] = DIGITS) -> dict[str, Any]:
    """Accuracy of both models, their agreement and the accuracy drop, deciding as the runtime does.

    Args:
        keras_probs: Keras model outputs, shape (n, n_labels).
        tflite_probs: converted model outputs through the runtime, shape (n, n_labels).
        y_test: true label indices, shape (n,).
        labels: the model's labels (``decision_indices`` decides an ``unknown`` label).
    Returns:
        keras_accuracy and tflite_accuracy (fractions), agreement (fraction of
        identical decisions), drop_points (percentage points lost), n_test.
    """
    keras_top, tflite_top = decision_indices(keras_probs, labels), decision_indices(tflite_probs, labels)
    y = np.asarray(y_test)
    keras_accuracy = float(np.mean(keras_top == y))
    tflite_accuracy = float(np.mean(tflite_top == y))
    return {
        "keras_accuracy": round(keras_accuracy, 6),
        "tflite_accuracy": round(tflite_accuracy, 6),
        "agreement": round(float(np.mean(keras_top == tflite_top)), 6),
        "drop_points": round(100 * (keras_accuracy - tflite_accuracy), 4),
        "n_test": int(len(y)),
    }


def check_figures(figures: dict[str, Any], sizes: dict[str, int], quant: str) -> dict[str, bool]:
    """Which targets are met; raises ConversionError when a hard floor is missed.

    Args:
        figures: as ``verify`` returns.
        sizes: TFLite file sizes in bytes by quantization (must hold quant and 'float32').
        quant: the quantization of the model being shipped.
    """
    if figures["drop_points"] > MAX_DROP_POINTS:
        raise ConversionError(
            f"{quant} model is {figures['drop_points']:.2f} points less accurate than Keras "
            f"({100 * figures['tflite_accuracy']:.2f}% vs {100 * figures['keras_accuracy']:.2f}%; "
            f"the floor is {MAX_DROP_POINTS}); no model written")
    if figures["agreement"] < MIN_AGREEMENT:
        raise ConversionError(
            f"{quant} model agrees with Keras on only {100 * figures['agreement']:.2f}% of test "
            f"clips (the floor is {100 * MIN_AGREEMENT:.0f}%); no model written")
    targets = {
        "accuracy_within_0.5_points": figures["drop_points"] <= TARGET_DROP_POINTS,
        "agreement_99": figures["agreement"] >= TARGET_AGREEMENT,
    }
    if quant == "int8":
        targets["int8_under_100kb"] = sizes["int8"] < TARGET_INT8_BYTES
        targets["int8_at_most_40pct_of_float32"] = sizes["int8"] <= TARGET_INT8_FRACTION * sizes["float32"]
    return targets
