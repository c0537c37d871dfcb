"""Stream benchmark: digits spoken at a natural pace, found and decided by the listen path.

Seeded streams of numbers of 3-5 digits with 0.15-0.4 s between digits (a
PIN) and 0.8-1.5 s between numbers are put through each capture condition of
``train/conditions.py`` (its rooms, hum and telephone band from
``train/capture.py``) and fed, in 50 ms blocks, to ``Recognizer`` (what
``listen`` and ``predict`` run). False alarms per hour are measured on long
noise and hum streams and on non-digit English words spoken by three people's
synthetic voices whose non-digit speech no model is trained on (flite's rms and
slt, festival's ked; the default recipe's synthetic digits leave them out too,
``synth --voices``, and the unknown class of ``train/nondigit.py`` uses other
people and other words).

Which speakers are held out depends on the mode:

* ``--folds RUN`` (a run of ``audiomnist-edge evaluate RUN --folds``): each
  fold's int8 model (``RUN/folds/fold-K.tflite``) decides streams built only
  from that fold's test speakers (every corpus of the run), so no stream holds a
  speaker its model was trained on; scores are pooled over folds (and given per
  fold), false alarms summed over the fold models. Writes stream-folds.md/.json.
* ``--model`` (default: the packaged model): HD-EN's 10 speakers and FSDD's
  official test takes 0-4. FSDD's speakers are always heard in training (takes
  5-49); HD-EN's are unseen only for a model trained without HD-EN, which is
  not the case for a model trained on all 16 speakers. Writes stream.md/.json.

    python -m benchmarks.stream_bench --folds runs/RUN      # held-out speakers of every fold
    python -m benchmarks.stream_bench                       # the packaged model, 1 h of noise and hum
    python -m benchmarks.stream_bench --noise-minutes 5 --digits 60   # a quick look

``--background-db DB`` listens with that background gate (``Recognizer``'s
``background_db``) and writes stream[-folds]-background.md/.json beside the
results without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from audiomnist_edge.config import FeatureParams
from audiomnist_edge.errors import EdgeError
from audiomnist_edge.features import speech_bounds
from audiomnist_edge.model import Model
from audiomnist_edge.recognizer import MIN_CONFIDENCE, Detection, Recognizer
from audiomnist_edge.resample import resample
from audiomnist_edge.stream import GateParams
from audiomnist_edge.train import capture
from audiomnist_edge.train.conditions import EVAL_RIR_SEED
from audiomnist_edge.train.datasets import Dataset, load_many
from audiomnist_edge.wav import read_wav

from .clips import REPO, default_fsdd, repo_relative

RESULTS = REPO / "benchmarks" / "results"
BLOCK_SECONDS = 0.05
NOISE_DBFS = -50.0            # the padding-noise condition's level
CONDITIONS = {
    "clean": "digital silence between digits",
    "padded": f"white noise floor at {NOISE_DBFS:.0f} dBFS throughout",
    "white-20dB": "padded + white noise 20 dB below the speech",
    "white-10dB": "padded + white noise 10 dB below the speech",
    "reverb-0.3s": "padded + a simulated room per digit (train/capture.py's evaluation rooms), RT60 0.3 s",
    "reverb-0.6s": "padded + a simulated room per digit, RT60 0.6 s",
    "quiet-20dB": "padded, speech 20 dB quieter (-46 dBFS RMS)",
    "hum-50Hz": "padded + 50 Hz mains hum (5 harmonics) 15 dB below the speech",
    "telephone": "padded + telephone band 300-3400 Hz",
}
"""The capture conditions of train/conditions.py, applied to a whole stream."""
NON_DIGIT_WORDS = (
    "hello yes no stop go left right up down open close light music weather morning evening "
    "coffee kitchen garden window table chair water paper yellow purple orange apple banana "
    "people happy simple number letter candle summer winter friday monday station market "
    "doctor teacher forest basket pocket silver golden button rabbit dragon pencil camera "
    "bottle middle problem system minute hour welcome thanks please sorry maybe later again "
    "travel little large small quick slowly because between under over inside outside "
    "computer telephone elephant umbrella holiday birthday question answer message picture"
).split()
FLITE_VOICES = ("rms", "slt")
"""flite voices of the non-digit words measured; kal and awb say train/nondigit.py's words."""
SPEECH_DBFS = -26.0          # every clip's RMS over its speech, before the condition
SPEECH_END_PARAMS = FeatureParams()  # trim_db 30 on 25 ms frames: where a clip's speech ends


