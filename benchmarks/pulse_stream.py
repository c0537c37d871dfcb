"""The microphone path against the file path on the same stream, through a real PulseAudio server.

Issue 11's target: through the PulseAudio null sink, the default
``listen --device pulse`` (no ``--samplerate``: the device opened at the
model's rate, PulseAudio resampling) scores within 2 points of
``listen --input`` on the same stream.

For HD-EN (16 kHz) and FSDD's official test takes (8 kHz), a seeded stream of
digits at a natural pace under benchmarks/stream_bench.py's "padded" condition
(white floor at -50 dBFS) is written to a 16-bit WAV. ``listen --input WAV
--json`` decides it offline; then, on a private PulseAudio server
(benchmarks/pulse.py) whose default source is the monitor of a null sink,
``listen --device pulse --json`` captures it while ``paplay`` plays the WAV
into the sink in real time. Both are scored against the truth with
stream_bench's ``Score`` (sequence score = 1 - edit distance / digits), and
against each other (edit distance between the two digit sequences).

``listen --device`` counts time from its first block, before paplay starts:
its detections are moved back by the offset under which most of their starts
fall within 0.1 s of ``--input``'s.

The model is the packaged one unless ``--model`` names another; the results
say which of the streams' speakers it heard in training (the packaged model:
all of them). A fold model of ``evaluate RUN --folds`` (``RUN/folds/fold-K.tflite``)
hears streams drawn from every take of its held-out speakers, and nobody else.
Playback is real time: ``--digits 100`` takes about 4 minutes.

    python -m benchmarks.pulse_stream                          # writes results/pulse-stream.md/.json
    python -m benchmarks.pulse_stream --model runs/RUN/folds/fold-0.tflite  # ...-RUN-fold-0.md/.json
    python -m benchmarks.pulse_stream --digits 4 --out /tmp/ps # a quick look
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from audiomnist_edge.model import Model
from audiomnist_edge.recognizer import Detection
from audiomnist_edge.wav import write_wav

from .clips import REPO, default_fsdd, repo_relative
from .listen_latency import from_file, through_device
from .pulse import private_server
from .stream_bench import (CONDITIONS, RESULTS, Score, clip_speakers, condition_stream, edit_distance,
                           single_model_corpora)

SINK_RATE = 16000         # the null sink's rate: paplay resamples up to it, listen's device down from it
TARGET_POINTS = 2.0       # |pulse - input| sequence score, in points (hundredths)
ALIGN_SECONDS = 0.1       # how far the same utterance's start may move between the two paths
SAME_SECONDS = 0.005      # boundaries this close are the same (listen's times are on a 10 ms frame grid)


def detections(output: str, offset: float = 0.0) -> list[Detection]:
    """``listen --json``'s records as Detections, their times moved back by ``offset`` seconds."""
    found = []
    for line in output.splitlines():
        r = json.loads(line)
        found.append(Detection(r["start"] - offset, r["end"] - offset,
                               None if r["digit"] is None else str(r["digit"]), str(r["label"]),
                               r["confidence"], r["latency_ms"], r["hangover_ms"], r["truncated"]))
    return found


def clock_offset(heard: list[Detection], reference: list[Detection]) -> float:
    """Seconds by which ``heard``'s clock runs ahead of ``reference``'s (0 when either is empty).

    Of the differences between the first ten starts of each, the one under
    which most starts of ``heard`` land within ALIGN_SECONDS of a start of
    ``reference``, refined to the median of those landings.
    """
    def landings(offset: float) -> list[float]:
        return [h.start - offset - r.start for h in heard for r in reference
                if abs(h.start - offset - r.start) < ALIGN_SECONDS]

    candidates = [h.start - r.start for h in heard[:10] for r in reference[:10]]
    if not candidates:
        return 0.0
    best = max(candidates, key=lambda c: len(landings(c)))
    return best + float(np.median(landings(best)))


