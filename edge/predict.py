"""``audiomnist-edge predict``: the digits spoken in audio files, with the device runtime.

Each file goes through ``recognizer.recognize_file``: the same blocks,
segmentation and decisions as ``listen --input`` on that file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .errors import EdgeError
from .interpreter import BACKENDS
from .model import UNKNOWN_AT, Model
from .options import decision_options
from .recognizer import MIN_CONFIDENCE, Detection, label_value, recognize_file
from .wav import SOUNDFILE_SUFFIXES

AUDIO_SUFFIXES = {".wav"} | SOUNDFILE_SUFFIXES


class InputError(EdgeError):
    """A path argument that names no WAV file."""


def expand_paths(arguments: tuple[str, ...]) -> Iterator[tuple[str, InputError | None]]:
    """(file, problem) for each argument; a folder stands for its audio files, sorted; - is stdin."""
    for argument in arguments:
        path = Path(argument)
        if argument == "-":
            yield argument, None  # a WAV stream on stdin
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not files:
                yield argument, InputError(f"{argument}: folder holds no .wav files")
            for file in files:
                yield str(file), None
        elif path.exists():
            yield argument, None
        else:
            yield argument, InputError(f"{argument}: no such file or folder")


def utterance_record(detection: Detection) -> dict[str, Any]:
    """JSON for one utterance: times (s), digit (null if unknown), label, probability, top-k."""
    return {
        "start": round(detection.start, 3),
        "end": round(detection.end, 3),
        "digit": label_value(detection.digit),
        "label": label_value(detection.label),
        "probability": round(detection.confidence, 4),
        "top": [[label_value(label), round(p, 4)] for label, p in detection.top],
    }


def predict_file(
    model: Model,
    path: str,
    top_k: int,
    min_confidence: float = MIN_CONFIDENCE,
    unknown_at: float = UNKNOWN_AT,
    background_db: float | None = None,
) -> dict[str, Any]:
    """The JSON record for one audio file.

    ``utterances`` lists every decision with its times; ``sequence`` joins them
    ('?' for unknown). With exactly one utterance, ``digit``, ``probability``
    and ``top`` repeat its decision; otherwise ``digit`` is null.
    """
    started = time.perf_counter()
    result = recognize_file(
        model, path, top_k=top_k, min_confidence=min_confidence, unknown_at=unknown_at, background_db=background_db
    )
    utterances = [utterance_record(d) for d in result.detections]
    single = utterances[0] if len(utterances) == 1 else None
    return {
        "file": path,
        "digit": single["digit"] if single else None,
        "probability": single["probability"] if single else None,
        "top": single["top"] if single else [],
        "sequence": "".join("?" if u["digit"] is None else str(u["digit"]) for u in utterances),
        "utterances": utterances,
        "sample_rate": result.sample_rate,
        "seconds": round(result.seconds, 3),
        "ms": round((time.perf_counter() - started) * 1e3, 3),
    }


def describe(record: dict[str, Any]) -> str:
    """One human line for a prediction record."""
    utterances = record["utterances"]
    if not utterances:
        what = "no speech found"
    elif len(utterances) == 1:
        u = utterances[0]
        runners = ", ".join(f"{label} ({p:.2f})" for label, p in u["top"][1:])
        what = (
            f"{u['digit']} ({u['probability']:.2f})"
            if u["digit"] is not None
            else f"? unknown ({u['label']}? {u['probability']:.2f})"
            if isinstance(u["label"], int)
            else f"? not a digit ({u['label']} {u['probability']:.2f})"
        )
        what += f"  runner-up {runners}" if runners else ""
    else:
        what = (
            f"{' '.join(record['sequence'])}  ({len(utterances)} utterances, "
            f"{utterances[0]['start']:.2f}-{utterances[-1]['end']:.2f} s)"
        )
    return f"{record['file']}: {what}  {record['ms']:.1f} ms"


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="Model file [default: the model packaged with audiomnist-edge].",
)
@click.option(
    "--top-k",
    type=click.IntRange(1, None),
    default=3,
    show_default=True,
    help="How many candidates to report (the digit and its runners-up).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    help=f"Interpreter to use [default: the first installed of {', '.join(BACKENDS)}].",
)
@decision_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per file on stdout (digit, sequence, utterances with start "
    "and end in seconds); the summary goes to stderr.",
)
def predict(
    files: tuple[str, ...],
    model_path: str | None,
    top_k: int,
    backend: str | None,
    min_confidence: float,
    unknown_at: float,
    background_db: float | None,
    as_json: bool,
) -> None:
    """Recognise the digits spoken in each audio FILE (a folder means its audio files).

    Each file is cut into utterances exactly as `listen --input FILE` would:
    one digit gives one decision, several give the sequence, silence says
    so. WAV at any rate and bit depth works (FLAC, OGG and MP3 with the
    soundfile extra): audio is resampled to the model's rate and read in
    blocks, so long files take little memory. A file that cannot be read is
    reported and the others are still processed; the exit status is 1 if any failed.

    \b
    Examples:
      audiomnist-edge predict examples/digits
      audiomnist-edge predict one.wav two.wav --top-k 1
      audiomnist-edge predict --json recordings/ | jq -r '[.file, .digit] | @tsv'
      audiomnist-edge predict --model my-int8.tflite clip.wav
      sox long.flac -t wav - | audiomnist-edge predict -     # a WAV stream on stdin
    """
    model = Model.load(model_path, backend=backend)
    if not as_json:
        click.echo(
            f"model {model.path.name} ({model.metadata.get('name', '?')}) on "
            f"{model.backend.name} {model.backend.version}",
            err=True,
        )
    started = time.perf_counter()
    total = failed = 0
    for path, problem in expand_paths(files):
        total += 1
        try:
            if problem:
                raise problem
            record = predict_file(model, path, top_k, min_confidence, unknown_at, background_db)
        except EdgeError as exc:
            failed += 1
            if as_json:
                click.echo(json.dumps({"file": path, "error": str(exc)}))
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        click.echo(json.dumps(record) if as_json else describe(record))
    elapsed = time.perf_counter() - started
    click.echo(
        f"{total} files, {failed} failed, {elapsed * 1e3:.0f} ms total"
        + (f" ({elapsed * 1e3 / total:.1f} ms per file)" if total else ""),
        err=as_json,
    )
    if failed:
        raise SystemExit(1)
