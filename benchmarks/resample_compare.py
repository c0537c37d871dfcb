"""Resampling a 48 kHz microphone to the model's 8 kHz: soxr against the NumPy engine.

Speed: both engines on the same 1 s clips in interleaved rounds, the whole
clip at once and in 50 ms blocks (as ``listen`` feeds it). Quality: the level
of a 3.7 kHz tone after resampling (passband flatness just below the 4 kHz
Nyquist frequency) and of a 4.1 kHz tone (above it: whatever is left is
aliasing, folded to 3.9 kHz).

    python -m benchmarks.resample_compare                 # Markdown table on stdout
    python -m benchmarks.resample_compare --rounds 50 --out benchmarks/results   # resample.{json,md}
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from audiomnist_edge.bench import cpu_name
from audiomnist_edge.resample import ENGINES, Resampler, resample

from .clips import one_second, recordings
from .timing import Tick, ratio, spread_ms, time_over_clips

SOURCE_RATE, TARGET_RATE = 48000, 8000
BLOCK = SOURCE_RATE // 20  # 50 ms, listen's block
PASSBAND_HZ, ALIAS_HZ = 3700.0, 4100.0


def streamed(x: np.ndarray, engine: str) -> np.ndarray:
    """48 kHz -> 8 kHz fed in 50 ms blocks, then flushed."""
    resampler = Resampler(SOURCE_RATE, TARGET_RATE, engine)
    parts = [resampler.process(x[i:i + BLOCK]) for i in range(0, len(x), BLOCK)]
    return np.concatenate(parts + [resampler.flush()])


def tone_level_db(engine: str, freq_hz: float, seconds: float = 1.0) -> float:
    """RMS of a resampled tone over the tone's own RMS, dB (middle 80%, away from the edges)."""
    t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
    x = (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    y = resample(x, SOURCE_RATE, TARGET_RATE, engine).astype(np.float64)
    edge = len(y) // 10
    rms = np.sqrt(np.mean(y[edge:-edge] ** 2))
    return float(20 * np.log10(max(rms, 1e-12) / (0.5 / np.sqrt(2))))


def quality(engine: str) -> dict[str, float]:
    """Passband level at 3.7 kHz and aliasing level of a 4.1 kHz tone, dB re the input."""
    return {"passband_3700_db": round(tone_level_db(engine, PASSBAND_HZ), 2),
            "alias_4100_db": round(tone_level_db(engine, ALIAS_HZ), 1)}


def compare(clips_48k: list[np.ndarray], rounds: int, tick: Tick = lambda n: None) -> dict[str, Any]:
    """Times (ms per 1 s clip), soxr's speed-up over NumPy (whole and streamed) and quality."""
    actions = {}
    for engine in ENGINES:
        actions[engine] = lambda x, e=engine: resample(x, SOURCE_RATE, TARGET_RATE, e)
        actions[f"{engine}_stream"] = lambda x, e=engine: streamed(x, e)
    seconds = time_over_clips(actions, clips_48k, rounds, tick)
    return {
        "rates": [SOURCE_RATE, TARGET_RATE],
        "times": {name: spread_ms(s) for name, s in seconds.items()},
        "speedup": {"whole": ratio(seconds["numpy"], seconds["soxr"]),
                    "stream": ratio(seconds["numpy_stream"], seconds["soxr_stream"])},
        "quality": {engine: quality(engine) for engine in ENGINES},
    }


def at_source_rate(signals: list[np.ndarray], rate: int) -> list[np.ndarray]:
    """Signals at ``rate`` Hz brought to 48 kHz (by one engine, so both compete on the same input)."""
    return [resample(x, rate, SOURCE_RATE, "numpy") for x in signals]


def summary(result: dict[str, Any]) -> str:
    """One sentence with the speed-ups, as the README quotes it."""
    whole, stream = result["speedup"]["whole"], result["speedup"]["stream"]
    return (f"soxr {result['times']['soxr']['median_ms']:.3f} ms per second of 48 kHz audio against "
            f"{result['times']['numpy']['median_ms']:.3f} ms for the NumPy fallback: "
            f"{whole['median']:.1f}x ({whole['p25']:.1f}-{whole['p75']:.1f}) faster, "
            f"{stream['median']:.1f}x ({stream['p25']:.1f}-{stream['p75']:.1f}) in 50 ms blocks")


def markdown_rows(result: dict[str, Any]) -> list[str]:
    """The quality table, as Markdown lines."""
    lines = ["| engine | level at 3.7 kHz | 4.1 kHz tone (aliasing) | ms per second of 48 kHz audio |",
             "|---|---:|---:|---:|"]
    for engine in ENGINES:
        q = result["quality"][engine]
        lines.append(f"| {engine} | {q['passband_3700_db']:+.2f} dB | {q['alias_4100_db']:.0f} dB | "
                     f"{result['times'][engine]['median_ms']:.3f} |")
    return lines


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", type=click.Path(file_okay=False),
              help="FSDD folder (default: $AUDIOMNIST_EDGE_FSDD or ../shared/datasets/fsdd).")
@click.option("--clips", "n_clips", type=click.IntRange(1), default=20, show_default=True)
@click.option("--rounds", type=click.IntRange(2), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The results as JSON.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Also write resample.json and resample.md into this folder.")
def main(data: str | None, n_clips: int, rounds: int, as_json: bool, out: str | None) -> None:
    """Compare soxr and the NumPy resampler, 48 kHz -> 8 kHz, speed and quality."""
    signals, source = recordings(Path(data) if data else None, n_clips, TARGET_RATE)
    result = compare(at_source_rate(one_second(signals, TARGET_RATE), TARGET_RATE), rounds)
    result["context"] = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "machine": platform.machine(),
                         "load_average": round(os.getloadavg()[0], 2), "clips": source, "rounds": rounds}
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resample.json").write_text(json.dumps(result, indent=1) + "\n")
        (folder / "resample.md").write_text(markdown(result))
    click.echo(json.dumps(result, indent=1) if as_json else markdown(result), nl=as_json)


def markdown(result: dict[str, Any]) -> str:
    """The context, the speed-ups and the quality table."""
    ctx = result["context"]
    return (f"Measured {ctx['date']} on {ctx['cpu']} ({ctx['machine']}, load {ctx['load_average']:.1f}); "
            f"{ctx['clips']}, 1 s each at 48 kHz; {ctx['rounds']} interleaved rounds.\n\n"
            f"{summary(result)}.\n\n" + "\n".join(markdown_rows(result)) + "\n")


if __name__ == "__main__":
    try:
        import soxr  # noqa: F401
    except ImportError:
        click.echo("error: soxr is not installed (pip install soxr)", err=True)
        sys.exit(1)
    main()
