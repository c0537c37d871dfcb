"""Small real models for tests: a dense net trained in seconds on FSDD features.

Built once per test session (cached) and only when a test asks; needs the
``[train]`` extra. Nothing is written into the repository.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from audiomnist_edge.config import FeatureParams
from audiomnist_edge.features import clip_features
from audiomnist_edge.wav import read_wav

N_TRAIN_PER_DIGIT = 100
N_TEST_PER_DIGIT = 30


def _features(files: list[Path], params: FeatureParams, warp: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([clip_features(read_wav(f)[0], params, warp=warp) for f in files]).astype(np.float32)
    y = np.array([int(f.name.split("_")[0]) for f in files], dtype=np.int64)
    return x, y


def _pick(files: list[Path], per_digit: int) -> list[Path]:
    by_digit: dict[int, list[Path]] = {}
    for f in files:
        by_digit.setdefault(int(f.name.split("_")[0]), []).append(f)
    return [f for digit in sorted(by_digit)
            for f in by_digit[digit][::max(1, len(by_digit[digit]) // per_digit)][:per_digit]]


@functools.lru_cache(maxsize=None)
def fsdd_arrays(root: str, warp: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): clip features (at mel warp ``warp``) of a balanced FSDD subset.

    Train from the official training takes (5-49), test from the test takes (0-4).
    """
    files = sorted((Path(root) / "recordings").glob("*.wav"))
    take = lambda f: int(f.stem.split("_")[2])  # noqa: E731
    params = FeatureParams()
    x_train, y_train = _features(_pick([f for f in files if take(f) >= 5], N_TRAIN_PER_DIGIT), params, warp)
    x_test, y_test = _features(_pick([f for f in files if take(f) < 5], N_TEST_PER_DIGIT), params, warp)
    return x_train, y_train, x_test, y_test


@functools.lru_cache(maxsize=None)
def trained_keras(root: str):
    """A Normalization + Dense(32) + softmax Keras model fitted on ``fsdd_arrays`` (seconds)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    x_train, y_train, _, _ = fsdd_arrays(root)
    keras.utils.set_random_seed(0)
    flat = x_train.reshape(-1, x_train.shape[-1])
    model = keras.Sequential([
        keras.Input(x_train.shape[1:]),
        keras.layers.Normalization(axis=-1, mean=flat.mean(0), variance=flat.var(0) + 1e-6),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    return model


def write_run(root: str, run_dir: Path) -> Path:
    """A training-run folder (model.keras, features.json, run.json, metrics.json) for convert."""
    model = trained_keras(root)
    _, _, x_test, y_test = fsdd_arrays(root)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    (run_dir / "features.json").write_text(FeatureParams().to_json())
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    (run_dir / "run.json").write_text(json.dumps({
        "data": root, "layout": "fsdd", "split": "official", "fold": None, "seed": 0,
        "recipe": {"arch": "tiny-dense"}, "labels": [str(d) for d in range(10)],
        "history": {"loss": [1.0, 0.5]}}))
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "split": "official"}))
    return run_dir


@functools.lru_cache(maxsize=None)
def int8_model_bytes(root: str) -> bytes:
    """The tiny model as a sealed int8 artifact (what `convert` writes), via the convert code."""
    from audiomnist_edge.convert.metadata import embed_metadata
    from audiomnist_edge.convert.quantize import convert_keras, representative_set

    params = FeatureParams()
    x_train = fsdd_arrays(root)[0]
    content = convert_keras(trained_keras(root), representative_set(x_train, 200), "int8")
    return embed_metadata(content, {"name": "tiny-test", "labels": [str(d) for d in range(10)],
                                    "features": params.to_dict(), "features_hash": params.stable_hash()})
