"""Calibrating the confidence gate that turns non-digit speech into "unknown".

The gate is ``--min-confidence``: a decision whose (shift-averaged) probability
is below it is reported as unknown; a model with a non-digit class composes
with it (a non-digit best label is unknown whatever its probability).
Thresholds are calibrated on espeak-ng voices saying non-digit words and on
FSDD's training takes (5-49) of the digits, each threshold keeping a given
share of those digits; each is then measured on voices used for neither:
flite (kal, awb, rms, slt) and festival (ked) saying non-digit words, and
HD-EN's 10 unseen speakers saying digits.

    python -m benchmarks.rejection_gate

Writes benchmarks/results/rejection.md and rejection.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import click
import numpy as np
from audiomnist_edge.model import Model
from audiomnist_edge.recognizer import Recognizer
from audiomnist_edge.resample import resample
from audiomnist_edge.wav import read_wav

from .clips import REPO, default_fsdd
from .stream_bench import NON_DIGIT_WORDS, RESULTS, corpus_clips, synth_words

RATE = 8000
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en+m3", "en-gb-x-rp+f2")
KEEP = (0.99, 0.95, 0.90, 0.85)


def espeak_words(cache: Path) -> list[Path]:
    """Non-digit words by espeak-ng voices (the calibration voices), cached."""
    if shutil.which("espeak-ng") is None:
        raise click.ClickException("espeak-ng is needed to calibrate: apt-get install espeak-ng")
    out = []
    for voice in ESPEAK_VOICES:
        for word in NON_DIGIT_WORDS:
            path = cache / voice / f"{word}.wav"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), word], check=True,
                               capture_output=True)
            out.append(path)
    return out


def confidence(model: Model, path: Path, rng: np.random.Generator) -> float | None:
    """The confidence listen would give the longest utterance of a clip padded with quiet noise."""
    samples, rate = read_wav(path)
    samples = resample(samples, rate, RATE)
    pad = np.zeros(RATE // 2, dtype=np.float32)
    x = np.concatenate([pad, samples, pad])
    x = np.clip(x + rng.normal(0, 10 ** (-60 / 20), len(x)), -1, 1).astype(np.float32)
    recognizer = Recognizer(model, RATE, min_confidence=0)
    found = recognizer.feed(x) + recognizer.finish()
    if not found:
        return None
    best = max(found, key=lambda d: d.end - d.start)
    return best.confidence if best.label.isdigit() else 0.0


def confidences(model: Model, paths: list[Path], seed: int) -> np.ndarray:
    """Confidences of the clips in which an utterance was found."""
    rng = np.random.default_rng(seed)
    values = [confidence(model, p, rng) for p in paths]
    return np.array([v for v in values if v is not None])


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--per-set", type=click.IntRange(50, None), default=600, show_default=True,
              help="At most this many clips per set (spread evenly).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS,
              show_default=True)
def main(model_path: str | None, per_set: int, seed: int, out: Path) -> None:
    """Calibrate --min-confidence thresholds and measure them on unseen voices."""
    started = time.perf_counter()
    model = Model.load(model_path)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiomnist-edge"

    def spread(paths: list[Path]) -> list[Path]:
        return paths[::max(1, len(paths) // per_set)][:per_set]

    sets = {
        "espeak-ng non-digit words (calibration)": spread(espeak_words(cache / "nondigit-espeak-v1")),
        "FSDD training takes 5-49, digits (calibration)":
            spread([p for _, p in corpus_clips(default_fsdd(), lambda take: take >= 5)]),
        "flite + festival non-digit words (unseen voices)":
            spread([p for _, p in synth_words(cache / "nondigit-v1")]),
        "HD-EN digits (unseen speakers)":
            spread([p for _, p in corpus_clips(REPO.parent / "shared" / "datasets" / "hd-en",
                                                lambda take: True)]),
    }
    values = {name: confidences(model, paths, seed) for name, paths in sets.items()}
    names = list(values)
    rows = []
    for keep in KEEP:
        threshold = float(np.quantile(values[names[1]], 1 - keep))
        rows.append({"keep_training_digits": keep, "min_confidence": round(threshold, 4),
                     **{name: round(float(np.mean(v >= threshold)), 4) for name, v in values.items()}})
    rows.append({"keep_training_digits": None, "min_confidence": 0.5,
                 **{name: round(float(np.mean(v >= 0.5)), 4) for name, v in values.items()}})
    results = {"model": str(model.path), "seed": seed, "clips": {n: len(v) for n, v in values.items()},
               "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "rejection.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Rejection gate\n", "`python -m benchmarks.rejection_gate` "
             f"(model `{Path(results['model']).name}`, seed {seed}). Share of clips whose decision "
             "passes the gate (is reported as a digit); clips counted: "
             + ", ".join(f"{n}: {c}" for n, c in results["clips"].items()) + ".\n",
             "| threshold chosen to keep | --min-confidence | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for row in rows:
        keep = "(the default)" if row["keep_training_digits"] is None else \
            f"{row['keep_training_digits']:.0%} of training digits"
        lines.append(f"| {keep} | {row['min_confidence']:.3f} | "
                     + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
    report = "\n".join(lines) + "\n"
    (out / "rejection.md").write_text(report)
    click.echo(report)


if __name__ == "__main__":
    main()
