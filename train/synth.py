"""Synthetic spoken digits for training only: espeak-ng, flite and festival speakers.

A synthetic speaker is one voice of one engine with its own pitch and tempo:

* ``espeak``: an English accent x a voice variant (formant synthesis), each clip
  with its own espeak speed and pitch;
* ``flite``: the voices kal, awb, rms and slt (diphone and clustergen voices made
  from recordings of real people), shifted in pitch (-500..+500 cents) and
  tempo (0.8-1.25) by sox, one shift per speaker;
* ``festival``: the kal and ked diphone voices and the slt HTS voice, with
  festival's duration stretch and the same sox pitch shift.

Clips are written at the model rate in FSDD layout
(``recordings/{digit}_{speaker}_{take}.wav``) into a cache folder outside the
repository, so ``train --synth DIR`` can add them to a training set. Speaker
names carry the engine (``syn``, ``fl``, ``fe`` prefixes), so corpora of
different engines load together. Generated audio is never committed.

    python -m audiomnist_edge.train.synth [--engine espeak|flite|festival] [--speakers N] [--voices V,...]
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
FLITE_VOICES = ["kal", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
ENGINES = {"espeak": ("espeak-ng", "syn"), "flite": ("flite", "fl"), "festival": ("festival", "fe")}
"""engine -> (program it needs, speaker-name prefix)."""
PITCH_CENTS = (-500, 500)
TEMPO = (0.8, 1.25)
VERSION = 1


def default_dir() -> Path:
    base = Path(os.environ.get("AUDIOMNIST_EDGE_CACHE") or Path.home() / ".cache" / "audiomnist-edge")
    return base / "synth"


def voices(n_speakers: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n_speakers`` distinct espeak (accent, variant) pairs, round-robin over accents, seeded."""
    rng = np.random.default_rng(seed)
    pairs = []
    per_accent = -(-n_speakers // len(ACCENTS))
    chosen = {a: [VARIANTS[i] for i in rng.permutation(len(VARIANTS))] for a in ACCENTS}
    for k in range(per_accent):
        for accent in ACCENTS:
            pairs.append((accent, chosen[accent][k % len(VARIANTS)]))
    return pairs[:n_speakers]


def speakers(engine: str, n_speakers: int, seed: int = 0) -> list[dict]:
    """The synthetic speakers of an engine: name, voice and (flite/festival) pitch and tempo.

    ``generate``'s ``voices`` keeps some of them; the list itself never depends on it.
    """
    prefix = ENGINES[engine][1]
    if engine == "espeak":
        return [{"name": f"{prefix}{s:03d}", "voice": f"{a}+{v}"}
                for s, (a, v) in enumerate(voices(n_speakers, seed))]
    names = FLITE_VOICES if engine == "flite" else FESTIVAL_VOICES
    rng = np.random.default_rng([seed, len(prefix)])
    out = []
    for s in range(n_speakers):
        # the first speaker of every voice is the voice itself, the others are shifted
        plain = s < len(names)
        out.append({"name": f"{prefix}{s:03d}", "voice": names[s % len(names)],
                    "pitch_cents": 0 if plain else int(rng.integers(*PITCH_CENTS)),
                    "tempo": 1.0 if plain else round(float(rng.uniform(*TEMPO)), 3)})
    return out


def speak(word: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
    """espeak-ng's rendering of ``word``, resampled to ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(wav), word], capture_output=True, check=True)
        samples, sr = read_wav(wav)
    return resample(samples, sr, rate) if sr != rate else samples


def _shift(src: Path, rate: int, pitch_cents: int, tempo: float) -> np.ndarray:
    """``src`` shifted in pitch and tempo by sox (or as is), at ``rate``."""
    if pitch_cents or tempo != 1.0:
        out = src.with_name(src.stem + "-shifted.wav")
        effects = (["pitch", str(pitch_cents)] if pitch_cents else []) + \
                  (["tempo", "-s", f"{tempo:.3f}"] if tempo != 1.0 else [])
        # -R: sox seeds its dither, so the same clip comes out byte for byte
        subprocess.run(["sox", "-R", str(src), "-b", "16", str(out), *effects],
                       capture_output=True, check=True)
        src = out
    samples, sr = read_wav(src)
    return resample(samples, sr, rate) if sr != rate else samples


def speak_flite(word: str, voice: str, pitch_cents: int, tempo: float, rate: int) -> np.ndarray:
    """flite's rendering of ``word`` in ``voice``, shifted by sox, at ``rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["flite", "-voice", voice, "-t", word, "-o", str(wav)],
                       capture_output=True, check=True)
        return _shift(wav, rate, pitch_cents, tempo)


def speak_festival(words: list[str], voice: str, stretches: list[float], folder: Path) -> list[Path]:
    """Render ``words`` with one festival process (its start-up costs ~2 s); returns the WAVs."""
    lines = [f"(voice_{voice})"]
    paths = []
    for k, (word, stretch) in enumerate(zip(words, stretches)):
        path = folder / f"w{k}.wav"
        lines += [f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
                  f'(utt.save.wave (utt.synth (Utterance Text "{word}")) "{path}" \'riff)']
        paths.append(path)
    script = folder / "say.scm"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["festival", "-b", str(script)], capture_output=True, check=True)
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise EdgeError(f"festival voice {voice} wrote no audio for {len(missing)} word(s); "
                        "is its festvox package installed?")
    return paths