def pairing(heard: list[Detection], reference: list[Detection]) -> dict[str, Any]:
    """How the same utterances came out on both paths (``heard`` already aligned): pairs of
    utterances whose starts lie within ALIGN_SECONDS, their decisions, boundaries and confidences."""
    pairs = [(h, r) for r in reference for h in heard if abs(h.start - r.start) < ALIGN_SECONDS]
    return {"utterances": len(reference), "paired": len(pairs),
            "same_decision": sum(h.digit == r.digit for h, r in pairs),
            "same_boundaries": sum(abs(h.start - r.start) < SAME_SECONDS and abs(h.end - r.end) < SAME_SECONDS
                                   for h, r in pairs),
            "max_boundary_shift_ms": round(max((max(abs(h.start - r.start), abs(h.end - r.end)) * 1e3
                                                for h, r in pairs), default=0.0), 1),
            "max_confidence_change": round(max((abs(h.confidence - r.confidence) for h, r in pairs),
                                               default=0.0), 4)}


def digits_of(found: list[Detection]) -> list[str]:
    """The digit sequence reported (unknowns left out, as the sequence score does)."""
    return [d.digit for d in found if d.digit is not None]


def capture_line(log: str) -> dict[str, Any]:
    """Device, rate, blocks dropped and overflows from listen's stderr."""
    opened = re.search(r"listening on '?(.+?)'? at (\d+) Hz", log)
    summary = re.search(r"(\d+) blocks dropped, (\d+) overflows", log)
    return {"device": opened.group(1) if opened else None, "rate": int(opened.group(2)) if opened else None,
            "blocks_dropped": int(summary.group(1)) if summary else None,
            "overflows": int(summary.group(2)) if summary else None}


def comparison(inputs: Score, pulse: Score, distance: int) -> dict[str, Any]:
    """Both paths' scores, pulse minus input in points, and how far apart the two sequences are."""
    scores = {"input": inputs.summary(), "pulse": pulse.summary()}
    points = round((scores["pulse"]["sequence_score"] - scores["input"]["sequence_score"]) * 100, 1)
    return {**scores, "pulse_to_input_edit_distance": distance, "points": points,
            "agreement": round(1 - distance / max(1, inputs.digits), 4), "met": abs(points) <= TARGET_POINTS}


def trained_speakers(model: Model) -> list[str] | None:
    """The speakers the model's metadata says it was trained on (None when it does not say)."""
    try:
        return [str(s) for s in model.metadata["training"]["data_summary"]["speakers"]["train"]]
    except (KeyError, TypeError):
        return None


def heard_in_training(speakers: list[str], trained: list[str] | None, held_out: set[str] | None) -> list[str] | None:
    """Which of a stream's speakers the model was trained on (None when its metadata does not say)."""
    if held_out is not None:
        return [s for s in speakers if s not in held_out]
    return None if trained is None else [s for s in speakers if s in trained]


def held_out_speakers(model: Model) -> set[str] | None:
    """The speakers a fold model of ``evaluate --folds`` was never trained on (None for other models)."""
    speakers = (model.metadata.get("training") or {}).get("test_speakers")
    return {str(s) for s in speakers} if isinstance(speakers, list) else None


def stream_corpora(fsdd: Path, hd_root: Path, model: Model) -> dict[str, tuple[list[tuple[str, Path]], int]]:
    """The streams' (label, path) clips and rate per corpus: for a fold model every take of its
    held-out speakers, else HD-EN and FSDD's official test takes (``single_model_corpora``)."""
    held_out = held_out_speakers(model)
    if held_out is None:
        return single_model_corpora(fsdd, hd_root)
    every_take = single_model_corpora(fsdd, hd_root, fsdd_takes=lambda take: True)
    return {f"{corpus.split(' ')[0]}, the speakers {model.metadata.get('name')} never heard":
            ([(label, path) for label, path in clips if path.stem.split("_")[1] in held_out], rate)
            for corpus, (clips, rate) in every_take.items()}


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--fsdd", type=click.Path(file_okay=False, path_type=Path), help="FSDD root.")
@click.option("--hd-en", "hd_en", type=click.Path(file_okay=False, path_type=Path),
              help="HD-EN root [default: ../shared/datasets/hd-en beside the repository].")
