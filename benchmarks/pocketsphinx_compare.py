"""Accuracy baseline: our int8 model against PocketSphinx under the capture conditions.

PocketSphinx 5 (pip ``pocketsphinx``, with its bundled en-us acoustic model)
is restricted by a JSGF grammar to exactly one of the ten digit words; clips
are resampled to its 16 kHz. Both recognisers get the same audio, clip after
clip, from ``train/conditions.py``'s seeded generator, and both are timed per
clip in the same run (samples at the clip's rate -> digit).

    python -m benchmarks.pocketsphinx_compare --model edge/models/default.tflite \\
        --data ../shared/datasets/hd-en --official ../shared/datasets/fsdd --max-clips 300

Writes benchmarks/results/conditions.{json,md} (``--name`` for another name). Needs the [train] and [dev] extras.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.model import Model
from audiomnist_edge.resample import resample
from audiomnist_edge.train.conditions import (
    CONDITIONS,
    DESCRIPTIONS,
    decider,
    generate,
    held_out_clips,
)
from audiomnist_edge.train.datasets import load, official_split

from .clips import repo_relative

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GRAMMAR = f"""#JSGF V1.0;
grammar digits;
public <digit> = {' | '.join(WORDS)};
"""


class PocketSphinxDigits:
    """PocketSphinx's en-us model with a one-digit-word JSGF grammar: samples -> digit or None."""

    rate = 16000

    def __init__(self) -> None:
        import pocketsphinx

        self.version = _version("pocketsphinx")
        self._decoder = pocketsphinx.Decoder(pocketsphinx.Config(lm=None, loglevel="FATAL"))
        self._decoder.add_jsgf_string("digits", GRAMMAR)
        self._decoder.activate_search("digits")

    def __call__(self, samples: np.ndarray, rate: int) -> int | None:
        x = resample(samples, rate, self.rate) if rate != self.rate else samples
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        return WORDS.index(words[0]) if words and words[0] in WORDS else None


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def ours(model: Model):
    """Our decision on a clip: one digit for the whole clip, as PocketSphinx's one-word grammar gives."""
    return decider(model, "clip")


def subsample(clips: list, max_clips: int | None, seed: int) -> list:
    """A seeded subset of at most ``max_clips`` clips, in their original order."""
    if max_clips is None or len(clips) <= max_clips:
        return clips
    keep = np.sort(np.random.default_rng(seed).choice(len(clips), max_clips, replace=False))
    return [clips[i] for i in keep]


def compare(recognisers: dict, clips: Sequence[tuple[Path, int]], seed: int = 0,
            conditions: Sequence[str] | None = None, progress: bool = True) -> dict:
    """Accuracy per condition and per-clip time of each recogniser, on the same generated audio.

    Recognisers take turns on every clip (interleaved), so both see the same
    machine load. Returns {"accuracy": {recogniser: {condition: fraction}},
    "mean": {recogniser: mean over conditions}, "ms_per_clip": {recogniser:
    {"p50", "mean"}}, "n": clips}.
    """
    names = list(conditions or CONDITIONS)
    correct = {r: dict.fromkeys(names, 0) for r in recognisers}
    seconds: dict[str, list[float]] = {r: [] for r in recognisers}

    def run(items) -> None:
        for name, _, samples, rate, digit in items:
            for r, classify in recognisers.items():
                t0 = time.perf_counter()
                guess = classify(samples, rate)
                seconds[r].append(time.perf_counter() - t0)
                correct[r][name] += int(guess == digit)

    items = generate(clips, seed, names)
    if progress:
        with click.progressbar(items, length=len(names) * len(clips), label="conditions",
                               file=sys.stderr) as bar:
            run(bar)
    else:
        run(items)
    n = len(clips)
    accuracy = {r: {c: correct[r][c] / n for c in names} for r in recognisers}
    return {
        "n": n, "seed": seed,
        "accuracy": accuracy,
        "mean": {r: float(np.mean(list(a.values()))) for r, a in accuracy.items()},
        "ms_per_clip": {r: {"p50": 1000 * float(np.median(s)), "mean": 1000 * float(np.mean(s))}
                        for r, s in seconds.items()},
    }


def pooled(sets: list[dict]) -> dict:
    """Accuracy per recogniser and condition over every clip of every set (weighted by clips)."""
    n = sum(s["result"]["n"] for s in sets)
    first = sets[0]["result"]["accuracy"]
    accuracy = {r: {c: sum(s["result"]["accuracy"][r][c] * s["result"]["n"] for s in sets) / n
                    for c in first[r]} for r in first}
    return {"n": n, "accuracy": accuracy,
            "mean": {r: float(np.mean(list(a.values()))) for r, a in accuracy.items()}}


def markdown(result: dict) -> str:
    lines = [f"# Capture conditions: our int8 model vs PocketSphinx ({result['pocketsphinx']} + digit grammar)",
             "", f"Generated {result['generated']} by `{result['command']}` on {result['machine']}.",
             f"Model: `{result['model']}`. Conditions from `train/conditions.py`, seed {result['seed']}.", ""]
    sets = list(result["sets"])
    if "pooled" in result:
        sets.insert(0, {"label": "all sets pooled", "result": result["pooled"],
                        "description": "Every clip of the sets below, each scored by its own model."})
    for s in sets:
        r = s["result"]
        lines += [f"## {s['label']}: {r['n']} clips", "", s["description"], "",
                  "| condition | ours (int8) | PocketSphinx | description |", "|---|---:|---:|---|"]
        for c in r["accuracy"]["ours"]:
            o, p = r["accuracy"]["ours"][c], r["accuracy"]["pocketsphinx"][c]
            lines.append(f"| {c} | {'**' if o > p else ''}{o:.1%}{'**' if o > p else ''} | {p:.1%} "
                         f"| {DESCRIPTIONS[c]} |")
        lines.append(f"| mean | {r['mean']['ours']:.1%} | {r['mean']['pocketsphinx']:.1%} | |")
        if "ms_per_clip" not in r:
            lines.append("")
            continue
        ms_o, ms_p = r["ms_per_clip"]["ours"]["p50"], r["ms_per_clip"]["pocketsphinx"]["p50"]
        lines += ["", (f"Per clip (samples -> digit, median over every clip and condition): ours "
                       f"{ms_o:.2f} ms, PocketSphinx {ms_p:.2f} ms ({ms_p / ms_o:.0f}x)."), ""]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="int8 model (default: RUN/model-int8.tflite with --run, else the packaged model).")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="Score this run's held-out clips.")
