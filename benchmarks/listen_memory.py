"""Peak memory of ``listen --input`` and ``predict`` on a long 48 kHz file (``/usr/bin/time -v``).

Writes (block by block) a WAV of FSDD clips every 2 s over quiet noise at
48 kHz, 16-bit stereo, runs both commands on it in fresh processes and reports
their maximum resident set size next to the file's size.

    python -m benchmarks.listen_memory                   # 60 minutes (~690 MB in a temporary folder)
    python -m benchmarks.listen_memory --minutes 5
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from audiomnist_edge.resample import resample

from .clips import recordings

RATE, CHANNELS = 48000, 2


def write_long_wav(path: Path, minutes: float, seed: int = 0) -> int:
    """A 16-bit stereo WAV of clips 2 s apart over -60 dBFS noise, written in 2 s pieces; bytes."""
    clips, _ = recordings(None, 50, 8000)
    clips = [resample(c, 8000, RATE) for c in clips]
    rng = np.random.default_rng(seed)
    pieces = int(minutes * 30)
    data_bytes = pieces * 2 * RATE * CHANNELS * 2
    fmt = struct.pack("<HHIIHH", 1, CHANNELS, RATE, RATE * CHANNELS * 2, CHANNELS * 2, 16)
    with path.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes) + b"WAVE")
        out.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes))
        for i in range(pieces):
            piece = rng.normal(0, 10 ** (-60 / 20), 2 * RATE)
            clip = clips[i % len(clips)][: RATE]
            piece[RATE // 2: RATE // 2 + len(clip)] += clip
            ints = np.clip(np.round(piece * 32767), -32768, 32767).astype("<i2")
            out.write(np.repeat(ints[:, None], CHANNELS, axis=1).tobytes())
    return path.stat().st_size


def peak_rss_mb(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, output lines) of a command run under /usr/bin/time -v."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise click.ClickException(f"{' '.join(command)} failed: {result.stderr[-500:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return kb / 1024, elapsed, len(result.stdout.splitlines())


@click.command()
@click.option("--minutes", type=click.FloatRange(0.5, None), default=60.0, show_default=True)
def main(minutes: float) -> None:
    """Peak RSS of listen --input and predict on one long 48 kHz stereo file."""
    if shutil.which("/usr/bin/time") is None:
        raise click.ClickException("needs GNU time at /usr/bin/time (apt-get install time)")
    cli = [sys.executable, "-m", "audiomnist_edge"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.wav"
        size = write_long_wav(path, minutes)
        click.echo(f"{minutes:g} min at {RATE} Hz, {CHANNELS} channels, 16-bit: {size / 2**20:.0f} MB")
        for name, args in (("listen --input", ["listen", "--input", str(path), "--json"]),
                           ("predict", ["predict", "--json", str(path)])):
            rss, seconds, lines = peak_rss_mb(cli + args)
            click.echo(f"{name}: peak RSS {rss:.0f} MB, {seconds:.0f} s, {lines} output lines")


if __name__ == "__main__":
    main()
