"""``audiomnist-edge features``: the feature matrix a model would see for a WAV file."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click
import numpy as np

from .atomic import refuse_existing, write_file
from .config import FeatureParams
from .errors import EdgeError
from .jsonsafe import dumps
from .features import clip_features, mfcc, speech_bounds
from .resample import resample
from .wav import read_wav

log = logging.getLogger(__name__)


def wav_at_rate(path: str, sample_rate: int) -> tuple[np.ndarray, int]:
    """Mono samples of a WAV file resampled to ``sample_rate``, and its own rate."""
    samples, rate = read_wav(path)
    log.debug("%s: %d samples at %d Hz", path, len(samples), rate)
    return resample(samples, rate, sample_rate), rate


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--raw", is_flag=True, help="Plain MFCCs of the whole file (no trim, centring or CMVN).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, with the matrix.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the matrix of a single file as .npy (written whole or not at all).",
)
@click.option("--force", is_flag=True, help="Replace an existing --save file.")
def features(files: tuple[str, ...], raw: bool, as_json: bool, save: Path | None, force: bool) -> None:
    """Compute the MFCC matrix (frames x coefficients) of each WAV FILE.

    Uses the default feature configuration: audio is resampled to its rate,
    silence trimmed, the speech centred in the clip window and normalised per
    clip, exactly as the model's input is built.

    \b
    Examples:
      audiomnist-edge features examples/digits.wav
      audiomnist-edge features --raw --json clip.wav | jq .shape
    """
    params = FeatureParams()
    if save and len(files) != 1:
        raise click.UsageError("--save takes exactly one FILE")
    if save:
        refuse_existing(save, force)
    failed = 0
    for path in files:
        try:
            started = time.perf_counter()
            samples, rate = wav_at_rate(path, params.sample_rate)
            matrix = mfcc(samples, params) if raw else clip_features(samples, params)
            elapsed_ms = (time.perf_counter() - started) * 1e3
        except EdgeError as exc:
            failed += 1
            click.echo(dumps({"file": path, "error": str(exc)}) if as_json else f"error: {exc}", err=not as_json)
            continue
        start, end = speech_bounds(samples, params)
        if save:
            write_file(save, lambda handle: np.save(handle, matrix), force)
        if as_json:
            click.echo(
                dumps(
                    {
                        "file": path,
                        "sample_rate": rate,
                        "seconds": len(samples) / params.sample_rate,
                        "speech": [start / params.sample_rate, end / params.sample_rate],
                        "shape": list(matrix.shape),
                        "features_hash": params.stable_hash(),
                        "ms": round(elapsed_ms, 3),
                        "matrix": np.round(matrix, 5).tolist(),
                    }
                )
            )
        else:
            click.echo(
                f"{path}: {rate} Hz, {len(samples) / params.sample_rate:.2f} s, "
                f"speech {start / params.sample_rate:.2f}-{end / params.sample_rate:.2f} s, "
                f"MFCC {matrix.shape[0]}x{matrix.shape[1]} in {elapsed_ms:.2f} ms "
                f"(mean {matrix.mean():+.3f}, std {matrix.std():.3f})"
            )
    if failed:
        raise SystemExit(1)
