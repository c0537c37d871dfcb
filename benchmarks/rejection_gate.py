"""Calibrating the confidence gate that turns non-digit speech into "unknown".

The gate has two thresholds. ``--min-confidence``: a digit decided with a lower
probability is reported as unknown. ``--unknown-at``: a model with an
``unknown`` class decides it whenever that class has at least this probability
(below 0.5 even where a digit is more probable). Each is swept with the other
at its default. Thresholds are
calibrated on espeak-ng voices saying non-digit words and on digits of
speakers the model was trained on, each threshold keeping a given share of
those digits; each is then measured on voices used for neither: flite (rms,
slt) and festival (ked) saying non-digit words (three people whose non-digit
speech no model hears, nor, in the default recipe, their digits; the unknown
class is trained on other words by espeak-ng and the kal and awb voices), digits
of held-out speakers, and those digits played backwards (real held-out voices
making speech-like sounds that are no digit: the nearest this benchmark gets to
their non-digit words).

* ``--folds RUN`` (a run of ``audiomnist-edge evaluate RUN --folds``): each
  fold's int8 model is calibrated on its own training speakers' digits (every
  corpus of the run) and measured on its own held-out speakers; thresholds are
  per fold (the table gives their mean), shares pooled over folds. Writes
  rejection-folds.md/.json.
* ``--model`` (default: the packaged model): calibrated on FSDD's training
  takes 5-49, measured on HD-EN's 10 speakers, which are held out only for a
  model trained without HD-EN. Writes rejection.md/.json.

    python -m benchmarks.rejection_gate --folds runs/RUN
    python -m benchmarks.rejection_gate
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.model import UNKNOWN_AT, Model
from audiomnist_edge.recognizer import MIN_CONFIDENCE, Recognizer
from audiomnist_edge.resample import resample
from audiomnist_edge.wav import read_wav

from .clips import REPO, default_fsdd, repo_relative
from .stream_bench import (NON_DIGIT_WORDS, RESULTS, clip_speakers, corpus_clips, load_folds, speaker_clips,
                           synth_words)

RATE = 8000
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en+m3", "en-gb-x-rp+f2")
KEEP = (0.99, 0.95, 0.90, 0.85)
FIXED = (0.3, 0.4, 0.5)
"""--min-confidence thresholds reported as they are, whatever share of digits they keep (the default among them)."""
FIXED_UNKNOWN = (0.8, 0.5, 0.3, 0.2)
"""--unknown-at thresholds reported as they are (the default among them)."""


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


def scores(model: Model, path: Path, rng: np.random.Generator, backwards: bool = False) -> tuple[float, float] | None:
    """(best digit's probability, best non-digit label's probability) that listen gives the
    longest utterance of a clip (played backwards if ``backwards``) padded with quiet noise;
    None when no utterance is found. The second is 0 for a model with digit labels only."""
    samples, rate = read_wav(path)
    samples = resample(samples, rate, RATE)
    if backwards:
        samples = samples[::-1].copy()
    pad = np.zeros(RATE // 2, dtype=np.float32)
    x = np.concatenate([pad, samples, pad])
    x = np.clip(x + rng.normal(0, 10 ** (-60 / 20), len(x)), -1, 1).astype(np.float32)
    recognizer = Recognizer(model, RATE, min_confidence=0, top_k=len(model.labels))
    found = recognizer.feed(x) + recognizer.finish()
    if not found:
        return None
    top = max(found, key=lambda d: d.end - d.start).top
    return (max(p for label, p in top if label.isdigit()),
            max([p for label, p in top if not label.isdigit()], default=0.0))


Scores = list[tuple[float, float] | None]


def clip_scores(model: Model, paths: list[Path], seed: int, backwards: bool = False) -> Scores:
    """``scores`` of each clip, in order, their noise drawn from one generator seeded ``seed``."""
    rng = np.random.default_rng(seed)
    return [scores(model, p, rng, backwards) for p in paths]


def found(values: Scores) -> np.ndarray:
    """The ``clip_scores`` of the clips in which an utterance was found, shape (n, 2)."""
    return np.array([v for v in values if v is not None]).reshape(-1, 2)


def passes(v: np.ndarray, min_confidence: float, unknown_at: float) -> np.ndarray:
    """Which clips (``found`` rows) are reported as a digit: ``decision_indices``'s rule
    (not unknown unless it reaches ``unknown_at``), then the digit's ``min_confidence``."""
    return (v[:, 1] < unknown_at) & (v[:, 0] >= min_confidence)


