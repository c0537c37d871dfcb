"""Make the project's own example recordings: spoken digits synthesised by espeak-ng.

Each digit becomes its own short WAV, ``examples/digits/{digit}.wav``, at
16 kHz 16-bit mono (a common microphone format, so ``predict`` shows the
resampling to the model's 8 kHz), trimmed to the speech plus a little silence.
No dataset audio is involved; the files are small enough to ship.

    python examples/make_example.py                  # the shipped set
    python examples/make_example.py --digits 0123456789 --out /tmp/digits

Needs Debian's ``espeak-ng`` (``apt-get install espeak-ng``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from audiomnist_edge.resample import resample
from audiomnist_edge.wav import read_wav, write_wav

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RATE = 16000
PAD_SECONDS = 0.08
THRESHOLD = 0.01


def synthesise(word: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of ``word``: float32 mono samples and their rate in Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "word.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), word],
                       check=True, capture_output=True)
        return read_wav(path)


def trim(samples: np.ndarray, rate: int, pad_seconds: float = PAD_SECONDS) -> np.ndarray:
    """The span of samples above THRESHOLD, with ``pad_seconds`` of context each side."""
    loud = np.flatnonzero(np.abs(samples) > THRESHOLD)
    if loud.size == 0:
        return samples
    pad = int(pad_seconds * rate)
    return samples[max(0, loud[0] - pad):loud[-1] + 1 + pad]


@click.command()
@click.option("--digits", default="2579", show_default=True, help="Digits to say, one file each.")
@click.option("--out", type=click.Path(file_okay=False), show_default=True,
              default=str(Path(__file__).resolve().parent / "digits"), help="Output folder.")
@click.option("--voice", default="en-us", show_default=True, help="espeak-ng voice.")
@click.option("--speed", default=150, show_default=True, help="Words per minute.")
def main(digits: str, out: str, voice: str, speed: int) -> None:
    """Write one 16 kHz 16-bit WAV per digit into OUT, named DIGIT.wav."""
    if shutil.which("espeak-ng") is None:
        sys.exit("error: espeak-ng not found (apt-get install espeak-ng)")
    if not digits or not digits.isdigit():
        sys.exit(f"error: --digits must be digits 0-9, not {digits!r}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for digit in dict.fromkeys(digits):
        samples, rate = synthesise(WORDS[int(digit)], voice, speed)
        clip = trim(resample(samples, rate, RATE), RATE)
        path = folder / f"{digit}.wav"
        write_wav(path, 0.9 * clip / max(float(np.abs(clip).max()), 1e-6), RATE)
        total += path.stat().st_size
        print(f"{path}: {len(clip) / RATE:.2f} s")
    print(f"{total / 1024:.1f} KB in {folder}")


if __name__ == "__main__":
    main()