@dataclass
class Score:
    """Scores of one set of streams; rates are fractions of the spoken digits."""

    digits: int = 0
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    unknown: int = 0
    edit_distance: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, truth: list[tuple[str, float, float, float]], found: list[Detection]) -> None:
        """Match detections to spoken digits by overlap (one each), then count.

        Latency runs from the end of speech to the decision: the rest of the
        hang-over plus the time to decide.
        """
        used: set[int] = set()
        for label, start, end, speech_end in truth:
            overlaps = [(min(end, d.end) - max(start, d.start), i) for i, d in enumerate(found)
                        if i not in used and d.start < end and d.end > start]
            self.digits += 1
            if not overlaps:
                self.deletions += 1
                continue
            i = max(overlaps)[1]
            used.add(i)
            d = found[i]
            if d.digit is None:
                self.unknown += 1
                self.deletions += 1
            elif d.digit == label:
                self.correct += 1
                self.latencies.append(d.end + d.hangover_ms / 1e3 + d.latency_ms / 1e3 - speech_end)
            else:
                self.substitutions += 1
        self.insertions += sum(1 for i, d in enumerate(found) if i not in used and d.digit is not None)
        said = [label for label, *_ in truth]
        heard = [d.digit for d in found if d.digit is not None]
        self.edit_distance += edit_distance(said, heard)

    def merge(self, other: Score) -> None:
        """Add another set of streams' counts and latencies to these."""
        for name in ("digits", "correct", "substitutions", "deletions", "insertions", "unknown",
                     "edit_distance"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies += other.latencies

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies) * 1e3
        n = max(1, self.digits)
        return {"digits": self.digits, "found": round(self.correct / n, 4),
                "substitutions": round(self.substitutions / n, 4),
                "deletions": round(self.deletions / n, 4), "insertions": round(self.insertions / n, 4),
                "unknown": round(self.unknown / n, 4),
                "sequence_score": round(1 - self.edit_distance / n, 4),
                "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None}


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two label sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def corpus_clips(root: Path, takes: Callable[[int], bool]) -> list[tuple[str, Path]]:
    """(digit, path) of the corpus's {digit}_{speaker}_{take}.wav files whose take passes."""
    files = sorted((root / "recordings").glob("*.wav"))
    return [(f.name[0], f) for f in files if takes(int(f.stem.split("_")[2]))]


def build_stream(clips: list[tuple[str, Path]], count: int, rate: int, rng: np.random.Generator,
                 rooms: capture.RirBank | None = None,
                 gain_db: float = 0.0) -> tuple[np.ndarray, list[tuple[str, float, float, float]]]:
    """``count`` random clips as numbers at a natural pace; (samples at rate, truth).

    Every clip is scaled to SPEECH_DBFS over its speech (so an SNR holds for
    every digit), then by ``gain_db``, and with ``rooms`` reverberated by a
    room drawn from the bank (its tail runs on into the pause). Truth holds
    (digit, clip start, clip end, end of speech) in seconds; the end of speech
    is where the clip's last frame within 30 dB of its loudest ends.
    """
    chosen = rng.choice(len(clips), count, replace=False)
    placed, truth, t = [], [], rate
    left_in_number = int(rng.integers(3, 6))
    for k in chosen:
        label, path = clips[k]
        samples, clip_rate = read_wav(path)
        samples = resample(samples, clip_rate, rate)
        speech_start, speech_end = speech_bounds(samples, SPEECH_END_PARAMS)
        rms = np.sqrt(np.mean(np.square(samples[speech_start:speech_end], dtype=np.float64)))
        samples = samples * 10 ** ((SPEECH_DBFS + gain_db) / 20) / max(rms, 1e-6)
        truth.append((label, t / rate, (t + len(samples)) / rate, (t + speech_end) / rate))
        if rooms is not None:
            samples = capture.reverberate(samples, rooms.get(int(rng.integers(len(rooms)))))
        placed.append((t, samples))
        left_in_number -= 1
        if left_in_number == 0:
            pause, left_in_number = rng.uniform(0.8, 1.5), int(rng.integers(3, 6))
        else:
            pause = rng.uniform(0.15, 0.4)
        t += len(samples) if rooms is None else int(round((truth[-1][2] - truth[-1][1]) * rate))
        t += int(pause * rate)
    stream = np.zeros(max(t, max(start + len(x) for start, x in placed)) + rate)
    for start, x in placed:
        stream[start:start + len(x)] += x
    return stream, truth


def noise(n: int, dbfs: float, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0, 10 ** (dbfs / 20), n)


def condition_stream(name: str, clips: list[tuple[str, Path]], count: int, rate: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[str, float, float, float]]]:
    """A stream of ``count`` digits under one capture condition (see CONDITIONS), in [-1, 1]."""
    rooms = None
    if name.startswith("reverb-"):
        rt60 = float(name[7:-1])
        rooms = capture.rir_bank(rate, (rt60, rt60), count=32, seed=EVAL_RIR_SEED)
    x, truth = build_stream(clips, count, rate, rng, rooms, -20.0 if name == "quiet-20dB" else 0.0)
    speech_power = 10 ** (SPEECH_DBFS / 10)
    if name.startswith("white-"):
        x = x + rng.normal(0, np.sqrt(speech_power / 10 ** (float(name[6:-2]) / 10)), len(x))
    elif name == "hum-50Hz":
        x = x + capture.hum(len(x), rate, 50.0, rng) * np.sqrt(speech_power / 10 ** 1.5)
    if name != "clean":
        x = x + noise(len(x), NOISE_DBFS, rng)
    if name == "telephone":
        x = capture.telephone(x.astype(np.float32), rate)
    return np.clip(x, -1, 1).astype(np.float32), truth


