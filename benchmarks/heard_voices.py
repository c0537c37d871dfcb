"""Rejection's ceiling: the rejection benchmark's own voices, heard in training.

``rejection_gate`` measures non-digit words said by flite's rms and slt and
festival's ked, three voices the default recipe never hears. This writes a
synthetic folder in which those same voices say the unknown class's
*training* words (``train/nondigit.py``'s WORDS, never the benchmark's
NON_DIGIT_WORDS), so a model trained with it has heard the voices but not the
words. With digits by the same voices (``synth --voices``, so no voice is
heard saying non-digits only), it shows how far rejection gets once a
user's voice is known (docs/listening.md, "Rejecting what is not a digit"):

    S=~/.cache/audiomnist-edge/synth
    python -m audiomnist_edge.train.synth --engine flite --speakers 160 --voices rms,slt --out $S/oracle-flite-rmsslt
    python -m audiomnist_edge.train.synth --engine festival --speakers 180 --voices ked_diphone \\
        --out $S/oracle-fest-ked
    python -m benchmarks.heard_voices --out $S/oracle-nd-rmssltked
    audiomnist-edge evaluate runs/default --folds --only 0 --out runs/oracle-voices \\
        --set "synth=[the four folders of runs/default/run.json, then the three above]"
    python -m benchmarks.rejection_gate --folds runs/oracle-voices --out benchmarks/results/heard-voices

The default's fold-0 model alone, for comparison: a copy of runs/default holding
folds/fold-0.tflite only (run.json, features.json, folds.json beside it), then
``rejection_gate --folds runs/default-f0 --out benchmarks/results/heard-voices/default-fold-0``.

Training data for a measurement, not for the default recipe. Needs flite, festival and sox.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click
import numpy as np
from audiomnist_edge.train.nondigit import WORDS
from audiomnist_edge.train.synth import PITCH_CENTS, TEMPO, _shift, speak_festival, speak_flite
from audiomnist_edge.wav import write_wav

from .stream_bench import FLITE_VOICES, NON_DIGIT_WORDS

FESTIVAL = "ked_diphone"
"""The festival voice rejection_gate measures (stream_bench.synth_words), beside its FLITE_VOICES."""
SEED = 7


def generate(out: Path, words: tuple[str, ...] = WORDS, rate: int = 8000, seed: int = SEED) -> list[Path]:
    """Write ``recordings/unknown_ndor{voice}_{w}.wav`` for each word and voice; the paths.

    Each clip has its own pitch shift (cents) and tempo, drawn as train/nondigit.py
    draws them for its recorded voices; the same seed gives the same clips.
    """
    if set(words) & set(NON_DIGIT_WORDS):
        raise ValueError("the benchmark's own words must stay unheard")
    rec = out / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths, festival = [], []
    for w, word in enumerate(words):
        for voice in FLITE_VOICES:
            path = rec / f"unknown_ndor{voice}_{w}.wav"
            cents, tempo = int(rng.integers(*PITCH_CENTS)), float(rng.uniform(*TEMPO))
            if not path.exists():
                write_wav(path, speak_flite(word, voice, cents, tempo, rate), rate)
            paths.append(path)
        festival.append((rec / f"unknown_ndor{FESTIVAL.split('_')[0]}_{w}.wav", word,
                         int(rng.integers(*PITCH_CENTS)), float(rng.uniform(*TEMPO))))
    todo = [job for job in festival if not job[0].exists()]
    if todo:
        with tempfile.TemporaryDirectory() as tmp:
            raw = speak_festival([j[1] for j in todo], FESTIVAL, [1.0 / j[3] for j in todo], Path(tmp))
            for (path, _, cents, _), wav in zip(todo, raw):
                write_wav(path, _shift(wav, rate, cents, 1.0), rate)
    return paths + [job[0] for job in festival]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The synthetic folder to write (its recordings/ hold the clips).")
@click.option("--words", "n_words", type=click.IntRange(1, len(WORDS)), default=len(WORDS), show_default=True,
              help="The first N of the unknown class's training words.")
def main(out: Path, n_words: int) -> None:
    """flite rms and slt and festival ked say the unknown class's training words (not the benchmark's)."""
    for program in ("flite", "festival", "sox"):
        if shutil.which(program) is None:
            click.echo(f"error: {program} is not installed (Debian/Ubuntu: apt-get install {program})", err=True)
            sys.exit(1)
    paths = generate(out, WORDS[:n_words])
    click.echo(f"{len(paths)} clips in {out / 'recordings'}")


if __name__ == "__main__":
    main()
