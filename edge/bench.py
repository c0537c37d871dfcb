"""``audiomnist-edge bench``: how fast this device runs a model, stage by stage.

Everything here uses the device runtime only (NumPy, the TFLite interpreter),
so the figures are what a device pays: WAV decode, resampling, MFCC, invoke
and samples -> decision per clip as p50/p95/p99 after a warm-up, the cold
start of a fresh process, peak resident memory, and the ratio to the
reference figures the converter stored in the model.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import click
import numpy as np

from .errors import EdgeError
from .features import clip_features
from .jsonsafe import dumps
from .interpreter import BACKENDS
from .memory import peak_rss_bytes
from .model import Model
from .resample import resample
from .wav import read_wav, wav_bytes

STAGES = ("decode", "resample", "mfcc", "invoke", "end_to_end")
REFERENCE_KEYS = {"mfcc": "mfcc_ms", "invoke": "invoke_ms", "end_to_end": "end_to_end_ms"}
NO_REFERENCE = "no reference figures in this model"
MAX_INPUT_BYTES = 64_000_000  # bench times one clip; a minute at 48 kHz stereo is 11 MB
MIC_RATE = 16000  # a common microphone rate: the resampling stage's source when the clip has none

# Run in a fresh interpreter: import the runtime, load the model, decide one clip.
# argv: model path ('' = packaged default), backend ('' = first that works), WAV path.
COLD_START_CODE = """
import json, sys, time
from audiomnist_edge.memory import peak_rss_bytes
from audiomnist_edge.model import Model
from audiomnist_edge.wav import read_wav
model = Model.load(sys.argv[1] or None, sys.argv[2] or None)
samples, rate = read_wav(sys.argv[3])
label = model.classify(samples, rate).label
done = time.time()
print(json.dumps({"done": done, "label": label, "peak_rss_bytes": peak_rss_bytes()}))
"""


class BenchError(EdgeError):
    """A benchmark that cannot run (bad input, failing subprocess)."""


def read_input(path: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a WAV clip, read once (a FIFO or stdin works too) and checked by the WAV reader."""
    try:
        with open(path, "rb") as handle:
            wav = handle.read(limit + 1)
    except OSError as exc:
        raise BenchError(f"{path}: {exc.strerror or exc}") from None
    if len(wav) > limit:
        raise BenchError(f"{path}: more than {limit // 1_000_000} MB; bench times one clip")
    clip = io.BytesIO(wav)
    clip.name = path  # the WAV reader's messages name the file
    read_wav(clip)
    return wav