@click.option("--digits", type=click.IntRange(1, None), default=100, show_default=True,
              help="Digits per corpus stream (played in real time: about 1.1 s each).")
@click.option("--condition", type=click.Choice(list(CONDITIONS)), default="padded", show_default=True,
              help="Capture condition of the streams (benchmarks/stream_bench.py's); other than padded, "
                   "the results' names end in -CONDITION.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=RESULTS, show_default=True,
              help="Folder for pulse-stream.md and pulse-stream.json.")
def main(model_path: str | None, fsdd: Path | None, hd_en: Path | None, digits: int, condition: str, seed: int,
         out: Path) -> None:
    """Score listen --device pulse against listen --input on the same streams; write pulse-stream.md/.json."""
    started = time.perf_counter()
    model = Model.load(model_path)
    model_args = ["--model", str(model.path)]
    trained = trained_speakers(model)
    held_out = held_out_speakers(model)
    command = " ".join(["python -m benchmarks.pulse_stream", f"--digits {digits}"]
                       + ([f"--condition {condition}"] if condition != "padded" else [])
                       + ([f"--seed {seed}"] if seed else [])
                       + ([f"--model {repo_relative(model.path)}"] if model_path else []))
    results: dict[str, Any] = {"command": command, "seed": seed, "model": repo_relative(model.path),
                               "condition": {condition: CONDITIONS[condition]}, "sink_rate": SINK_RATE,
                               "target_points": TARGET_POINTS, "streams": {}}
    pooled, pooled_distance = {"input": Score(), "pulse": Score()}, 0
    corpora = stream_corpora(fsdd or default_fsdd(), hd_en or REPO.parent / "shared" / "datasets" / "hd-en", model)
    try:
        with tempfile.TemporaryDirectory(prefix="pulse-stream-") as tmp, private_server(SINK_RATE) as env:
            for c, (corpus, (clips, rate)) in enumerate(corpora.items()):
                if not clips:
                    click.echo(f"skipping {corpus}: no clips found", err=True)
                    continue
                samples, truth = condition_stream(condition, clips, min(digits, len(clips)), rate,
                                                  np.random.default_rng([seed, c]))
                wav = Path(tmp) / f"stream-{c}.wav"
                write_wav(wav, samples, rate)
                click.echo(f"{corpus}: {len(truth)} digits, {len(samples) / rate:.0f} s; playing", err=True)
                offline = detections(from_file(wav, model_args))
                output, log = through_device(wav, "pulse", model_args, env)
                offset = clock_offset(detections(output), offline)
                live = detections(output, offset)
                scores = {"input": Score(), "pulse": Score()}
                scores["input"].add(truth, offline)
                scores["pulse"].add(truth, live)
                distance = edit_distance(digits_of(offline), digits_of(live))
                speakers = clip_speakers([path for _, path in clips])
                row = {**comparison(scores["input"], scores["pulse"], distance),
                       "utterances": pairing(live, offline), "speakers": speakers,
                       "heard_in_training": heard_in_training(speakers, trained, held_out),
                       "seconds": round(len(samples) / rate, 1), "rate": rate, "capture": capture_line(log),
                       "clock_offset_s": round(offset, 3), "truth": [label for label, *_ in truth],
                       "input_digits": digits_of(offline), "pulse_digits": digits_of(live)}
                results["streams"][corpus] = row
                click.echo(f"{corpus}: input {row['input']['sequence_score']}, pulse "
                           f"{row['pulse']['sequence_score']} ({row['points']:+.1f} points), {row['capture']}",
                           err=True)
                pooled["input"].merge(scores["input"])
                pooled["pulse"].merge(scores["pulse"])
                pooled_distance += distance
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        raise click.ClickException(str(exc)) from None
    if not results["streams"]:
        raise click.ClickException("no corpus found (see --fsdd and --hd-en)")
    results["all"] = comparison(pooled["input"], pooled["pulse"], pooled_distance)
    results["met"] = results["all"]["met"] and all(row["met"] for row in results["streams"].values())
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    name = ("pulse-stream" + ("" if held_out is None else f"-{model.metadata.get('name', 'fold')}")
            + ("" if condition == "padded" else f"-{condition}"))
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(report(results))
    click.echo(report(results))


