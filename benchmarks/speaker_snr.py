"""How loud each held-out speaker is, and what the quiet-20dB condition leaves of them.

The quiet-20dB capture condition (``train/conditions.py``) turns the speech
down by 20 dB and pads it with a white noise floor at -50 dBFS, whatever the
speaker's own level. Its signal-to-noise ratio therefore differs per speaker:
the speaker's active speech level (``capture.speech_power``: the 20 ms frames
within 30 dB of the loudest) - 20 dB + 50 dB. This benchmark prints that SNR for
every held-out speaker of a fold run, beside each fold model's accuracy on
that speaker under quiet-20dB and under white noise at fixed SNRs (relative to
the same active level, as the white-NdB conditions), so the two can be read
against each other.

    python -m benchmarks.speaker_snr --folds runs/default

Writes benchmarks/results/speaker-snr.{json,md,png}. Needs the [train] extra.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import numpy as np
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.train.capture import CaptureParams, db, random_capture, speech_power
from audiomnist_edge.train.conditions import CONDITIONS, DECISIONS, apply_condition, condition_rng, decider
from audiomnist_edge.wav import read_wav

from .stream_bench import RESULTS, load_folds

QUIET = "quiet-20dB"


def quiet_snr_db(level_dbfs: float) -> float:
    """The SNR in dB that quiet-20dB leaves speech of active level ``level_dbfs`` (dBFS) against its floor."""
    params = CONDITIONS[QUIET]
    assert params is not None and params.gain_db[0] == params.gain_db[1]
    assert params.floor_dbfs[0] == params.floor_dbfs[1] and params.floor_snr_db is None
    return level_dbfs + params.gain_db[0] - params.floor_dbfs[0]


def white_at(snr_db: float) -> CaptureParams:
    """The white-NdB condition's settings at ``snr_db`` (padded, white noise relative to the active speech)."""
    params = CONDITIONS["white-5dB"]
    assert params is not None
    return dataclasses.replace(params, snr_db=(snr_db, snr_db))


