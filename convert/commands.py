"""``audiomnist-edge convert``: a training run -> one verified, self-describing .tflite file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click
import numpy as np

from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.atomic import refuse_existing, write_file
from audiomnist_edge.config import ConfigError, FeatureParams
from audiomnist_edge.errors import EdgeError, require_extra
from audiomnist_edge.jsonsafe import dumps
from audiomnist_edge.model import Model, decision_indices
from audiomnist_edge.options import parse_warps

from .metadata import describe_model, embed_metadata, folder_names
from .quantize import (QUANTS, ConversionError, check_figures, convert_keras, device_probabilities,
                       representative_set, runtime_model, runtime_probabilities, verify)
from .reference import reference_bench

RUN_FILES = ("model.keras", "features.json", "run.json")
PARITY_CLIPS = 20


def load_run_arrays(run_dir: Path, data: str | None = None, warp: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of a run: float32 (n, frames, coeffs) at mel warp ``warp``
    and int labels."""
    from audiomnist_edge.train.fit import load_run_data

    try:
        return load_run_data(run_dir, data=data, warp=warp)
    except (KeyError, OSError) as exc:
        raise ConversionError(f"{run_dir}: cannot rebuild the run's data ({type(exc).__name__}: {exc}); "
                              "pass --data CORPUS if the corpus moved") from None


def read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], FeatureParams]:
    """run.json, metrics.json (empty if absent) and the FeatureParams of a run folder."""
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ConversionError(f"{run_dir}: not a training run folder (missing {', '.join(missing)}); "
                              "make one with `audiomnist-edge train --out RUN_DIR`")
    try:
        info = json.loads((run_dir / "run.json").read_text())
        metrics_path = run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{run_dir}: unreadable run files: {exc}") from None
    for name, document in (("run.json", info), ("metrics.json", metrics)):
        if not isinstance(document, dict):
            raise ConversionError(f"{run_dir}/{name}: not a JSON object")
    try:
        params = FeatureParams.from_json((run_dir / "features.json").read_text())
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{run_dir}/features.json: {exc}") from None
    return info, metrics, params


def run_warps(run_dir: Path) -> tuple[float, ...]:
    """The mel warps a run's model decides over by default: its recipe's ``AugmentParams.test_warps``."""
    from audiomnist_edge.train.fit import read_run as read_training_run

    try:
        return read_training_run(run_dir)[2].augment.test_warps()
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{run_dir}/run.json: no readable recipe ({exc}); pass --warps") from None