def report(results: dict[str, Any]) -> str:
    """The markdown of a results dict."""
    rows = {**results["streams"], "all streams": results["all"]}
    streams = results["streams"].values()
    rate = {row["capture"]["rate"] for row in streams}
    lines = [
        "# PulseAudio stream benchmark\n",
        f"`{results['command']}` (seed {results['seed']}, model `{Path(results['model']).name}`, condition "
        f"{', '.join(f'**{k}**: {v}' for k, v in results['condition'].items())}). Each stream is written to a "
        "16-bit WAV and decided by `listen --input WAV --json`, and by `listen --device pulse --json` (no "
        f"`--samplerate`: captured at {', '.join(str(r) for r in sorted(rate, key=str))} Hz) on a private "
        f"PulseAudio server (null sink at {results['sink_rate']} Hz, its monitor the default source) while "
        "`paplay` plays the WAV into the sink in real time.\n",
        "Speakers heard by the model in training: " + "; ".join(
            f"{corpus.split(' ')[0]}: " + ("not recorded in the model" if row["heard_in_training"] is None
                                            else f"{len(row['heard_in_training'])} of {len(row['speakers'])}")
            for corpus, row in results["streams"].items()) + ".\n",
        "| speakers | path | digits | found | subst. | deleted | inserted | sequence score |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for corpus, row in rows.items():
        for path, name in (("input", "`--input`"), ("pulse", "`--device pulse`")):
            s = row[path]
            lines.append(f"| {corpus} | {name} | {s['digits']} | {s['found']:.3f} | {s['substitutions']:.3f} | "
                         f"{s['deletions']:.3f} | {s['insertions']:.3f} | **{s['sequence_score']:.3f}** |")
    lines += ["", "| speakers | pulse - input | agreement of the two sequences | utterances: paired / same "
              "decision / same boundaries / of | largest boundary shift, confidence change | blocks dropped / "
              "overflows | stream |", "|---|---:|---:|---:|---:|---:|---:|"]
    for corpus, row in results["streams"].items():
        u, capture = row["utterances"], row["capture"]
        lines.append(f"| {corpus} | {row['points']:+.1f} points | {row['agreement']:.3f} (edit distance "
                     f"{row['pulse_to_input_edit_distance']}) | {u['paired']} / {u['same_decision']} / "
                     f"{u['same_boundaries']} / {u['utterances']} | {u['max_boundary_shift_ms']:.0f} ms, "
                     f"{u['max_confidence_change']:.3f} | "
                     f"{capture['blocks_dropped']} / {capture['overflows']} | {row['seconds']:.0f} s |")
    pooled = results["all"]
    lines += ["", f"All streams: `--device pulse` {pooled['points']:+.1f} points against `--input`, agreement "
              f"{pooled['agreement']:.3f} (edit distance {pooled['pulse_to_input_edit_distance']}). Agreement = "
              "1 - edit distance between the two reported digit sequences / digits spoken; utterances are "
              f"paired by start (within {ALIGN_SECONDS * 1e3:.0f} ms once `--device`'s clock is aligned). "
              f"Target (`--device pulse` within {results['target_points']:g} points of `--input`, on each "
              f"stream and pooled): **{'met' if results['met'] else 'missed'}**.",
              f"\nRun time {results['seconds']:.0f} s.\n"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