def group_shares(per_model: list[Scores], groups: list[str]) -> dict[str, dict[str, float]]:
    """Per group (a voice, a word), the clips in which an utterance was found and the share of
    them reported as a digit at the default gates, pooled over the models; ``per_model`` holds
    each model's ``clip_scores`` of the same clips, ``groups`` the group of each clip."""
    pooled: dict[str, Scores] = {}
    for values in per_model:
        for group, v in zip(groups, values):
            pooled.setdefault(group, []).append(v)
    shares = {}
    for group, values in pooled.items():
        rows = found(values)
        if len(rows):
            shares[group] = {"clips": len(rows), "share": round(float(np.mean(passes(rows, MIN_CONFIDENCE,
                                                                                       UNKNOWN_AT))), 4)}
    return shares


def sample(paths: list[Path], count: int, rng: np.random.Generator) -> list[Path]:
    """At most ``count`` of the paths, drawn at random (a fixed stride can land on one speaker), in order."""
    return [paths[i] for i in sorted(rng.choice(len(paths), min(count, len(paths)), replace=False))]


ESPEAK_SET = "espeak-ng non-digit words (calibration)"
UNSEEN_WORDS_SET = "flite + festival non-digit words (unseen people and words)"
BACKWARDS = "played backwards"
"""Sets whose name ends so are digits played backwards: speech-like sounds of real voices, no digit."""


def set_scores(model: Model, sets: dict[str, list[Path]], seed: int) -> dict[str, Scores]:
    """Each set's ``clip_scores`` (the clips reversed for a set named ``... played backwards``)."""
    return {name: clip_scores(model, paths, seed, name.endswith(BACKWARDS)) for name, paths in sets.items()}


def gate_rows(per_model: list[dict[str, np.ndarray]], knob: str = "min_confidence") -> list[dict[str, Any]]:
    """One row per share of calibration digits kept, and one per fixed threshold (the default among them).

    ``per_model`` holds each model's ``found`` scores per set, the calibration
    digits second; ``knob`` is the threshold that moves ("min_confidence", the
    other at UNKNOWN_AT, or "unknown_at", the other at MIN_CONFIDENCE). Each model
    gets its own threshold (the row's value is their mean) and a set's share is
    pooled over models.
    """
    names = list(per_model[0])
    by_confidence = knob == "min_confidence"
    column, fixed_values = (0, FIXED) if by_confidence else (1, FIXED_UNKNOWN)

    def gates(t: float) -> tuple[float, float]:
        """(min_confidence, unknown_at) with the moving one at ``t``."""
        return (t, UNKNOWN_AT) if by_confidence else (MIN_CONFIDENCE, t)

    rows = []
    for keep, fixed in [(k, None) for k in KEEP] + [(None, t) for t in fixed_values]:
        if keep is None:
            thresholds = [fixed] * len(per_model)
        else:  # a digit passes above a min_confidence, below an unknown_at
            quantile = 1 - keep if by_confidence else keep
            thresholds = [float(np.quantile(v[names[1]][:, column], quantile)) for v in per_model]
        row: dict[str, Any] = {"keep_training_digits": keep, knob: round(float(np.mean(thresholds)), 4)}
        if len(per_model) > 1:
            row[f"{knob}_per_fold"] = [round(t, 4) for t in thresholds]
        for name in names:
            passed = sum(int(np.sum(passes(v[name], *gates(t)))) for v, t in zip(per_model, thresholds))
            row[name] = round(passed / max(1, sum(len(v[name]) for v in per_model)), 4)
        rows.append(row)
    return rows


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--folds", "folds_run", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A run of `audiomnist-edge evaluate RUN --folds`: each fold's int8 model, calibrated on its "
                   "training speakers and measured on its held-out ones; writes rejection-folds.md/.json.")
@click.option("--per-set", type=click.IntRange(1, None), default=600, show_default=True,
              help="At most this many clips per set (spread evenly; with --folds: digits drawn at random, per fold).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS,
              show_default=True)