def training_summary(run_dir: Path, info: dict[str, Any], metrics: dict[str, Any],
                     y_train: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """What the model was trained on, from the run files (bulky entries such as history left out)."""
    summary = {key: value for key, value in info.items() if key not in ("history", "data_summary")}
    if summary.get("data"):
        summary["data"] = folder_names(summary["data"])
    recipe = dict(summary.get("recipe") or {})
    if recipe.get("synth"):
        recipe["synth"] = folder_names(recipe["synth"])
    summary["recipe"] = recipe
    data_summary = dict(info.get("data_summary") or {})
    if isinstance(data_summary.get("skipped"), list):
        data_summary["skipped"] = len(data_summary["skipped"])
    summary.update({
        "run": run_dir.name, "data_summary": data_summary,
        "n_train": int(len(y_train)), "n_test": int(len(y_test)),
        "train_per_label": np.bincount(np.asarray(y_train, dtype=np.int64)).tolist(),
        "keras_test_accuracy": metrics.get("accuracy"),
    })
    return summary


def write_atomic(path: Path, content: bytes, force: bool = False) -> None:
    """Write bytes to a unique temporary file beside ``path`` (its folder made if missing),
    then rename it over ``path``; ConversionError if ``path`` exists without ``force``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, content, force)
    except EdgeError as exc:
        raise ConversionError(str(exc)) from None
    except OSError as exc:
        raise ConversionError(f"cannot write {path}: {exc.strerror or exc}") from None


def convert_run(run_dir: str | Path, quant: str = "int8", out: str | Path | None = None,
                data: str | None = None, name: str | None = None,
                echo: Callable[[str], None] = print, force: bool = False,
                warps: Sequence[float] | None = None) -> dict[str, Any]:
    """Convert, verify and write a run's model; returns the embedded metadata plus the file's path.

    ``warps``: the mel warps the model decides over (default: the run's recipe's
    ``AugmentParams.test_warps``). Keras and int8 are compared on the clean
    features; the test split is also decided as the device will, over the warps.

    Raises ConversionError (and writes nothing) when a hard floor is missed, or
    when the output file exists and ``force`` is not set (checked first).
    """
    run_dir = Path(run_dir)
    info, metrics, params = read_run(run_dir)
    out = Path(out) if out else run_dir / f"model-{quant}.tflite"
    try:
        refuse_existing(out, force)
    except EdgeError as exc:
        raise ConversionError(str(exc)) from None
    import keras

    echo(f"loading {run_dir / 'model.keras'}")
    try:
        model = keras.models.load_model(run_dir / "model.keras", compile=False)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise ConversionError(f"{run_dir / 'model.keras'}: cannot load: {exc}") from None
    if tuple(model.input_shape[1:]) != tuple(params.input_shape):
        raise ConversionError(f"model input {model.input_shape[1:]} does not match features.json "
                              f"{params.input_shape}")
    labels = [str(label) for label in info.get("labels") or range(model.output_shape[-1])]
    if model.output_shape[-1] != len(labels):
        raise ConversionError(f"model has {model.output_shape[-1]} outputs for {len(labels)} labels")

    x_train, y_train, x_test, y_test = load_run_arrays(run_dir, data)
    echo(f"{len(x_train)} training and {len(x_test)} test clips; Keras predictions")
    keras_probs = np.asarray(model.predict(x_test, batch_size=256, verbose=0))

    echo(f"converting to {quant}" + (" and float32 (for the size comparison)" if quant != "float32" else ""))
    calibration = representative_set(x_train) if quant == "int8" else None
    content = convert_keras(model, calibration, quant)
    sizes = {quant: len(content)}
    if quant != "float32":
        sizes["float32"] = len(convert_keras(model, None, "float32"))

    warps = tuple(float(w) for w in warps) if warps else run_warps(run_dir)
    runtime = runtime_model(content, params, labels, warps=warps)
    warped = sum(w != 1.0 for w in warps)
    with click.progressbar(length=len(x_test) * (1 + warped), label=f"verifying {quant} on the device runtime",
                           file=sys.stderr, show_pos=True) as bar:
        tflite_probs = runtime_probabilities(runtime, x_test, bar.update)
        figures = verify(keras_probs, tflite_probs, y_test, labels)
        targets = check_figures(figures, sizes, quant)
        device = device_probabilities(runtime, lambda w: load_run_arrays(run_dir, data, w)[2], bar.update,
                                      unwarped=tflite_probs)
    figures.update(warps=list(warps),
                   device_accuracy=round(float(np.mean(decision_indices(device, labels) == y_test)), 6))

    echo("timing the reference benchmark")
    normalised = any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)
    metadata = {
        **describe_model(name or f"{run_dir.name}-{quant}", labels, params, runtime, quant,
                         "in the graph" if normalised else "none"),
        "warps": list(warps),
        "calibration": None if calibration is None else {
            "clips": len(calibration), "of": len(x_train), "from": "training split", "seed": 0},
        "training": training_summary(run_dir, info, metrics, y_train, y_test),
        "verification": {**figures, "split": info.get("split", "test"),
                         "sizes": sizes, "targets": targets,
                         "runtime": f"{runtime.backend.name} {runtime.backend.version}"},
        "reference_bench": reference_bench(runtime),
    }
    final = embed_metadata(content, metadata)
    shipped = Model(parse_artifact(final, out))
    parity = runtime_probabilities(shipped, x_test[:PARITY_CLIPS])
    if not np.array_equal(parity, tflite_probs[:PARITY_CLIPS]):
        raise ConversionError("the model with metadata gives different outputs; no model written")
    write_atomic(out, final, force)
    return {**shipped.metadata, "path": str(out), "size": len(final)}


def report_lines(result: dict[str, Any]) -> list[str]:
    """Human summary of a conversion result."""
    v = result["verification"]
    quant = result["quantization"]["type"]
    sizes = ", ".join(f"{k} {n / 1024:.1f} KB" for k, n in v["sizes"].items())
    lines = [
        f"wrote {result['path']} ({result['size'] / 1024:.1f} KB with metadata)",
        f"  test split ({v['split']}, {v['n_test']} clips): Keras {100 * v['keras_accuracy']:.2f}%, "
        f"{quant} TFLite {100 * v['tflite_accuracy']:.2f}% ({v['drop_points']:.2f} points lost), "
        f"top-1 agreement {100 * v['agreement']:.2f}%",
        f"  decided over mel warps {', '.join(f'{w:g}' for w in v['warps'])} as the device will: "
        f"{100 * v['device_accuracy']:.2f}%",
        f"  sizes (TFLite, no metadata): {sizes}",
        "  reference: MFCC {mfcc_ms:.2f} ms, invoke {invoke_ms:.2f} ms, end to end "
        "{end_to_end_ms:.2f} ms ({backend}, {cpu})".format(**result["reference_bench"]),
    ]
    lines += [f"  target missed: {name}" for name, met in v["targets"].items() if not met]
    return lines


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--quant", type=click.Choice(QUANTS), default="int8", show_default=True,
              help="int8: full-integer (int8 input/output, builtin int8 ops); "
                   "float16: half-size weights; float32: no quantization.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Model file to write [default: RUN_DIR/model-QUANT.tflite].")
@click.option("--data", type=click.Path(file_okay=False),
              help="The corpus folder, if it moved since training (run.json records it).")
@click.option("--name", help="Model name stored in the metadata [default: RUNNAME-QUANT].")
@click.option("--force", is_flag=True, help="Replace an existing model file.")
@click.option("--warps", callback=parse_warps, metavar="W[,W...]",
              help="Mel-filterbank warps the model decides over, each decision the mean of its "
                   "probabilities at every warp (0.7-1.3; 1 = one view) [default: 1 and the middle of "
                   "the run's training warp range, e.g. 0.94,1].")
@click.option("--json", "as_json", is_flag=True, help="Print the embedded metadata as one JSON object.")
def convert(run_dir: str, quant: str, out: str | None, data: str | None, name: str | None,
            force: bool, warps: tuple[float, ...] | None, as_json: bool) -> None:
    """Turn the training run in RUN_DIR into a verified model file for devices.

    Quantizes the Keras model (int8 by default, calibrated on training clips),
    runs the result through the device runtime on the run's test split and
    refuses to write it if it is more than 2 points less accurate than Keras
    or agrees with it on fewer than 97% of clips. The file carries its labels,
    feature configuration, quantization, training summary, these figures and
    reference timings; `audiomnist-edge info --model FILE` shows them.

    \b
    Examples:
      audiomnist-edge convert runs/cnn-official
      audiomnist-edge convert runs/cnn-official --quant float32 --out /tmp/f32.tflite
      audiomnist-edge convert runs/cnn-official --out edge/models/default.tflite --name default --force
    """
    require_extra("train", "tensorflow", "keras")
    from audiomnist_edge.train.fit import _quiet_tf

    _quiet_tf()  # TensorFlow's start-up lines hidden, as for train
    result = convert_run(run_dir, quant, out, data, name,
                         echo=lambda line: click.echo(line, err=True), force=force, warps=warps)
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo("\n".join(report_lines(result)))
