"""Latency of ``listen``: from the block that ends an utterance to its printed digit.

Runs the real command (``listen --input STREAM --json``, in real time by
default, as a microphone would deliver it) on a stream of FSDD test clips with
1 s pauses over quiet noise, and reports the latency percentiles next to the
segmenter's hang-over (the wait for quiet, reported separately).

    python -m benchmarks.listen_latency                    # 30 digits in real time (~45 s)
    python -m benchmarks.listen_latency --fast --digits 100
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from audiomnist_edge.wav import write_wav

from .clips import recordings

RATE = 8000


def digit_stream(data: Path | None, digits: int, pause: float = 1.0, noise_dbfs: float = -60.0,
                 seed: int = 0) -> np.ndarray:
    """Clips separated by ``pause`` seconds, over white noise; float32 at RATE."""
    clips, _ = recordings(data, digits, RATE)
    gap = np.zeros(int(pause * RATE), dtype=np.float32)
    stream = np.concatenate([gap] + [part for clip in clips for part in (clip, gap)])
    rng = np.random.default_rng(seed)
    return (stream + rng.normal(0, 10 ** (noise_dbfs / 20), len(stream))).astype(np.float32)


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="FSDD root [default: $AUDIOMNIST_EDGE_FSDD or ../shared/datasets/fsdd].")
@click.option("--digits", type=click.IntRange(1, 3000), default=30, show_default=True)
@click.option("--fast", is_flag=True, help="Feed as fast as possible instead of in real time.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def main(model_path: str | None, data: Path | None, digits: int, fast: bool, as_json: bool) -> None:
    """Measure listen's decision latency on a stream of spoken digits."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "stream.wav"
        write_wav(wav, digit_stream(data, digits), RATE)
        command = [sys.executable, "-m", "audiomnist_edge", "listen", "--input", str(wav), "--json"]
        command += ["--model", model_path] if model_path else []
        command += [] if fast else ["--realtime"]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise click.ClickException(result.stderr.strip().splitlines()[-1])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    latency = np.array([r["latency_ms"] for r in records])
    hangover = np.array([r["hangover_ms"] for r in records])
    figures = {
        "mode": "fast" if fast else "realtime", "digits_spoken": digits, "detections": len(records),
        "latency_ms": {f"p{p}": round(float(np.percentile(latency, p)), 2) for p in (50, 90, 99)}
        | {"max": round(float(latency.max()), 2)},
        "hangover_ms": round(float(np.median(hangover)), 1),
        "target": "latency p50 < 30 ms",
        "met": bool(np.percentile(latency, 50) < 30),
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    lat = figures["latency_ms"]
    click.echo(f"{figures['detections']} detections of {digits} digits ({figures['mode']}): latency "
               f"p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
               f"plus hang-over {figures['hangover_ms']} ms (end of speech to end of quiet); "
               f"target p50 < 30 ms: {'met' if figures['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
