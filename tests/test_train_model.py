"""Training on FSDD: an accuracy floor shuffled labels cannot reach, the run folder, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from audiomnist_edge.config import FeatureParams  # noqa: E402
from audiomnist_edge.train import datasets  # noqa: E402
from audiomnist_edge.train.augment import AugmentParams  # noqa: E402
from audiomnist_edge.train.fit import Recipe, load_run_data, predict, prepare, train_model  # noqa: E402

FLOOR = 0.80  # official split, 8 epochs, no augmentation; chance is 0.10
EXE = Path(sys.executable).parent / "audiomnist-edge"
CLI_FLOOR = 0.35  # 900 clips, 8 epochs, 1 augmented copy: 0.537 unclamped, 0.477 at top_db 50; chance 0.10


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="module")
def official(fsdd, cache):
    ds = datasets.load(fsdd)
    recipe = Recipe(arch="cnn", epochs=8, batch_size=32, augment=AugmentParams(copies=0))
    arrays = prepare(ds, datasets.make_split(ds, "official"), FeatureParams(), recipe,
                     cache_dir=cache, progress=False)
    return arrays, recipe


def _accuracy(arrays, recipe):
    model, history, _ = train_model(arrays, FeatureParams(), recipe)
    return float((predict(model, arrays.x_test).argmax(1) == arrays.y_test).mean())


def test_small_model_beats_floor(official):
    arrays, recipe = official
    assert arrays.x_train.shape[1:] == FeatureParams().input_shape
    assert len(arrays.y_test) == 300 and len(arrays.y_train) + len(arrays.y_val) == 2700
    assert _accuracy(arrays, recipe) >= FLOOR


def test_masked_and_mixed_training_beats_floor(official):
    # --spec-masks and --mixup feed Keras batches through masking.augmented_batches; the model still learns
    arrays, recipe = official
    assert _accuracy(arrays, Recipe(**{**recipe.__dict__, "spec_masks": 2, "mixup": 0.3})) >= FLOOR


def test_shuffled_labels_fail_floor(official):
    arrays, recipe = official
    rng = np.random.default_rng(0)
    broken = type(arrays)(**{**arrays.__dict__, "y_train": rng.permutation(arrays.y_train)})
    assert _accuracy(broken, recipe) < FLOOR


@pytest.fixture(scope="module")
def small_corpus(fsdd, tmp_path_factory) -> Path:
    """900 FSDD clips (takes 0-14 of every speaker and digit), FSDD layout."""
    root = tmp_path_factory.mktemp("small") / "fsdd"
    (root / "recordings").mkdir(parents=True)
    for wav in (fsdd / "recordings").glob("*.wav"):
        if int(wav.stem.split("_")[2]) < 15:
            shutil.copy(wav, root / "recordings" / wav.name)
    return root


def _cli(*args, env_extra=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=600)


def test_cli_train_and_evaluate(small_corpus, cache, tmp_path):
    out = tmp_path / "run"
    result = _cli("train", "--data", str(small_corpus), "--split", "official", "--arch", "cnn",
                  "--epochs", "8", "--batch-size", "32", "--augment", "1", "--out", str(out), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    for name in ("model.keras", "features.json", "normalisation.json", "run.json", "metrics.json",
                 "confusion.png", "curves.png", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "run.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert metrics["split"] == "official" and confusion.sum() == 300
    assert metrics["accuracy"] == pytest.approx(np.trace(confusion) / 300, abs=1e-9)
    assert metrics["accuracy"] > CLI_FLOOR
    assert set(metrics["per_class"]) == set(info["labels"]) == {str(d) for d in range(10)}
    assert info["split"] == "official" and info["layout"] == "fsdd"
    assert info["data_summary"]["clips"]["test"] == 300
    assert FeatureParams.from_json((out / "features.json").read_text()) == FeatureParams()
    assert "accuracy" in (out / "report.md").read_text().lower()
    # no optimiser state in the saved model: it loads and has no optimizer variables
    import zipfile
    with zipfile.ZipFile(out / "model.keras") as z:
        weights = z.read("model.weights.h5")
    assert b"optimizer" not in weights

    ev = _cli("evaluate", str(out), "--json", "--cache-dir", str(cache))
    assert ev.returncode == 0, ev.stderr
    scored = json.loads(ev.stdout)
    assert scored["split"] == "official"
    assert scored["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)

    x_train, y_train, x_test, y_test = load_run_data(out, cache_dir=cache)
    assert x_test.shape == (300, *FeatureParams().input_shape) and len(y_test) == 300
    import keras  # the recorded accuracy is the saved model's on the run's test clips
    saved = keras.models.load_model(out / "model.keras", compile=False)
    assert np.mean(predict(saved, x_test).argmax(1) == y_test) == pytest.approx(metrics["accuracy"], abs=1e-9)
    assert len(x_train) == info["data_summary"]["clips"]["train"]


def test_missing_extra_is_one_line(tmp_path):
    code = ("import importlib.util, sys; real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n == 'tensorflow' else real(n, *a)\n"
            "from audiomnist_edge.cli import main; sys.argv = ['audiomnist-edge', 'train', '--data', '.']\n"
            "main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[train]" in lines[0] and "tensorflow" in lines[0]


def test_ensemble_averages_members_trained_alone(official, tmp_path):
    """arch "ensemble": each member is the model its own recipe trains (member 1 with seed + 1), the
    output is the mean of theirs, and the whole saves, loads and converts to one int8 model."""
    import keras
    from audiomnist_edge.convert.quantize import convert_keras, representative_set
    from audiomnist_edge.interpreter import create_interpreter

    arrays, recipe = official
    recipe = Recipe(**{**recipe.__dict__, "epochs": 2})
    members = [{"width": 8}, {"width": 8, "pooling": "attention"}]
    ensemble, history, _ = train_model(arrays, FeatureParams(), Recipe(
        **{**recipe.__dict__, "arch": "ensemble", "model_kwargs": {"members": members}}))
    alone = [train_model(arrays, FeatureParams(), Recipe(**{**recipe.__dict__, "model_kwargs": m, "seed": i}))[0]
             for i, m in enumerate(members)]
    x = arrays.x_test[:50]
    np.testing.assert_allclose(predict(ensemble, x), np.mean([predict(m, x) for m in alone], axis=0), atol=1e-5)
    assert len(history["members"]) == 2 and len(history["members"][1]["loss"]) == 2
    ensemble.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(predict(again, x), predict(ensemble, x), atol=1e-6)
    interpreter, _ = create_interpreter(convert_keras(ensemble, representative_set(arrays.x_train, 50), "int8"))
    assert np.dtype(interpreter.get_input_details()[0]["dtype"]) == np.int8
    with pytest.raises(ValueError, match="at least two members"):
        train_model(arrays, FeatureParams(), Recipe(**{**recipe.__dict__, "arch": "ensemble",
                                                       "model_kwargs": {"members": members[:1]}}))
