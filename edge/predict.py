"""``audiomnist-edge predict``: the digit spoken in each WAV file, with the device runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import click

from .errors import EdgeError
from .interpreter import BACKENDS
from .model import Model
from .wav import read_wav


class InputError(EdgeError):
    """A path argument that names no WAV file."""


def expand_paths(arguments: tuple[str, ...]) -> Iterator[tuple[str, InputError | None]]:
    """(file, problem) for each argument; a folder stands for its *.wav files, sorted."""
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
            if not files:
                yield argument, InputError(f"{argument}: folder holds no .wav files")
            for file in files:
                yield str(file), None
        elif path.exists():
            yield argument, None
        else:
            yield argument, InputError(f"{argument}: no such file or folder")


def label_value(label: str) -> int | str:
    """A digit label as an int for JSON; any other label unchanged."""
    return int(label) if label.isdigit() else label


def predict_file(model: Model, path: str, top_k: int) -> dict[str, Any]:
    """The JSON record for one WAV file: digit, probability, top-k pairs, rate and ms."""
    started = time.perf_counter()
    samples, rate = read_wav(path)
    prediction = model.classify(samples, rate, top_k)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    return {
        "file": path,
        "digit": label_value(prediction.label),
        "probability": round(prediction.probability, 4),
        "top": [[label_value(label), round(p, 4)] for label, p in prediction.top],
        "sample_rate": rate,
        "seconds": round(len(samples) / rate, 3),
        "ms": round(elapsed_ms, 3),
    }


def describe(record: dict[str, Any]) -> str:
    """One human line for a prediction record."""
    runners = ", ".join(f"{label} ({p:.2f})" for label, p in record["top"][1:])
    return (f"{record['file']}: {record['digit']} ({record['probability']:.2f})"
            + (f"  runner-up {runners}" if runners else "") + f"  {record['ms']:.1f} ms")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Model file [default: the model packaged with audiomnist-edge].")
@click.option("--top-k", type=click.IntRange(1, None), default=3, show_default=True,
              help="How many candidates to report (the digit and its runners-up).")
@click.option("--backend", type=click.Choice(list(BACKENDS)),
              help="Interpreter to use [default: the first installed of "
                   f"{', '.join(BACKENDS)}].")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per file on stdout; the summary goes to stderr.")
def predict(files: tuple[str, ...], model_path: str | None, top_k: int, backend: str | None,
            as_json: bool) -> None:
    """Recognise the digit spoken in each WAV FILE (a folder means its .wav files).

    Any sample rate and bit depth the WAV reader accepts works: audio is
    resampled to the model's rate. A file that cannot be read is reported
    and the others are still processed; the exit status is 1 if any failed.

    \b
    Examples:
      audiomnist-edge predict examples/digits
      audiomnist-edge predict one.wav two.wav --top-k 1
      audiomnist-edge predict --json recordings/ | jq -r '[.file, .digit] | @tsv'
      audiomnist-edge predict --model my-int8.tflite clip.wav
    """
    model = Model.load(model_path, backend=backend)
    if not as_json:
        click.echo(f"model {model.path.name} ({model.metadata.get('name', '?')}) on "
                   f"{model.backend.name} {model.backend.version}", err=True)
    started = time.perf_counter()
    total = failed = 0
    for path, problem in expand_paths(files):
        total += 1
        try:
            if problem:
                raise problem
            record = predict_file(model, path, top_k)
        except EdgeError as exc:
            failed += 1
            if as_json:
                click.echo(json.dumps({"file": path, "error": str(exc)}))
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        click.echo(json.dumps(record) if as_json else describe(record))
    elapsed = time.perf_counter() - started
    click.echo(f"{total} files, {failed} failed, {elapsed * 1e3:.0f} ms total"
               + (f" ({elapsed * 1e3 / total:.1f} ms per file)" if total else ""), err=as_json)
    if failed:
        raise SystemExit(1)