@dataclass(frozen=True)
class Listening:
    """How the benchmarked ``listen`` decides: its gate, --min-confidence and --background-db."""

    gate: GateParams
    min_confidence: float = MIN_CONFIDENCE
    background_db: float | None = None

    def recognizer(self, model: Model, rate: int) -> Recognizer:
        return Recognizer(model, rate, self.gate, self.min_confidence, background_db=self.background_db)


def recognise(model: Model, samples: np.ndarray, rate: int, listening: Listening) -> list[Detection]:
    """Every decision on a stream fed in 50 ms blocks, as listen --input would."""
    recognizer = listening.recognizer(model, rate)
    block = int(rate * BLOCK_SECONDS)
    found = [d for i in range(0, len(samples), block) for d in recognizer.feed(samples[i:i + block])]
    return found + recognizer.finish()


def long_stream(kind: str, minutes: float, rate: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of 10 s: noise (white, level steps of +-6 dB around -50 dBFS every 5-30 s, under
    low-frequency rumble at -35 dBFS) or hum (see CONDITIONS)."""
    rng = np.random.default_rng(seed)
    level, next_step, t = NOISE_DBFS, 0.0, 0.0
    while t < minutes * 60:
        n = 10 * rate
        if kind == "noise":
            if t >= next_step:
                level = NOISE_DBFS + rng.uniform(-6, 6)
                next_step = t + rng.uniform(5, 30)
            rumble = np.cumsum(rng.normal(0, 1, n))  # brown noise, minus its drift below ~20 Hz
            rumble -= np.convolve(rumble, np.ones(401) / 401, mode="same")
            x = noise(n, level, rng) + rumble * 10 ** (-35 / 20) / np.std(rumble)
        else:
            tt = t + np.arange(n) / rate
            hum = sum(a * np.sin(2 * np.pi * f * tt) for f, a in ((50, 1.0), (150, 0.3), (250, 0.1)))
            x = hum * 10 ** (-30 / 20) * np.sqrt(2) + noise(n, -60, rng)
        yield np.clip(x, -1, 1).astype(np.float32)
        t += 10


def false_alarms(model: Model, kind: str, minutes: float, rate: int, listening: Listening,
                 seed: int) -> dict[str, Any]:
    """Digits (and unknowns) reported on a long stream without speech."""
    recognizer = listening.recognizer(model, rate)
    found: list[Detection] = []
    block = int(rate * BLOCK_SECONDS)
    for chunk in long_stream(kind, minutes, rate, seed):
        for i in range(0, len(chunk), block):
            found += recognizer.feed(chunk[i:i + block])
    found += recognizer.finish()
    hours = minutes / 60
    digits = sum(d.digit is not None for d in found)
    return {"minutes": minutes, "digits": digits, "unknown": len(found) - digits,
            "false_alarms_per_hour": round(digits / hours, 2)}


def synth_words(cache: Path) -> list[tuple[str, Path]]:
    """Non-digit words by flite (rms, slt) and festival (ked), cached; (voice, path)."""
    out = []
    for voice in FLITE_VOICES if shutil.which("flite") else ():
        for word in NON_DIGIT_WORDS:
            path = cache / voice / f"{word}.wav"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["flite", "-voice", voice, "-t", word, "-o", str(path)], check=True,
                               capture_output=True)
            out.append((voice, path))
    if shutil.which("text2wave"):
        for word in NON_DIGIT_WORDS:
            path = cache / "festival-ked" / f"{word}.wav"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["text2wave", "-eval", "(voice_ked_diphone)", "-o", str(path)],
                               input=word.encode(), check=True, capture_output=True)
            out.append(("festival-ked", path))
    return out


def non_digit_speech(model: Model, words: list[tuple[str, Path]], rate: int, listening: Listening,
                     seed: int) -> dict[str, Any]:
    """Share of non-digit words reported as a digit, and false alarms per hour of such speech."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [np.zeros(rate, dtype=np.float32)], [], rate
    for k in rng.permutation(len(words)):
        samples, clip_rate = read_wav(words[k][1])
        samples = resample(samples, clip_rate, rate) * 10 ** (rng.uniform(-12, 0) / 20)
        spans.append((t / rate, (t + len(samples)) / rate))
        gap = np.zeros(int(rng.uniform(0.6, 1.2) * rate), dtype=np.float32)
        parts += [samples.astype(np.float32), gap]
        t += len(samples) + len(gap)
    stream = np.concatenate(parts)
    stream = np.clip(stream + noise(len(stream), -60, rng), -1, 1).astype(np.float32)
    found = recognise(model, stream, rate, listening)
    digits = [d for d in found if d.digit is not None]
    as_digit = sum(any(d.start < b and d.end > a for d in digits) for a, b in spans)
    return non_digit_summary(len(spans), as_digit, len(digits), len(stream) / rate,
                             sorted({v for v, _ in words}))


def non_digit_summary(words: int, as_digit: int, digits: int, seconds: float,
                      voices: list[str]) -> dict[str, Any]:
    """The non-digit speech row from its counts (words, words heard as a digit, digits reported)."""
    return {"words": words, "voices": voices, "as_digit": as_digit, "digits": digits,
            "reported_as_digit": round(as_digit / max(1, words), 4),
            "false_alarms_per_hour": round(digits / (seconds / 3600), 1), "minutes": round(seconds / 60, 1),
            "seconds": round(seconds, 3)}


def pooled_alarms(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """False-alarm rows of one kind of stream (several models) summed into one."""
    if "words" in rows[0]:
        return non_digit_summary(sum(r["words"] for r in rows), sum(r["as_digit"] for r in rows),
                                 sum(r["digits"] for r in rows), sum(r["seconds"] for r in rows),
                                 rows[0]["voices"])
    minutes, digits = sum(r["minutes"] for r in rows), sum(r["digits"] for r in rows)
    return {"minutes": minutes, "digits": digits, "unknown": sum(r["unknown"] for r in rows),
            "false_alarms_per_hour": round(digits / (minutes / 60), 2)}


def alarm_streams(model: Model, noise_minutes: float, listening: Listening, seed: int) -> dict[str, Any]:
    """False alarms of one model on noise, hum and (when a synthesiser is installed) non-digit words."""
    out = {kind: false_alarms(model, kind, noise_minutes, 8000, listening, seed)
           for kind in ("noise", "hum")}
    words = synth_words(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "audiomnist-edge" / "nondigit-v1")
    if words:
        out["non-digit speech"] = non_digit_speech(model, words, 8000, listening, seed)
    return out


@dataclass
class FoldModel:
    """One speaker fold of an ``evaluate --folds`` run: its int8 model and the speakers it never heard."""

    fold: int
    test_speakers: list[str]
    path: Path
    model: Model


def load_folds(run: Path) -> tuple[list[FoldModel], Dataset]:
    """The models RUN/folds/fold-K.tflite of the folds in RUN/folds.json, and the run's corpora.

    Folds whose model file is missing (a stopped run) are left out; raises
    EdgeError for a folder that is no fold run.
    """
    from audiomnist_edge.train.evaluate import fold_model

    try:
        info = json.loads((run / "folds.json").read_text())
        rows = [(int(r["fold"]), [str(s) for s in r["test_speakers"]]) for r in info["folds"]]
        ds = load_many(info["data"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgeError(f"{run}: not a fold run of audiomnist-edge evaluate --folds ({exc})") from None
    folds = [FoldModel(k, speakers, path, fold_model(run, k))
             for k, speakers in rows if (path := run / "folds" / f"fold-{k}.tflite").is_file()]
    if not folds:
        raise EdgeError(f"{run}: no fold model in {run / 'folds'}; run `audiomnist-edge evaluate {run} --folds`")
    return folds, ds


def speaker_clips(ds: Dataset, speakers: list[str], keep: bool = True) -> dict[str, list[Path]]:
    """Per corpus, the clip files of ``speakers`` (with ``keep=False``: of every other speaker)."""
    out: dict[str, list[Path]] = {}
    for clip in ds.clips:
        if (clip.speaker in speakers) == keep:
            out.setdefault(clip.corpus, []).append(clip.path)
    return out


def clip_speakers(paths: list[Path]) -> list[str]:
    """The speakers named by {digit}_{speaker}_{take}.wav clip files."""
    return sorted({path.stem.split("_")[1] for path in paths})


def condition_scores(model: Model, clips: list[tuple[str, Path]], count: int, rate: int, listening: Listening,
                     seed: list[int]) -> Iterator[tuple[str, Score]]:
    """(condition, score) of one stream of ``count`` digits (at most all clips) per capture condition."""
    for k, name in enumerate(CONDITIONS):
        rng = np.random.default_rng([*seed, k])
        samples, truth = condition_stream(name, clips, min(count, len(clips)), rate, rng)
        score = Score()
        score.add(truth, recognise(model, samples, rate, listening))
        yield name, score


def single_model_corpora(fsdd: Path, hd_root: Path, fsdd_takes: Callable[[int], bool] = lambda take: take < 5
                         ) -> dict[str, tuple[list[tuple[str, Path]], int]]:
    """The streams' clips and rate in single-model mode: HD-EN's speakers and FSDD's official test
    takes (``fsdd_takes`` chooses others)."""
    return {"HD-EN (10 speakers, 16 kHz; unseen only if the model was trained on FSDD alone)":
                (corpus_clips(hd_root, lambda take: True), 16000),
            "FSDD takes 0-4 (6 speakers whose takes 5-49 are in training, 8 kHz)":
                (corpus_clips(fsdd, fsdd_takes), 8000)}


def single_model(model: Model, fsdd: Path, hd_root: Path, digits: int, listening: Listening,
                 seed: int) -> dict[str, Any]:
    """Stream scores of one model: HD-EN's speakers and FSDD's official test takes."""
    streams: dict[str, Any] = {}
    for c, (corpus, (clips, rate)) in enumerate(single_model_corpora(fsdd, hd_root).items()):
        if not clips:
            click.echo(f"skipping {corpus}: no clips found", err=True)
            continue
        streams[corpus] = {}
        for name, score in condition_scores(model, clips, digits, rate, listening, [seed, c]):
            streams[corpus][name] = score.summary()
            click.echo(f"{corpus} {name}: {streams[corpus][name]}", err=True)
    return streams


def fold_models(folds: list[FoldModel], ds: Dataset, digits: int, listening: Listening,
                seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Stream scores of each fold's model on its own held-out speakers: (pooled over folds, per fold)."""
    corpora = sorted({clip.corpus for clip in ds.clips})
    pooled: dict[str, dict[str, Score]] = {}
    rows = []
    for fold in folds:
        row: dict[str, Any] = {"fold": fold.fold, "test_speakers": fold.test_speakers, "model": str(fold.path),
                               "stream_speakers": {}, "streams": {}}
        for corpus, paths in sorted(speaker_clips(ds, fold.test_speakers).items()):
            clips = [(path.name[0], path) for path in paths]
            rate = read_wav(paths[0])[1]
            key = f"{corpus} ({rate / 1000:g} kHz), each fold's held-out speakers"
            row["stream_speakers"][key] = clip_speakers(paths)
            row["streams"][key] = {}
            for name, score in condition_scores(fold.model, clips, digits, rate, listening,
                                                [seed, fold.fold, corpora.index(corpus)]):
                row["streams"][key][name] = score.summary()
                pooled.setdefault(key, {}).setdefault(name, Score()).merge(score)
                click.echo(f"fold {fold.fold} {key} {name}: {row['streams'][key][name]}", err=True)
        rows.append(row)
    return {key: {name: s.summary() for name, s in scores.items()} for key, scores in pooled.items()}, rows


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--folds", "folds_run", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A run of `audiomnist-edge evaluate RUN --folds`: each fold's int8 model on streams of "
                   "its own held-out speakers (all corpora of the run); writes stream-folds.md/.json.")
@click.option("--fsdd", type=click.Path(file_okay=False, path_type=Path), help="FSDD root.")
@click.option("--hd-en", "hd_en", type=click.Path(file_okay=False, path_type=Path),
              help="HD-EN root [default: ../shared/datasets/hd-en beside the repository].")
@click.option("--digits", type=click.IntRange(1, None), default=200, show_default=True,
              help="Digits per corpus and condition (with --folds: per fold, at most the fold's clips).")
@click.option("--noise-minutes", type=click.FloatRange(0.01, None), default=60.0, show_default=True,
              help="Length of the noise and the hum streams (false alarms; with --folds: per fold model).")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=MIN_CONFIDENCE, show_default=True)
@click.option("--background-db", type=click.FloatRange(0, min_open=True),
              help="listen's --background-db (writes stream[-folds]-background.md/.json) [default: off].")
@click.option("--vad", type=click.Choice(["energy", "webrtc"]), default="energy", show_default=True,
              help="Frame decision of the gate (webrtc writes stream-webrtc.md/.json).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS,
              show_default=True)
def main(model_path: str | None, folds_run: Path | None, fsdd: Path | None, hd_en: Path | None, digits: int,
         noise_minutes: float, min_confidence: float, background_db: float | None, vad: str, seed: int,
         out: Path) -> None:
    """Score the listen path on seeded digit streams and long noise; write stream.md/.json."""
    if model_path and folds_run:
        raise click.UsageError("give --model or --folds, not both")
    started = time.perf_counter()
    gate = GateParams(vad=vad)
    listening = Listening(gate, min_confidence, background_db)
    results: dict[str, Any] = {"gate": asdict(gate), "min_confidence": min_confidence, "background_db": background_db,
                               "seed": seed, "conditions": CONDITIONS}
    if folds_run is None:
        model = Model.load(model_path)
        results["model"] = repo_relative(model.path)
        results["streams"] = single_model(model, fsdd or default_fsdd(),
                                          hd_en or REPO.parent / "shared" / "datasets" / "hd-en",
                                          digits, listening, seed)
        results["false_alarms"] = alarm_streams(model, noise_minutes, listening, seed)
    else:
        try:
            folds, ds = load_folds(folds_run)
        except EdgeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        results["model"] = str(folds_run)
        results["streams"], results["folds"] = fold_models(folds, ds, digits, listening, seed)
        for fold, row in zip(folds, results["folds"]):
            row["false_alarms"] = alarm_streams(fold.model, noise_minutes, listening, seed)
        results["false_alarms"] = {kind: pooled_alarms([row["false_alarms"][kind] for row in results["folds"]])
                                   for kind in results["folds"][0]["false_alarms"]}
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    name = ("stream" + ("-folds" if folds_run else "") + ("" if vad == "energy" else f"-{vad}")
            + ("" if background_db is None else "-background"))
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(report(results, digits, noise_minutes))
    click.echo(report(results, digits, noise_minutes))


def report(results: dict[str, Any], digits: int, noise_minutes: float) -> str:
    """The markdown tables of a results dict."""
    vad = results["gate"]["vad"]
    folds = results.get("folds")
    source = (f"--folds {results['model']}" if folds else "")
    lines = [f"# Stream benchmark ({vad} VAD)\n\n`python -m benchmarks.stream_bench {source}{' ' if source else ''}"
             f"--digits {digits} --noise-minutes {noise_minutes:g}" + ("" if vad == "energy" else f" --vad {vad}")
             + ("" if results.get("background_db") is None else f" --background-db {results['background_db']:g}")
             + f"` (seed {results['seed']}, min confidence {results['min_confidence']}, "
             + (f"{len(folds)} fold models of `{Path(results['model']).name}`, each on its own held-out "
                "speakers; scores pooled over folds, false alarms summed over the fold models"
                if folds else f"model `{Path(results['model']).name}`") + ").\n",
             "Conditions: " + "; ".join(f"**{k}**: {v}" for k, v in results["conditions"].items()) + ".\n",
             "| speakers | condition | digits | found | subst. | deleted | inserted | sequence score "
             "| latency p50 / p95 after speech |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for corpus, rows in results["streams"].items():
        for name, s in rows.items():
            lines.append(f"| {corpus} | {name} | {s['digits']} | {s['found']:.3f} | "
                         f"{s['substitutions']:.3f} | {s['deletions']:.3f} | {s['insertions']:.3f} | "
                         f"**{s['sequence_score']:.3f}** | {milliseconds(s['latency_p50_ms'])} / "
                         f"{milliseconds(s['latency_p95_ms'])} ms |")
    if folds:
        lines += ["", "Sequence score per fold:", "",
                  "| fold | held-out speakers | corpus | " + " | ".join(results["conditions"]) + " |",
                  "|---|---|---|" + "---:|" * len(results["conditions"])]
        for row in folds:
            for corpus, scores in row["streams"].items():
                lines.append(f"| {row['fold']} | {', '.join(row['stream_speakers'][corpus])} | "
                             f"{corpus.split(' ')[0]} | "
                             + " | ".join(f"{scores[n]['sequence_score']:.3f}" for n in results["conditions"])
                             + " |")
        lines += ["", "Digits reported per fold model on the streams without digits: " + "; ".join(
            f"fold {row['fold']}: " + ", ".join(f"{kind} {s['digits']}" for kind, s in row["false_alarms"].items())
            for row in folds) + "."]
    lines += ["", "| stream without digits | length | digits reported | per hour | unknowns |",
              "|---|---:|---:|---:|---:|"]
    for kind, s in results["false_alarms"].items():
        if kind == "non-digit speech":
            lines.append(f"| non-digit words ({', '.join(s['voices'])}: no model hears them say a non-digit), "
                         f"{s['words']} words; {s['reported_as_digit'] * 100:.1f}% reported as a digit "
                         f"| {s['minutes']:.1f} min | | {s['false_alarms_per_hour']:.0f} | |")
        else:
            lines.append(f"| {kind} | {s['minutes']:g} min | {s['digits']} | "
                         f"{s['false_alarms_per_hour']:.1f} | {s['unknown']} |")
    lines.append(f"\nRun time {results['seconds']:.0f} s.\n")
    return "\n".join(lines) + "\n"


def milliseconds(value: float | None) -> str:
    """A latency for the table: whole milliseconds, or - when no digit was found."""
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