def synthetic_utterance(sample_rate: int, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A speech-like clip the runtime can make anywhere, float32, shape (seconds * rate,).

    Half the clip is a 130 Hz harmonic series (a sung vowel) under a Hann
    envelope, centred in noise 60 dB down, so silence trimming, resampling and
    every MFCC stage do real work.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    harmonics = [k for k in range(1, 20) if 130 * k < sample_rate / 2]
    vowel = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in harmonics)
    envelope = np.zeros(n)
    envelope[n // 4 : n // 4 + n // 2] = np.hanning(n // 2)
    noise = np.random.default_rng(seed).standard_normal(n) * 1e-3
    return (0.3 * envelope * vowel / np.max(np.abs(vowel)) + noise).astype(np.float32)


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (Raspberry Pi: the board), else platform's guess."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found: dict[str, str] = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            found.setdefault(key.strip(), value.strip())
        for key in ("Model", "model name", "Hardware", "cpu model"):
            if found.get(key):
                return found[key]
    return platform.processor() or platform.machine() or "unknown"


def percentiles_ms(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50, p95 and p99 of durations given in seconds, in milliseconds."""
    p50, p95, p99 = np.percentile(np.asarray(seconds, dtype=np.float64) * 1e3, [50, 95, 99])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4), "p99": round(float(p99), 4)}


def time_calls(
    action: Callable[[], Any], repeat: int, warmup: int, tick: Callable[[int], None] = lambda n: None
) -> np.ndarray:
    """Durations in seconds, shape (repeat,), of ``action()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        action()
    tick(warmup)
    durations = np.empty(repeat)
    for i in range(repeat):
        started = time.perf_counter()
        action()
        durations[i] = time.perf_counter() - started
        tick(1)
    return durations


def resample_source_rate(clip_rate: int, model_rate: int) -> int:
    """The rate the resampling stage starts from: the clip's, or a microphone's if equal."""
    if clip_rate != model_rate:
        return clip_rate
    return MIC_RATE if model_rate != MIC_RATE else 48000


def measure_stages(
    model: Model, wav: bytes, repeat: int, warmup: int, tick: Callable[[int], None] = lambda n: None
) -> dict[str, dict[str, Any]]:
    """p50/p95/p99 in ms of each stage in STAGES for one WAV file's bytes.

    ``decode`` reads the bytes; ``resample`` converts the clip to the model's
    rate (from MIC_RATE when it is already there); ``mfcc`` is clip_features at
    the model's rate; ``invoke`` is Model.probabilities; ``end_to_end`` is
    Model.classify from the decoded samples at their own rate.
    """
    samples, rate = read_wav(wav)
    target = model.params.sample_rate
    source = resample_source_rate(rate, target)
    at_source = samples if source == rate else resample(samples, rate, source)
    at_model = resample(samples, rate, target)
    features = clip_features(at_model, model.params)
    actions: dict[str, Callable[[], Any]] = {
        "decode": lambda: read_wav(wav),
        "resample": lambda: resample(at_source, source, target),
        "mfcc": lambda: clip_features(at_model, model.params),
        "invoke": lambda: model.probabilities(features),
        "end_to_end": lambda: model.classify(samples, rate),
    }
    result: dict[str, dict[str, Any]] = {
        name: percentiles_ms(time_calls(actions[name], repeat, warmup, tick)) for name in STAGES
    }
    result["resample"].update(from_hz=source, to_hz=target)
    return result


def run_fresh_process(argv: list[str], timeout: float = 600) -> tuple[float, float, dict[str, Any]]:
    """Run a process that prints a JSON line with ``done`` (epoch seconds) and ``peak_rss_bytes``.

    Returns ms from launch to ``done``, its peak resident memory in MB, and the report.
    """
    started = time.time()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"benchmark process took more than {timeout:g} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise BenchError(f"benchmark process failed: {lines[-1]}")
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError("benchmark process printed no report") from None
    return 1e3 * (report["done"] - started), report["peak_rss_bytes"] / 1e6, report


def cold_start(
    wav_path: str | Path,
    model_path: str | Path | None = None,
    backend: str | None = None,
    runs: int = 3,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Process start -> first decision, in ms, for ``runs`` fresh Python processes.

    Each process imports the runtime, loads the model and classifies the WAV
    file. Returns p50 and every run in ms, the decided label and the peak
    resident memory (MB) of the largest process.
    """
    times, peaks, label = [], [], None
    argv = [sys.executable, "-c", COLD_START_CODE, str(model_path or ""), backend or "", str(wav_path)]
    for _ in range(runs):
        elapsed_ms, peak_mb, report = run_fresh_process(argv)
        times.append(elapsed_ms)
        peaks.append(peak_mb)
        label = report["label"]
        tick(1)
    return {
        "p50": round(float(np.median(times)), 1),
        "runs": [round(t, 1) for t in times],
        "label": label,
        "peak_rss_mb": round(max(peaks), 1),
    }


def compare_with_reference(
    stages: dict[str, dict[str, Any]],
    reference: dict[str, Any] | None,
    stages_compared: Sequence[str] = tuple(REFERENCE_KEYS),
) -> dict[str, Any] | None:
    """This device's p50 over the reference p50 per stage (above 1 = slower here), or None.

    The reference was timed on a clip at the model's rate; ``stages_compared``
    leaves out ``end_to_end`` when this run's clip needed resampling.
    """
    if not isinstance(reference, dict):
        return None
    ratios = {}
    for stage in stages_compared:
        value = reference.get(REFERENCE_KEYS[stage])
        if isinstance(value, (int, float)) and value > 0:
            ratios[stage] = round(stages[stage]["p50"] / value, 2)
    if not ratios:
        return None
    return {
        "cpu": reference.get("cpu", "unknown"),
        "backend": reference.get("backend", "unknown"),
        "reference_ms": {s: reference[REFERENCE_KEYS[s]] for s in ratios},
        "ratios": ratios,
    }


def describe_ratio(ratio: float) -> str:
    """'1.8x slower' / '2.0x faster' / 'same speed' for a device/reference time ratio."""
    if 0.95 <= ratio <= 1.05:
        return "about the same"
    return f"{ratio:.1f}x slower" if ratio > 1 else f"{1 / ratio:.1f}x faster"


def run_bench(
    model: Model,
    wav: bytes,
    source: str,
    repeat: int,
    warmup: int,
    cold_runs: int,
    wav_path: str | Path,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Every figure `bench` reports, as one JSON-ready dict (timings in ms)."""
    samples, rate = read_wav(wav)
    stages = measure_stages(model, wav, repeat, warmup, tick)
    cold = cold_start(wav_path, model.path, model.backend.name, cold_runs, tick) if cold_runs else None
    compared = [s for s in REFERENCE_KEYS if s != "end_to_end" or rate == model.params.sample_rate]
    reference = compare_with_reference(stages, model.metadata.get("reference_bench"), compared)
    return {
        "model": {"path": str(model.path), "size_bytes": len(model.artifact.content), "sha256": model.artifact.sha256},
        "backend": {"name": model.backend.name, "version": model.backend.version},
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "clip": {"source": source, "sample_rate": rate, "seconds": round(len(samples) / rate, 3)},
        "repeat": repeat,
        "warmup": warmup,
        **stages,
        "cold_start": cold,
        "peak_rss_mb": {
            "bench_process": round(peak_rss_bytes() / 1e6, 1),
            "cold_process": cold["peak_rss_mb"] if cold else None,
        },
        "reference": reference,
        "reference_note": None if reference else NO_REFERENCE,
    }


def format_report(result: dict[str, Any]) -> str:
    """The human-readable report of a run_bench result."""
    size_kb = result["model"]["size_bytes"] / 1e3
    clip = result["clip"]
    lines = [
        f"model     {result['model']['path']} ({size_kb:.1f} kB)",
        f"backend   {result['backend']['name']} {result['backend']['version']}",
        f"cpu       {result['cpu']} ({result['machine']}), Python {result['python']}, "
        f"NumPy {result['numpy']}, load {result['load_average'][0]:.2f}",
        f"clip      {clip['source']}, {clip['seconds']:.2f} s at {clip['sample_rate']} Hz; "
        f"{result['repeat']} runs per stage after {result['warmup']} warm-up",
        "",
        f"{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
    ]
    for stage in STAGES:
        figures = result[stage]
        note = f"  ({figures['from_hz']} -> {figures['to_hz']} Hz)" if stage == "resample" else ""
        lines.append(f"{stage:<12}{figures['p50']:>10.3f}{figures['p95']:>10.3f}{figures['p99']:>10.3f}{note}")
    lines.append("")
    cold = result["cold_start"]
    if cold:
        lines.append(
            f"cold start  {cold['p50']:.0f} ms (median of {len(cold['runs'])}: "
            f"process start -> first decision, '{cold['label']}')"
        )
    memory = result["peak_rss_mb"]
    cold_memory = f"{memory['cold_process']:.1f} MB one-decision process, " if cold else ""
    lines.append(f"peak RSS    {cold_memory}{memory['bench_process']:.1f} MB this benchmark")
    lines.append("")
    reference = result["reference"]
    if reference is None:
        lines.append(result["reference_note"])
    else:
        lines.append(f"against the reference ({reference['cpu']}, {reference['backend']}):")
        for stage, ratio in reference["ratios"].items():
            lines.append(
                f"  {stage:<12}{result[stage]['p50']:.3f} ms here vs "
                f"{reference['reference_ms'][stage]:.3f} ms: {describe_ratio(ratio)}"
            )
        if "end_to_end" not in reference["ratios"]:
            lines.append(f"  {'end_to_end':<12}not compared: this clip is resampled, the reference's is not")
    return "\n".join(lines)


@click.command()
@click.option(
    "--model", "model_path", type=click.Path(dir_okay=False), help="Model file (default: the packaged model)."
)
@click.option(
    "--backend", type=click.Choice(list(BACKENDS)), help="Interpreter backend (default: the first that works)."
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False),
    help="WAV clip to time (default: a synthetic 1 s utterance).",
)
@click.option(
    "--rate", type=click.IntRange(1000, 192000), help="Sample rate of the synthetic clip in Hz (default: the model's)."
)
@click.option("--repeat", type=click.IntRange(1), default=300, show_default=True, help="Timed runs per stage.")
@click.option("--warmup", type=click.IntRange(0), default=20, show_default=True, help="Untimed runs per stage first.")
@click.option(
    "--cold",
    "cold_runs",
    type=click.IntRange(0),
    default=3,
    show_default=True,
    help="Fresh processes timed for the cold start (0 skips it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (timings in ms).")
def bench(
    model_path: str | None,
    backend: str | None,
    input_path: str | None,
    rate: int | None,
    repeat: int,
    warmup: int,
    cold_runs: int,
    as_json: bool,
) -> None:
    """Measure how fast this device runs the model, and compare with the reference.

    Times each stage of one clip (WAV decode, resampling, MFCC, interpreter
    invoke, and samples -> digit end to end) as p50/p95/p99 milliseconds after
    a warm-up; the cold start of a fresh process (import, load, first
    decision); peak resident memory; and compares the p50s with the reference
    figures stored in the model when it was converted.

    \b
    Examples:
      audiomnist-edge bench                         # packaged model, synthetic clip
      audiomnist-edge bench --rate 16000            # include resampling from 16 kHz
      audiomnist-edge bench --model m.tflite --input clip.wav --repeat 1000
      audiomnist-edge bench --json | jq .end_to_end.p50
    """
    if input_path and rate:
        raise click.UsageError("--rate applies to the synthetic clip; drop it with --input")
    model = Model.load(model_path, backend)
    with tempfile.TemporaryDirectory(prefix="audiomnist-bench-") as scratch:
        if input_path:
            wav, source = read_input(input_path), input_path
        else:
            clip_rate = rate or model.params.sample_rate
            wav, source = wav_bytes(synthetic_utterance(clip_rate), clip_rate), "synthetic utterance"
        wav_path = Path(scratch) / "clip.wav"  # the cold-start processes read this copy
        wav_path.write_bytes(wav)
        steps = len(STAGES) * (repeat + warmup) + cold_runs
        with click.progressbar(length=steps, label="benchmarking", file=click.get_text_stream("stderr")) as bar:  # type: ignore[operator]
            result = run_bench(model, wav, source, repeat, warmup, cold_runs, wav_path, bar.update)
    click.echo(dumps(result) if as_json else format_report(result))
