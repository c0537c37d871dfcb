"""Synthetic spoken digits from espeak-ng, for training only.

Each synthetic speaker is an English accent combined with a voice variant;
every clip gets its own speed and pitch. The clips are written at the model
rate in FSDD layout (``recordings/{digit}_{speaker}_{take}.wav``) into a cache
folder outside the repository, so ``--synth DIR`` can add them to a training
set. Generated audio is never committed.

    python -m audiomnist_edge.train.synth [--out DIR] [--speakers 320]
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgeError
from ..resample import resample
from ..wav import read_wav, write_wav

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
            "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "aunty", "belinda",
            "benjamin", "caleb", "david", "ed", "edward", "Gene", "grandma", "grandpa",
            "Jacky", "john", "Lee", "linda", "max", "Michael", "Mike", "norbert", "paul",
            "quincy", "rob", "robert", "steph", "travis", "victor", "zac", "shelby"]
VERSION = 1


def default_dir() -> Path:
    base = Path(os.environ.get("AUDIOMNIST_EDGE_CACHE", Path.home() / ".cache" / "audiomnist-edge"))
    return base / "synth"


def voices(n_speakers: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n_speakers`` distinct (accent, variant) pairs, round-robin over accents, seeded."""
    rng = np.random.default_rng(seed)
    pairs = []
    per_accent = -(-n_speakers // len(ACCENTS))
    chosen = {a: [VARIANTS[i] for i in rng.permutation(len(VARIANTS))] for a in ACCENTS}
    for k in range(per_accent):
        for accent in ACCENTS:
            pairs.append((accent, chosen[accent][k % len(VARIANTS)]))
    return pairs[:n_speakers]


def speak(word: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
    """espeak-ng's rendering of ``word``, resampled to ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(wav), word], capture_output=True, check=True)
        samples, sr = read_wav(wav)
    return resample(samples, sr, rate) if sr != rate else samples


def generate(out: str | Path | None = None, n_speakers: int = 320, takes: int = 1,
             rate: int = 8000, seed: int = 0, workers: int = 2, progress: bool = True) -> Path:
    """Write the synthetic corpus and return its root (skips clips already present)."""
    if shutil.which("espeak-ng") is None:
        raise EdgeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    root = Path(out) if out else default_dir() / f"v{VERSION}-s{n_speakers}-t{takes}-r{rate}-seed{seed}"
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    jobs = []
    for s, (accent, variant) in enumerate(voices(n_speakers, seed)):
        for digit, word in enumerate(WORDS):
            for take in range(takes):
                spd, pitch = int(rng.integers(110, 201)), int(rng.integers(20, 81))
                path = rec / f"{digit}_syn{s:03d}_{take}.wav"
                jobs.append((path, word, f"{accent}+{variant}", spd, pitch))
    (root / "voices.json").write_text(json.dumps(
        {f"syn{s:03d}": f"{a}+{v}" for s, (a, v) in enumerate(voices(n_speakers, seed))}, indent=1))
    todo = [j for j in jobs if not j[0].exists()]

    def run(job):
        path, word, voice, spd, pitch = job
        samples = speak(word, voice, spd, pitch, rate)
        tmp = path.with_suffix(".tmp")
        write_wav(tmp, samples, rate)
        tmp.replace(path)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for k, _ in enumerate(pool.map(run, todo)):
            if progress and (k + 1) % 250 == 0:
                print(f"synth: {k + 1}/{len(todo)} clips", file=sys.stderr)
    return root


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output folder (default: under ~/.cache/audiomnist-edge/synth)")
    parser.add_argument("--speakers", type=int, default=320, help="synthetic speakers (accent x variant)")
    parser.add_argument("--takes", type=int, default=1, help="clips per speaker and digit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(generate(args.out, args.speakers, args.takes, seed=args.seed))


if __name__ == "__main__":
    main()
