"""The int8 TFLite model against the float32 TFLite model and the Keras model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from audiomnist_edge.artifact import metadata_span, parse_artifact
from audiomnist_edge.model import Model

from .timing import Tick, ratio, spread_ms, time_over_clips

OURS = "int8_tflite"


def load_keras(run_dir: Path) -> Any:
    """The run folder's model.keras, without optimiser state."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras.models.load_model(run_dir / "model.keras", compile=False)


def float32_model(int8: Model, keras_model: Any, float32_path: Path | None) -> Model:
    """The float32 TFLite model as a runtime Model: from ``float32_path`` if given, else
    converted from the Keras model; the int8 model's metadata is added when it has none."""
    import tensorflow as tf

    from audiomnist_edge.convert.metadata import embed_metadata

    if float32_path is not None:
        content, path = float32_path.read_bytes(), float32_path
    else:
        content = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
        path = Path("float32 (converted from model.keras)")
    if metadata_span(content) is None:
        content = embed_metadata(content, int8.metadata)
    return Model(parse_artifact(content, path), int8.backend.name)


def compare(features: list[np.ndarray], int8: Model, float32: Model, keras_model: Any,
            rounds: int, tick: Tick = lambda n: None) -> dict[str, Any]:
    """Per-clip inference time (batch of one) of each model and each one's ratio to int8."""
    actions: dict[str, Callable[[np.ndarray], Any]] = {
        OURS: int8.probabilities,
        "float32_tflite": float32.probabilities,
        "keras_call": lambda x: keras_model(x[None], training=False),
        "keras_predict": lambda x: keras_model.predict(x[None], verbose=0),
    }
    seconds = time_over_clips(actions, features, rounds, tick)
    agreement = float(np.mean([np.argmax(int8.probabilities(x)) == np.argmax(float32.probabilities(x))
                               for x in features]))
    return {
        "times": {name: spread_ms(s) for name, s in seconds.items()},
        "speedup": {name: ratio(s, seconds[OURS]) for name, s in seconds.items() if name != OURS},
        "int8_float32_agreement": round(agreement, 4),
        "sizes_bytes": {OURS: len(int8.artifact.content), "float32_tflite": len(float32.artifact.content)},
    }


def batch_scaling(clips: list[np.ndarray], int8: Model, keras_model: Any, batch_sizes: list[int],
                  rounds: int, tick: Tick = lambda n: None) -> dict[str, Any]:
    """Offline scoring, samples -> decisions, per clip by batch size: the edge runtime one clip
    at a time against our features + Keras ``predict`` on the whole batch."""
    from audiomnist_edge.features import clip_features

    rate, params = int8.params.sample_rate, int8.params
    rows = []
    for size in batch_sizes:
        batch = [clips[i % len(clips)] for i in range(size)]
        actions = {
            "edge_loop": lambda b: [int8.classify(x, rate) for x in b],
            "keras_predict": lambda b: keras_model.predict(
                np.stack([clip_features(x, params) for x in b]), batch_size=len(b), verbose=0),
        }
        seconds = time_over_clips(actions, [batch], rounds)
        rows.append({"batch": size, **{name: spread_ms(s / size) for name, s in seconds.items()}})
        tick(1)
    return {"by_batch": rows}
