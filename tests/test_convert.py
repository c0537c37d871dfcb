"""`convert`: a training run -> a verified int8 artifact, or a clear refusal.

The run folder is a small dense model trained in seconds on real FSDD
features (tests/tiny_models.py); the run -> arrays access is monkeypatched to
those arrays so the test does not depend on the training pipeline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from click.testing import CliRunner  # noqa: E402

import tiny_models  # noqa: E402
from audiomnist_edge.artifact import read_artifact  # noqa: E402
from audiomnist_edge.cli import cli  # noqa: E402
from audiomnist_edge.convert import commands  # noqa: E402
from audiomnist_edge.convert.quantize import (MAX_DROP_POINTS, MIN_AGREEMENT, ConversionError,  # noqa: E402
                                              check_figures, verify)
from audiomnist_edge.interpreter import create_interpreter  # noqa: E402
from audiomnist_edge.model import Model  # noqa: E402


@pytest.fixture()
def run_dir(fsdd, tmp_path, monkeypatch):
    root = str(fsdd)
    monkeypatch.setattr(commands, "load_run_arrays",
                        lambda run, data=None, warp=1.0: tiny_models.fsdd_arrays(root, warp))
    return tiny_models.write_run(root, tmp_path / "run")


def test_int8_conversion_is_verified_and_described(fsdd, run_dir, tmp_path) -> None:
    out = tmp_path / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", str(run_dir), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    printed = json.loads(result.stdout)
    artifact = read_artifact(out)
    meta = artifact.metadata
    assert printed["sha256"] == meta["sha256"] and printed["path"] == str(out)

    # the stored figures are what the file and the Keras model really do
    _, _, x_test, y_test = tiny_models.fsdd_arrays(str(fsdd))
    model = Model.load(out)
    tflite_top = np.array([model.probabilities(x).argmax() for x in x_test])
    keras_top = tiny_models.trained_keras(str(fsdd)).predict(x_test, verbose=0).argmax(axis=1)
    figures = meta["verification"]
    assert figures["n_test"] == len(y_test)
    assert figures["tflite_accuracy"] == pytest.approx(np.mean(tflite_top == y_test), abs=1e-6)
    assert figures["keras_accuracy"] == pytest.approx(np.mean(keras_top == y_test), abs=1e-6)
    assert figures["agreement"] == pytest.approx(np.mean(tflite_top == keras_top), abs=1e-6)
    assert figures["sizes"]["int8"] < figures["sizes"]["float32"]
    assert set(figures["targets"]) >= {"agreement_99", "int8_under_100kb"}

    # decided over the recipe's default test-time warps (training copies warped 0.88-1), as stored
    assert meta["warps"] == figures["warps"] == [0.94, 1.0] and model.warps == (0.94, 1.0)
    views = [np.array([model.probabilities(x) for x in tiny_models.fsdd_arrays(str(fsdd), w)[2]]) for w in model.warps]
    assert figures["device_accuracy"] == pytest.approx(np.mean(np.mean(views, axis=0).argmax(1) == y_test), abs=1e-6)

    # full-integer: int8 in and out, int8 weights and int32 biases only, as the metadata says
    assert model.input_details["dtype"] == np.int8 and model.output_details["dtype"] == np.int8
    interpreter, _ = create_interpreter(out.read_bytes())
    assert {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()} <= {"int8", "int32"}
    q = meta["quantization"]["input"]
    assert (q["dtype"], q["zero_point"]) == ("int8", int(model.input_details["quantization"][1]))
    assert q["shape"] == [1, *artifact.params.input_shape]
    assert meta["features_hash"] == artifact.params.stable_hash()
    n_train = len(tiny_models.fsdd_arrays(str(fsdd))[1])  # the README's "calibrated on 500 training clips"
    assert meta["calibration"] == {"clips": 500, "of": n_train, "from": "training split", "seed": 0}
    assert meta["training"]["n_train"] == len(tiny_models.fsdd_arrays(str(fsdd))[1])
    assert "history" not in meta["training"]
    bench = meta["reference_bench"]
    assert all(bench[k] > 0 for k in ("mfcc_ms", "invoke_ms", "end_to_end_ms"))
    assert bench["backend"].startswith(model.backend.name)


def test_warps_option_sets_the_views_or_is_refused(run_dir, tmp_path) -> None:
    out = tmp_path / "one-view.tflite"
    result = CliRunner().invoke(cli, ["convert", str(run_dir), "--out", str(out), "--warps", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    figures = read_artifact(out).metadata["verification"]
    assert Model.load(out).warps == (1.0,) and figures["device_accuracy"] == figures["tflite_accuracy"]
    for bad in ("2", "0.9,x", "1,1,1,1,1,1,1,1,1", "nan"):
        result = CliRunner().invoke(cli, ["convert", str(run_dir), "--out", str(tmp_path / "bad.tflite"),
                                          "--warps", bad])
        assert result.exit_code == 2 and "--warps" in result.output, (bad, result.output)
    assert not (tmp_path / "bad.tflite").exists()


def test_float32_conversion(run_dir, tmp_path) -> None:
    out = tmp_path / "f32.tflite"
    result = CliRunner().invoke(cli, ["convert", str(run_dir), "--quant", "float32", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = read_artifact(out).metadata
    assert meta["quantization"]["input"]["dtype"] == "float32" and meta["calibration"] is None
    assert meta["verification"]["agreement"] >= 0.97
    assert "int8_under_100kb" not in meta["verification"]["targets"]
    assert f"wrote {out}" in result.stdout


def test_broken_calibration_is_refused_and_nothing_written(fsdd, run_dir, tmp_path, monkeypatch) -> None:
    x_train, y_train, x_test, y_test = tiny_models.fsdd_arrays(str(fsdd))
    # calibrating on near-silence gives an input scale that clips every real matrix
    monkeypatch.setattr(commands, "load_run_arrays",
                        lambda run, data=None, warp=1.0: (x_train * 1e-3, y_train, x_test, y_test))
    out = tmp_path / "refused.tflite"
    result = CliRunner().invoke(cli, ["convert", str(run_dir), "--out", str(out)])
    assert isinstance(result.exception, ConversionError), result.output
    assert "no model written" in str(result.exception) and "\n" not in str(result.exception)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_not_a_run_folder_is_one_line_error(tmp_path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "audiomnist_edge", "convert", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path}: not a training run folder")
    assert "Traceback" not in result.stderr


def _figures(keras_wrong: int, tflite_wrong: int, n: int = 300) -> dict:
    """verify() on n clips of digit 0: Keras wrong on the first ``keras_wrong``, the converted
    model wrong on the next ``tflite_wrong`` (so they disagree on both sets)."""
    y = np.zeros(n, dtype=np.int64)
    keras_top, tflite_top = y.copy(), y.copy()
    keras_top[:keras_wrong] = 1
    tflite_top[keras_wrong:keras_wrong + tflite_wrong] = 2
    return verify(np.eye(10)[keras_top], np.eye(10)[tflite_top], y)


@pytest.mark.parametrize("keras_wrong, tflite_wrong, refusal", [
    (0, 6, None),                      # 2.00 points lost: at the floor, accepted
    (0, 7, "points less accurate"),    # 2.33 points lost
    (5, 4, None),                      # agreement 291/300 = 97.00%: at the floor, accepted
    (5, 5, "agrees with Keras on only 96.67%"),
])
def test_refusal_at_the_exact_floors(keras_wrong, tflite_wrong, refusal) -> None:
    figures = _figures(keras_wrong, tflite_wrong)
    sizes = {"int8": 50_000, "float32": 160_000}
    if refusal is None:
        assert figures["drop_points"] <= MAX_DROP_POINTS and figures["agreement"] >= MIN_AGREEMENT
        assert check_figures(figures, sizes, "int8")["int8_under_100kb"]
    else:
        with pytest.raises(ConversionError, match=refusal):
            check_figures(figures, sizes, "int8")
