"""Latency of ``listen``: from the block that ends an utterance to its printed digit.

Runs the real command (``listen --input STREAM --json``, in real time by
default, as a microphone would deliver it) on a stream of FSDD test clips with
1 s pauses over quiet noise, and reports the latency percentiles next to the
segmenter's hang-over (the wait for quiet, reported separately).

    python -m benchmarks.listen_latency                    # 30 digits in real time (~45 s)
    python -m benchmarks.listen_latency --fast --digits 100
    python -m benchmarks.listen_latency --device pulse --private-pulse   # through PulseAudio

With ``--device`` the stream is played with ``paplay`` into the default
PulseAudio sink while ``listen --device DEVICE`` captures it, so the figures
include the audio stack; ``--private-pulse`` first starts a private PulseAudio
server whose default source is the monitor of a null sink (benchmarks/pulse.py),
so nothing else needs to be set up or is disturbed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from audiomnist_edge.wav import write_wav

from .clips import recordings
from .pulse import private_server

RATE = 8000
CAPTURE_RATE = 16000  # listen's capture rate with --device (resampled to the model's)


def digit_stream(data: Path | None, digits: int, pause: float = 1.0, noise_dbfs: float = -60.0,
                 seed: int = 0) -> np.ndarray:
    """Clips separated by ``pause`` seconds, over white noise; float32 at RATE."""
    clips, _ = recordings(data, digits, RATE)
    gap = np.zeros(int(pause * RATE), dtype=np.float32)
    stream = np.concatenate([gap] + [part for clip in clips for part in (clip, gap)])
    rng = np.random.default_rng(seed)
    return (stream + rng.normal(0, 10 ** (noise_dbfs / 20), len(stream))).astype(np.float32)


def _text(log) -> str:
    """Everything written so far to a binary temporary file."""
    log.seek(0)
    return log.read().decode(errors="replace")


def through_device(wav: Path, device: str, listen_args: list[str], env: dict[str, str]) -> tuple[str, str]:
    """Play ``wav`` with paplay while ``listen --device DEVICE --json LISTEN_ARGS`` captures it.

    Playback starts once listen says it is listening, and listen is stopped
    with SIGTERM a second after playback ends; (its JSON output, its stderr).
    """
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "audiomnist_edge", "listen", "--device", device,
                                    "--json", *listen_args],
                                   env=env, stdout=subprocess.PIPE, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while "listening on" not in _text(log):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise click.ClickException(f"listen did not start: {_text(log).strip()[-300:]}")
                time.sleep(0.1)
            subprocess.run(["paplay", str(wav)], env=env, check=True)
            time.sleep(1.0)  # the last hang-over
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode:
            raise click.ClickException(_text(log).strip().splitlines()[-1])
        return out.decode(), _text(log)


def from_file(wav: Path, listen_args: list[str]) -> str:
    """``listen --input WAV --json LISTEN_ARGS``'s JSON output."""
    command = [sys.executable, "-m", "audiomnist_edge", "listen", "--input", str(wav), "--json", *listen_args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise click.ClickException(result.stderr.strip().splitlines()[-1])
    return result.stdout


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="FSDD root [default: $AUDIOMNIST_EDGE_FSDD or ../shared/datasets/fsdd].")
@click.option("--digits", type=click.IntRange(1, 3000), default=30, show_default=True)
@click.option("--fast", is_flag=True, help="Feed as fast as possible instead of in real time.")
@click.option("--device", help="Capture from this input device while the stream plays through "
                               "PulseAudio (paplay), instead of reading the file.")
@click.option("--private-pulse", is_flag=True,
              help="With --device: start a private PulseAudio server (null sink, its monitor the "
                   "default source) for the measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def main(model_path: str | None, data: Path | None, digits: int, fast: bool, device: str | None,
         private_pulse: bool, as_json: bool) -> None:
    """Measure listen's decision latency on a stream of spoken digits."""
    if private_pulse and not device:
        raise click.UsageError("--private-pulse needs --device (e.g. --device pulse)")
    if fast and device:
        raise click.UsageError("--fast reads a file; a device delivers audio in real time")
    model_args = ["--model", model_path] if model_path else []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "stream.wav"
        write_wav(wav, digit_stream(data, digits), RATE)
        if device:
            try:
                with (private_server(CAPTURE_RATE) if private_pulse
                      else contextlib.nullcontext(dict(os.environ))) as env:
                    output, _ = through_device(wav, device, ["--samplerate", str(CAPTURE_RATE), *model_args],
                                               env)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                raise click.ClickException(str(exc)) from None
        else:
            output = from_file(wav, [*model_args, *([] if fast else ["--realtime"])])
    records = [json.loads(line) for line in output.splitlines()]
    if not records:
        raise click.ClickException("listen reported no digits")
    latency = np.array([r["latency_ms"] for r in records])
    hangover = np.array([r["hangover_ms"] for r in records])
    figures = {
        "mode": f"device {device}" if device else "fast" if fast else "realtime",
        "digits_spoken": digits, "detections": len(records),
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