@click.option("--folds", "folds_run", type=click.Path(exists=True, file_okay=False),
              help="A run scored with `evaluate RUN --folds`: every fold's int8 model on its own "
                   "held-out speakers (speakers it never heard).")
@click.option("--corpus", type=click.Path(exists=True, file_okay=False), default=None,
              help="With --folds: only the held-out clips of this corpus (e.g. ../shared/datasets/hd-en); "
                   "writes conditions-NAME.{json,md}.")
@click.option("--data", "all_of", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Score every clip of this corpus (e.g. speakers the model never heard); repeatable.")
@click.option("--official", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Score this FSDD corpus's official test takes (0-4); repeatable.")
@click.option("--max-clips", type=click.IntRange(1), default=None,
              help="Seeded subsample of at most this many clips per set.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--conditions", "only", default=None, help="Comma-separated condition names (default: all).")
@click.option("--out", type=click.Path(file_okay=False), default=str(RESULTS), show_default=True)
@click.option("--name", default=None,
              help="File name of the report, NAME.{json,md} (default: conditions, or conditions-CORPUS "
                   "with --corpus), e.g. conditions-heard for speakers the model was trained on.")
def main(model_path, run_dir, folds_run, corpus, all_of, official, max_clips, seed, only, out, name) -> None:
    """Our int8 model vs PocketSphinx (digit grammar) under every capture condition."""
    try:
        if name is not None and (not name or Path(name).name != name):
            raise EdgeError(f"--name {name!r}: give a file name without a folder")
        sets = []
        if run_dir:
            clips, split = held_out_clips(run_dir)
            sets.append((Path(run_dir).name, clips, f"Held-out clips of the run ({split})."))
            model_path = model_path or str(Path(run_dir) / "model-int8.tflite")
        for folder in all_of:
            ds = load(folder)
            sets.append((Path(folder).name, [(c.path, c.digit) for c in ds.clips],
                         f"Every clip of `{folder}` ({len(ds.speakers)} speakers)."))
        for folder in official:
            ds = load(folder)
            test = official_split(ds).test
            sets.append((f"{Path(folder).name} takes 0-4", [(ds.clips[i].path, ds.clips[i].digit) for i in test],
                         f"The official test takes (0-4) of `{folder}`."))
        models: dict[str, Model] = {}
        if corpus and not folds_run:
            raise EdgeError("--corpus needs --folds")
        if folds_run:
            from audiomnist_edge.train.evaluate import fold_held_out, fold_model

            root = Path(corpus).resolve() if corpus else None
            for k, speakers, clips in fold_held_out(folds_run):
                if root is not None:
                    clips = [(p, d) for p, d in clips if root in Path(p).resolve().parents]
                    speakers = sorted({Path(p).stem.split("_")[1] for p, _ in clips})
                    if not clips:
                        continue
                label = f"fold {k} ({', '.join(speakers)})"
                models[label] = fold_model(folds_run, k)
                sets.append((label, clips, f"Fold {k}'s held-out speakers ({', '.join(speakers)}), "
                             f"scored by that fold's int8 model (`{folds_run}/folds/fold-{k}.tflite`)."))
        if not sets:
            raise EdgeError("nothing to score: give --run, --folds, --data or --official")
        model = Model.load(model_path) if len(models) < len(sets) else next(iter(models.values()))
        sphinx = PocketSphinxDigits()
        recognisers = {"ours": ours(model), "pocketsphinx": sphinx}
        names = only.split(",") if only else None
        shown = "each fold's own int8 model" if len(models) == len(sets) else repo_relative(model.path)
        result = {"generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "command": "python -m benchmarks.pocketsphinx_compare " + " ".join(sys.argv[1:]),
                  "machine": f"{platform.machine()}, {platform.python_version()}",
                  "model": shown,
                  "pocketsphinx": f"pocketsphinx {recognisers['pocketsphinx'].version}",
                  "seed": seed, "sets": []}
        for label, clips, description in sets:
            chosen = subsample(clips, max_clips, seed)
            if len(chosen) < len(clips):
                description += f" Seeded subsample: {len(chosen)} of {len(clips)} clips."
            click.echo(f"{label}: {len(chosen)} clips", err=True)
            scorers = {"ours": ours(models[label]), "pocketsphinx": sphinx} if label in models else recognisers
            result["sets"].append({"label": label, "description": description,
                                   "result": compare(scorers, chosen, seed, names)})
        if len(result["sets"]) > 1:
            result["pooled"] = pooled(result["sets"])
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    stem = name or (f"conditions-{Path(corpus).resolve().name}" if corpus else "conditions")
    (target / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (target / f"{stem}.md").write_text(markdown(result))
    click.echo(markdown(result))


if __name__ == "__main__":
    main()
