"""CPU and memory of ``listen`` while it hears nothing but room noise.

Starts ``listen --input - --samplerate RATE`` and writes quiet noise (16-bit PCM)
to its stdin in real time, 50 ms at a time, as a microphone would deliver it.
After a warm-up it reads the process's CPU time and resident memory from
/proc at the start and end of the measured window (Linux only).

    python -m benchmarks.listen_idle_cpu                   # 60 s at the model's rate
    python -m benchmarks.listen_idle_cpu --rate 48000      # a device that refuses 8 kHz
    python -m benchmarks.listen_idle_cpu --device pulse    # a real input device instead of stdin
    python -m benchmarks.listen_idle_cpu --device pulse --rate 16000 --private-pulse
                                                           # ... on a private PulseAudio server
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import click
import numpy as np

from .pulse import private_server

BLOCK_SECONDS = 0.05


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False),
              help="Model file [default: the packaged model].")
@click.option("--rate", type=click.IntRange(8000, 192000), default=8000, show_default=True,
              help="Rate of the fed audio (resampled to the model's by listen).")
@click.option("--seconds", type=click.FloatRange(5, None), default=60, show_default=True,
              help="Length of the measured window.")
@click.option("--warmup", type=click.FloatRange(0, None), default=5, show_default=True)
@click.option("--noise-dbfs", type=float, default=-60.0, show_default=True)
@click.option("--device", help="Capture from this input device (PortAudio) instead of stdin; "
                               "--rate is then the capture rate.")
@click.option("--private-pulse", is_flag=True,
              help="With --device: start a private PulseAudio server (null sink at --rate, its monitor "
                   "the default source) for the measurement (benchmarks/pulse.py).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def main(model_path: str | None, rate: int, seconds: float, warmup: float, noise_dbfs: float,
         device: str | None, private_pulse: bool, as_json: bool) -> None:
    """Measure listen's CPU use (percent of one core) and memory while idle-listening."""
    if private_pulse and not device:
        raise click.UsageError("--private-pulse needs --device (e.g. --device pulse)")
    try:
        with private_server(rate) if private_pulse else contextlib.nullcontext(dict(os.environ)) as env:
            measure(model_path, rate, seconds, warmup, noise_dbfs, device, as_json, env)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


def measure(model_path: str | None, rate: int, seconds: float, warmup: float, noise_dbfs: float,
            device: str | None, as_json: bool, env: dict[str, str]) -> None:
    """Run listen, feed or let it capture for warm-up + seconds, and print the figures."""
    source = ["--device", device] if device else ["--input", "-"]
    command = [sys.executable, "-m", "audiomnist_edge", "listen", *source,
               "--samplerate", str(rate), "--json"]
    command += ["--model", model_path] if model_path else []
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    rng = np.random.default_rng(0)
    block = int(rate * BLOCK_SECONDS)
    started = time.perf_counter()
    marks: dict[str, tuple[float, float, int]] = {}
    sent = 0
    try:
        while sent < (warmup + seconds) / BLOCK_SECONDS:
            if not device:
                noise = rng.normal(0, 10 ** (noise_dbfs / 20) * 32768, block)
                process.stdin.write(noise.astype("<i2").tobytes())
                process.stdin.flush()
            sent += 1
            if sent == round(warmup / BLOCK_SECONDS):
                marks["start"] = (time.perf_counter(), cpu_seconds(process.pid), rss_kib(process.pid))
            time.sleep(max(0.0, started + sent * BLOCK_SECONDS - time.perf_counter()))
        marks["end"] = (time.perf_counter(), cpu_seconds(process.pid), rss_kib(process.pid))
    finally:
        process.stdin.close()  # end of input: listen finishes and prints its summary
        if device:
            process.terminate()
        out, err = process.stdout.read(), process.stderr.read()
        process.wait(timeout=60)
    if process.returncode:
        raise click.ClickException(err.decode().strip().splitlines()[-1])
    wall = marks["end"][0] - marks["start"][0]
    cpu = marks["end"][1] - marks["start"][1]
    figures = {
        "source": device or "stdin", "rate": rate, "seconds": round(wall, 1),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 2),
        "rss_kib_start": marks["start"][2], "rss_kib_end": marks["end"][2],
        "detections": len(out.splitlines()),
        "target": "cpu < 5% of one core", "met": 100 * cpu / wall < 5,
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(f"idle listening to {figures['source']} at {rate} Hz for {figures['seconds']} s: "
               f"{figures['cpu_percent_of_one_core']}% of one core, RSS {figures['rss_kib_start']} -> "
               f"{figures['rss_kib_end']} KiB, {figures['detections']} detections; "
               f"target < 5%: {'met' if figures['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
