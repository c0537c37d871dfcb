"""What `predict --background-db DB` changes: each fold's held-out clips under the capture conditions.

Each fold's int8 model (a run of ``audiomnist-edge evaluate RUN --folds``) decides
its own held-out speakers' clips as ``predict`` does (segmentation, shift and
warp averaging, confidence gate; right only when exactly the spoken digit is
reported), once without the background gate and once with it, on the same
seeded audio of ``train/conditions.py``. Babble there is made of other held-out
speakers' digits 5-20 dB below the spoken one: talk the gate is meant to drop
when it follows a louder digit. Every other condition shows what it costs.

    python -m benchmarks.background_gate --folds runs/default

Writes benchmarks/results/background.{json,md}. Needs the [train] extra.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.train.conditions import CONDITIONS, decider, generate

from .stream_bench import RESULTS, load_folds, speaker_clips


@click.command()
@click.option("--folds", "folds_run", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A run of `audiomnist-edge evaluate RUN --folds`.")
@click.option("--background-db", type=click.FloatRange(0, min_open=True), default=12.0, show_default=True,
              help="The gate measured against no gate.")
@click.option("--every", type=click.IntRange(1, None), default=4, show_default=True,
              help="Score every N-th held-out clip of each fold.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS, show_default=True)
def main(folds_run: Path, background_db: float, every: int, seed: int, out: Path) -> None:
    """Accuracy of what predict reports, without and with --background-db, per capture condition."""
    started = time.perf_counter()
    try:
        folds, ds = load_folds(folds_run)
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    gates: dict[str, float | None] = {"off": None, f"--background-db {background_db:g}": background_db}
    correct = {gate: dict.fromkeys(CONDITIONS, 0) for gate in gates}
    clips_scored = 0
    for fold in folds:
        paths = [p for ps in speaker_clips(ds, fold.test_speakers).values() for p in ps][::every]
        clips = [(p, int(p.name.split("_")[0])) for p in paths]
        clips_scored += len(clips)
        deciders = {gate: decider(fold.model, "predict", background_db=db) for gate, db in gates.items()}
        with click.progressbar(generate(clips, seed), length=len(CONDITIONS) * len(clips),
                               label=f"fold {fold.fold}", file=sys.stderr) as items:
            for name, _, samples, rate, digit in items:  # each condition's audio made once, decided both ways
                for gate, decide in deciders.items():
                    correct[gate][name] += int(decide(samples, rate) == digit)
    accuracy = {gate: {name: c / clips_scored for name, c in rows.items()} for gate, rows in correct.items()}
    results: dict[str, Any] = {"run": str(folds_run), "folds": [f.fold for f in folds], "every": every,
                               "clips": clips_scored, "seed": seed, "accuracy": accuracy,
                               "mean": {gate: float(np.mean(list(a.values()))) for gate, a in accuracy.items()},
                               "seconds": round(time.perf_counter() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "background.json").write_text(json.dumps(results, indent=2) + "\n")
    off, on = gates
    lines = ["# Background gate\n",
             f"`python -m benchmarks.background_gate --folds {folds_run}` ({len(folds)} fold models, each on "
             f"every {every}th clip of its own held-out speakers: {clips_scored} clips per condition, seed {seed}). "
             "Accuracy of what `predict` reports (exactly the spoken digit), without and with the gate.\n",
             f"| condition | {off} | {on} | change |", "|---|---:|---:|---:|"]
    for name in [*CONDITIONS, "mean"]:
        a, b = (results["mean"][g] if name == "mean" else accuracy[g][name] for g in gates)
        lines.append(f"| {name} | {a:.3f} | {b:.3f} | {100 * (b - a):+.1f} |")
    report = "\n".join(lines) + "\n"
    (out / "background.md").write_text(report)
    click.echo(report)


if __name__ == "__main__":
    main()
