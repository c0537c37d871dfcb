"""``audiomnist-edge info``: what a model file is and what will run it."""

from __future__ import annotations

from typing import Any

import click

from .interpreter import BACKENDS
from .jsonsafe import dumps
from .model import Model


def model_info(model: Model) -> dict[str, Any]:
    """One JSON-ready description: backend, file, checksum, features, tensors, metadata."""
    metadata = model.metadata
    return {
        "path": str(model.path),
        "size": len(model.artifact.content),
        "sha256": model.artifact.sha256,
        "backend": {"name": model.backend.name, "version": model.backend.version},
        "name": metadata.get("name"),
        "labels": model.labels,
        "features": model.params.to_dict(),
        "features_hash": model.params.stable_hash(),
        "input_shape": list(model.params.input_shape),
        "warps": list(model.warps),
        "metadata": metadata,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(section: Any, *keys: str) -> bool:
    """Whether an informational metadata section is a dict holding a number under every key."""
    return isinstance(section, dict) and all(_is_number(section.get(key)) for key in keys)


def info_lines(info: dict[str, Any]) -> list[str]:
    """Human summary of ``model_info``."""
    meta = info["metadata"]
    params = info["features"]
    pcen = f"of PCEN mels ({params['pcen_seconds']:g} s) " if params.get("pcen_seconds") else ""
    lines = [
        f"model      {info['path']}",
        f"name       {info['name'] or '?'} (created {meta.get('created', '?')})",
        f"size       {info['size']} bytes ({info['size'] / 1024:.1f} KB)",
        f"sha256     {info['sha256']}",
        f"backend    {info['backend']['name']} {info['backend']['version']}",
        f"labels     {' '.join(info['labels'])}",
        f"features   {params['sample_rate']} Hz, {params['clip_seconds']} s, "
        f"{params['n_mfcc']} MFCC{' (+ as many raw)' if params.get('raw_mean') else ''} {pcen}"
        f"x {info['input_shape'][0]} frames "
        f"(n_fft {params['n_fft']}, hop {params['hop_length']}, {params['n_mels']} mels), "
        f"hash {info['features_hash']}",
        f"decided    over mel warps {', '.join(f'{w:g}' for w in info['warps'])}"
        + (" (the mean of the model's probabilities at each)" if len(info["warps"]) > 1 else ""),
    ]
    quant = meta.get("quantization") or {}
    for side in ("input", "output"):
        if side in quant:
            q = quant[side]
            lines.append(f"{side:<10} {q['dtype']} {q['shape']} scale {q['scale']:.6g} zero point {q['zero_point']}")
    check = meta.get("verification")
    if _numbers(check, "keras_accuracy", "tflite_accuracy", "agreement"):
        sizes = ", ".join(f"{k} {v / 1024:.1f} KB" for k, v in (check.get("sizes") or {}).items() if _is_number(v))
        lines.append(
            f"verified   {check.get('split', '?')} test split, {check.get('n_test', '?')} clips: "
            f"Keras {100 * check['keras_accuracy']:.2f}%, TFLite {100 * check['tflite_accuracy']:.2f}%, "
            f"agreement {100 * check['agreement']:.2f}%; {sizes}"
        )
        if _numbers(check, "device_accuracy"):
            lines.append(
                f"           decided over the warps, as the device does: {100 * check['device_accuracy']:.2f}%"
            )
    bench = meta.get("reference_bench")
    if _numbers(bench, "mfcc_ms", "invoke_ms", "end_to_end_ms"):
        lines.append(
            f"reference  MFCC {bench['mfcc_ms']:.2f} ms, invoke {bench['invoke_ms']:.2f} ms, "
            f"end to end {bench['end_to_end_ms']:.2f} ms on {bench.get('cpu', '?')}"
        )
    training = meta.get("training")
    if isinstance(training, dict) and training:
        lines.append(
            f"training   {training.get('run', '?')}: {training.get('layout', '?')} "
            f"{training.get('split', '?')} split, {training.get('n_train', '?')} training clips"
        )
        if isinstance(training.get("test_speakers"), list):
            lines.append(
                f"held out   fold {training.get('fold', '?')}: " + ", ".join(map(str, training["test_speakers"]))
            )
    return lines


@click.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: the model packaged with audiomnist-edge].",
)
@click.option("--backend", type=click.Choice(list(BACKENDS)), help="Interpreter to use [default: the first installed].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the model file under `path`).")
def info(model_path: str | None, backend: str | None, as_json: bool) -> None:
    """Describe a model file and the interpreter that runs it.

    Loading checks the file (TFLite format, metadata schema, checksum, a
    feature configuration this runtime can compute) and decides on a probe
    signal (the check `flash` runs), so `info` is also the quickest way to see
    whether a model is usable here.

    \b
    Examples:
      audiomnist-edge info
      audiomnist-edge info --model runs/cnn-official/model-int8.tflite
      audiomnist-edge info --json | jq .metadata.verification
    """
    model = Model.load(model_path, backend=backend)
    model.self_check()
    details = model_info(model)
    click.echo(dumps(details) if as_json else "\n".join(info_lines(details)))