def main(model_path: str | None, folds_run: Path | None, per_set: int, seed: int, out: Path) -> None:
    """Calibrate --min-confidence and --unknown-at thresholds and measure them on unseen voices."""
    if model_path and folds_run:
        raise click.UsageError("give --model or --folds, not both")
    started = time.perf_counter()
    try:
        folds, ds = load_folds(folds_run) if folds_run else ([], None)
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiomnist-edge"

    def spread(paths: list) -> list:
        return paths[::max(1, len(paths) // per_set)][:per_set]

    calibration_words = spread(espeak_words(cache / "nondigit-espeak-v1"))
    unseen_by_voice = spread(synth_words(cache / "nondigit-v1"))
    unseen_words = [p for _, p in unseen_by_voice]
    results: dict[str, Any] = {"seed": seed}
    if folds_run is None:
        model = Model.load(model_path)
        sets = {
            ESPEAK_SET: calibration_words,
            "FSDD training takes 5-49, digits (calibration)":
                spread([p for _, p in corpus_clips(default_fsdd(), lambda take: take >= 5)]),
            UNSEEN_WORDS_SET: unseen_words,
            "HD-EN digits (held out only if the model was trained without HD-EN)":
                spread([p for _, p in corpus_clips(REPO.parent / "shared" / "datasets" / "hd-en",
                                                    lambda take: True)]),
        }
        results["model"] = repo_relative(model.path)
        sets["HD-EN digits " + BACKWARDS] = sets[list(sets)[-1]]
        per_model_scores = [set_scores(model, sets, seed)]
    else:
        results.update(model=str(folds_run), folds=[])
        per_model_scores = []
        for fold in folds:
            rng = np.random.default_rng([seed, fold.fold])
            trained = sample([p for clips in speaker_clips(ds, fold.test_speakers, keep=False).values()
                              for p in clips], per_set, rng)
            held = sample([p for clips in speaker_clips(ds, fold.test_speakers).values() for p in clips],
                          per_set, rng)
            sets = {ESPEAK_SET: calibration_words,
                    "digits of each fold's training speakers (calibration)": trained,
                    UNSEEN_WORDS_SET: unseen_words,
                    "digits of each fold's held-out speakers": held,
                    "the held-out speakers' digits " + BACKWARDS: held}
            per_model_scores.append(set_scores(fold.model, sets, seed))
            results["folds"].append({"fold": fold.fold, "test_speakers": fold.test_speakers,
                                     "model": str(fold.path), "calibration_speakers": clip_speakers(trained),
                                     "held_out_speakers": clip_speakers(held),
                                     "clips": {n: len(found(v)) for n, v in per_model_scores[-1].items()}})
    per_model = [{name: found(values) for name, values in each.items()} for each in per_model_scores]
    names = list(per_model[0])
    results["clips"] = {n: sum(len(v[n]) for v in per_model) for n in names}
    results["rows"] = gate_rows(per_model)
    models = [fold.model for fold in folds] if folds_run else [model]
    rejects = all(any(not label.isdigit() for label in m.labels) for m in models)
    results["unknown_rows"] = gate_rows(per_model, "unknown_at") if rejects else []
    unseen_scores = [each[UNSEEN_WORDS_SET] for each in per_model_scores]
    results["unseen_words_by_voice"] = group_shares(unseen_scores, [voice for voice, _ in unseen_by_voice])
    by_word = group_shares(unseen_scores, [path.stem for path in unseen_words])
    results["unseen_words_by_word"] = dict(sorted(by_word.items(), key=lambda item: (-item[1]["share"], item[0])))
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    stem = "rejection-folds" if folds_run else "rejection"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    command = "python -m benchmarks.rejection_gate" + (f" --folds {folds_run}" if folds_run else "")
    source = (f"{len(per_model)} fold models of `{folds_run.name}`, each with its own threshold (the mean is "
              "shown), shares pooled over folds" if folds_run else f"model `{Path(results['model']).name}`")
    lines = ["# Rejection gate\n", f"`{command}` ({source}, seed {seed}). Share of clips whose decision "
             "passes the gate (is reported as a digit); clips counted: "
             + ", ".join(f"{n}: {c}" for n, c in results["clips"].items()) + ".\n"]
    for knob, default, other in (("min_confidence", MIN_CONFIDENCE, f"--unknown-at {UNKNOWN_AT}"),
                                 ("unknown_at", UNKNOWN_AT, f"--min-confidence {MIN_CONFIDENCE}")):
        rows = results["rows" if knob == "min_confidence" else "unknown_rows"]
        if not rows:  # a model without an unknown label: --unknown-at does nothing
            continue
        option = "--" + knob.replace("_", "-")
        lines += [f"{option} moves ({other}):\n",
                  f"| threshold chosen to keep | {option} | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        for row in rows:
            keep = f"{row['keep_training_digits']:.0%} of training digits" if row["keep_training_digits"] \
                else "(the default)" if row[knob] == default else "(a fixed threshold)"
            lines.append(f"| {keep} | {row[knob]:.3f} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
        lines.append("")
    lines.append(f"{UNSEEN_WORDS_SET} reported as digits at the default gates, by voice: "
                 + ", ".join(f"{voice} {v['share']:.3f}" for voice, v in results["unseen_words_by_voice"].items())
                 + ".\n")
    passed = [(word, v) for word, v in results["unseen_words_by_word"].items() if v["share"] > 0]
    lines.append(f"The words most often reported as digits there ({len(passed)} of "
                 f"{len(results['unseen_words_by_word'])} words ever pass; share of their clips over voices and "
                 "models): " + ", ".join(f"{word} {v['share']:.2f}" for word, v in passed[:15]) + ".\n")
    report = "\n".join(lines)
    (out / f"{stem}.md").write_text(report)
    click.echo(report)


if __name__ == "__main__":
    main()