def corpus_dir(engine: str, n_speakers: int, takes: int, rate: int, seed: int,
               voices: list[str] | None = None) -> Path:
    """The default folder of a synthetic corpus (espeak keeps its original name); a subset of
    voices is named by their first words run together (kal and awb: ``flite-kalawb-v1-...``)."""
    name = f"v{VERSION}-s{n_speakers}-t{takes}-r{rate}-seed{seed}"
    if engine == "espeak":
        return default_dir() / name
    subset = "".join(v.split("_")[0] for v in voices) + "-" if voices else ""
    return default_dir() / f"{engine}-{subset}{name}"


def generate(out: str | Path | None = None, n_speakers: int = 320, takes: int = 1,
             rate: int = 8000, seed: int = 0, workers: int = 2, progress: bool = True,
             engine: str = "espeak", voices: list[str] | None = None) -> Path:
    """Write the synthetic corpus and return its root (skips clips already present).

    ``voices`` (flite and festival) keeps only the speakers of those voices: the
    same speakers, names and clips as in the corpus of every voice, the others
    left out (so voices a benchmark measures need never be heard in training).
    """
    if engine not in ENGINES:
        raise EdgeError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if voices:
        known = [] if engine == "espeak" else FLITE_VOICES if engine == "flite" else FESTIVAL_VOICES
        unknown = [v for v in voices if v not in known]
        if unknown:
            raise EdgeError(f"{engine} has no voice {', '.join(unknown)} to choose"
                            + (f" (its voices: {', '.join(known)})" if known else ""))
    for program in (ENGINES[engine][0], *(["sox"] if engine != "espeak" else [])):
        if shutil.which(program) is None:
            raise EdgeError(f"{program} is not installed (Debian/Ubuntu: apt-get install {program})")
    root = Path(out) if out else corpus_dir(engine, n_speakers, takes, rate, seed, voices)
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    people = speakers(engine, n_speakers, seed)
    kept = {p["name"] for p in people if not voices or p["voice"] in voices}
    (root / "voices.json").write_text(json.dumps({p.pop("name"): p for p in
                                                 [dict(q) for q in people if q["name"] in kept]}, indent=1))
    rng = np.random.default_rng(seed + 1)
    jobs = []
    for person in people:
        todo = []
        for digit, word in enumerate(WORDS):
            for take in range(takes):
                # drawn for every clip, present or not, so a resumed run makes the same clips
                spd, pitch = int(rng.integers(110, 201)), int(rng.integers(20, 81))
                path = rec / f"{digit}_{person['name']}_{take}.wav"
                if person["name"] in kept and not path.exists():
                    todo.append((path, word, spd, pitch))
        if todo:
            jobs.append((person, todo))

    def run(job) -> int:
        person, todo = job
        if engine == "espeak":
            for path, word, spd, pitch in todo:
                write_wav(path, speak(word, person["voice"], spd, pitch, rate), rate)
        elif engine == "flite":
            for path, word, _, _ in todo:
                write_wav(path, speak_flite(word, person["voice"], person["pitch_cents"], person["tempo"], rate),
                          rate)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                # festival stretches duration itself; sox then shifts the pitch only
                raw = speak_festival([w for _, w, _, _ in todo], person["voice"],
                                     [1.0 / person["tempo"]] * len(todo), Path(tmp))
                for (path, *_), wav in zip(todo, raw):
                    write_wav(path, _shift(wav, rate, person["pitch_cents"], 1.0), rate)
        return len(todo)

    total, done = sum(len(t) for _, t in jobs), 0
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for n in pool.map(run, jobs):
            done += n
            if progress:
                print(f"\rsynth {engine}: {done}/{total} clips", end="", file=sys.stderr)
    if progress and total:
        print(file=sys.stderr)
    return root


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="espeak")
    parser.add_argument("--out", help="output folder (default: under ~/.cache/audiomnist-edge/synth)")
    parser.add_argument("--speakers", type=int, default=320, help="synthetic speakers")
    parser.add_argument("--takes", type=int, default=1, help="clips per speaker and digit")
    parser.add_argument("--rate", type=int, default=8000, help="sample rate of the clips (Hz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voices", help="flite/festival: comma-separated voices to keep (default: all); "
                                         "the speakers of the others are left out")
    args = parser.parse_args(argv)
    try:
        print(generate(args.out, args.speakers, args.takes, args.rate, args.seed, engine=args.engine,
                       voices=args.voices.split(",") if args.voices else None))
    except (EdgeError, subprocess.CalledProcessError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