def plot(rows: list[dict], snrs: list[float], path: Path) -> None:
    """Accuracy against SNR per speaker (lines, coloured by corpus), each speaker's quiet-20dB result as a
    dot at the SNR it leaves them (named below 0.9)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    order = sorted(snrs)
    colours = {corpus: f"C{i}" for i, corpus in enumerate(sorted({row["corpus"] for row in rows}))}
    for corpus, colour in colours.items():
        ax.plot([], [], color=colour, label=corpus)
    for row in rows:
        colour = colours[row["corpus"]]
        ax.plot(order, [row["white"][f"{s:g}"] for s in order], color=colour, alpha=0.35, lw=1)
        ax.plot(row["quiet_snr_db"], row["quiet"], "o", color=colour)
        if row["quiet"] < 0.9:
            ax.annotate(row["speaker"], (row["quiet_snr_db"], row["quiet"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    ax.legend(loc="lower right")
    ax.set_xlabel("SNR against white noise, dB (relative to the active speech level)")
    ax.set_ylabel("accuracy (each fold's model on its own held-out speakers)")
    ax.set_title(f"lines: white noise at fixed SNRs; dots: {QUIET} at the SNR it leaves each speaker")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@click.command()
@click.option("--folds", "folds_run", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A run of `audiomnist-edge evaluate RUN --folds`.")
@click.option("--snr", "snrs", default="10,5,0,-5,-10", show_default=True,
              help="White-noise SNRs in dB, comma-separated.")
@click.option("--every", type=click.IntRange(1, None), default=4, show_default=True,
              help="Score every N-th held-out clip of each speaker.")
@click.option("--decision", type=click.Choice(DECISIONS), default="clip", show_default=True,
              help="clip: one decision per clip, as the condition tables; predict: what `predict` reports.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS, show_default=True)
def main(folds_run: Path, snrs: str, every: int, decision: str, seed: int, out: Path) -> None:
    """Each held-out speaker's speech level, the SNR quiet-20dB leaves them, and accuracy against SNR."""
    started = time.perf_counter()
    try:
        snr_values = [float(s) for s in snrs.split(",")]
    except ValueError:
        click.echo(f"error: --snr takes numbers separated by commas, not {snrs!r}", err=True)
        sys.exit(2)
    try:
        folds, ds = load_folds(folds_run)
    except EdgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    level: dict[str, list[float]] = defaultdict(list)  # active speech level per clip, dBFS
    right: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    home: dict[str, tuple[int, str]] = {}
    for fold in folds:
        by_speaker: dict[str, list] = defaultdict(list)
        for index, clip in enumerate(ds.clips):  # the index seeds the clip's condition audio
            if clip.speaker in fold.test_speakers:
                by_speaker[clip.speaker].append((index, clip))
        chosen = [item for items in by_speaker.values() for item in items[::every]]
        decide = decider(fold.model, decision)
        with click.progressbar(chosen, label=f"fold {fold.fold}", file=sys.stderr) as items:
            for index, clip in items:
                samples, rate = read_wav(clip.path)
                home[clip.speaker] = (fold.fold, clip.corpus)
                level[clip.speaker].append(db(speech_power(samples, rate)))
                quiet = apply_condition(samples, rate, QUIET, seed, index)
                right[clip.speaker][QUIET].append(decide(quiet, rate) == clip.digit)
                for snr in snr_values:
                    rng = condition_rng(seed, f"white-{snr:g}dB", index)
                    noisy = random_capture(samples, rate, rng, white_at(snr))
                    right[clip.speaker][f"{snr:g}"].append(decide(noisy, rate) == clip.digit)
    rows = []
    for speaker in sorted(level, key=lambda s: np.median(level[s])):
        snr = [quiet_snr_db(v) for v in level[speaker]]
        rows.append({"speaker": speaker, "fold": home[speaker][0], "corpus": home[speaker][1],
                     "clips": len(snr), "level_dbfs": round(float(np.median(level[speaker])), 2),
                     "quiet_snr_db": round(float(np.median(snr)), 2),
                     "quiet_below_0db": float(np.mean(np.asarray(snr) < 0)),
                     "quiet": float(np.mean(right[speaker][QUIET])),
                     "white": {f"{s:g}": float(np.mean(right[speaker][f"{s:g}"])) for s in snr_values}})
    results: dict[str, Any] = {"run": str(folds_run), "folds": [f.fold for f in folds], "every": every,
                               "decision": decision, "seed": seed, "snr_db": snr_values, "speakers": rows,
                               "seconds": round(time.perf_counter() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "speaker-snr.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(rows, snr_values, out / "speaker-snr.png")
    report = markdown(results)
    (out / "speaker-snr.md").write_text(report)
    click.echo(report)


def markdown(results: dict) -> str:
    """The report of ``results`` (speaker-snr.json's content)."""
    snr_cols = [f"{s:g}" for s in results["snr_db"]]
    quiet = CONDITIONS[QUIET]
    assert quiet is not None
    lines = ["# Held-out speakers' level and the quiet-20dB condition\n",
             f"`python -m benchmarks.speaker_snr --folds {results['run']}` ({len(results['folds'])} fold models, "
             f"each on every {results['every']}th clip of its own held-out speakers, decision `{results['decision']}`,"
             f" seed {results['seed']}). Level: the median over the speaker's clips of their active speech level as "
             f"recorded (dBFS). {QUIET} SNR: that level {quiet.gain_db[0]:+g} dB against the "
             f"{quiet.floor_dbfs[0]:g} dBFS white floor (median; and the share of clips it leaves below 0 dB). "
             "White noise columns: accuracy with white noise at that SNR "
             "relative to each clip's active speech, padded as the conditions.\n",
             "![accuracy against SNR](speaker-snr.png)\n",
             f"| speaker | corpus | fold | clips | level | {QUIET} SNR | below 0 dB | {QUIET} | "
             + " | ".join(f"white {c} dB" for c in snr_cols) + " |",
             "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(snr_cols)]
    for r in results["speakers"]:
        lines.append(f"| {r['speaker']} | {r['corpus']} | {r['fold']} | {r['clips']} | {r['level_dbfs']:.1f} | "
                     f"{r['quiet_snr_db']:+.1f} | {r['quiet_below_0db']:.2f} | **{r['quiet']:.3f}** | "
                     + " | ".join(f"{r['white'][c]:.3f}" for c in snr_cols) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
