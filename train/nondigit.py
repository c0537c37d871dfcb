"""Non-digit clips for the model's ``unknown`` class: synthetic words and noise, training only.

A model trained with these clips (``train --synth DIR``) has an eleventh output,
``unknown``; ``predict`` and ``listen`` report an utterance whose best label is
``unknown`` as rejected instead of turning it into a digit. The clips are:

* ``WORDS`` (everyday words, short phrases and number near-misses such as
  "ten", "twenty", "fortieth"), each spoken by ``voices_per_word`` espeak-ng
  voices (formant synthesis, own speed and pitch) and by one of the voices
  made from recordings of two real people, kal and awb (flite kal, flite awb,
  festival kal), and by one festival voice of another language (Italian,
  Catalan, Czech, Finnish or Russian, reading the English spelling), all
  shifted in pitch and tempo by sox. Words that sound like a digit ("oh",
  "to", "for", "won", "ate") are left out: calling them unknown would teach
  the model to reject the digit itself. The benchmarks measure
  rejection on a different word list spoken by three other people (flite rms
  and slt, festival ked), so neither the words nor the people of that
  measurement are seen here.
* noise bursts: white, pink and brown noise, mains hum, clicks, and babble of
  3-5 overlapping words, 0.25-1.2 s long at -45..-10 dBFS.

Clips are written at the model rate as ``recordings/unknown_{speaker}_{take}.wav``
under the cache folder, never into the repository.

    python -m audiomnist_edge.train.nondigit [--voices-per-word N] [--all-recorded] [--noise N]
"""

from __future__ import annotations

import concurrent.futures
import sys
from pathlib import Path

import numpy as np

from ..errors import EdgeError
from ..wav import read_wav, write_wav
from .capture import babble, coloured_noise, hum
from .synth import ACCENTS, PITCH_CENTS, TEMPO, VARIANTS, _shift, default_dir, speak, speak_festival, speak_flite

NEAR_MISSES = (
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty "
    "forty fifty sixty seventy eighty ninety hundred thousand million first second third fourth "
    "fifth sixth seventh eighth ninth tenth fortieth once twice dozen nothing seventies "
    "sixpence nineteenth eighteenth"
).split()
EVERYDAY = (
    "about above across action address afraid after afternoon airport alarm almost alone always "
    "animal another anyone apartment arrive article asleep attack autumn baby back bakery balance "
    "ball band bank battery beach beautiful become bedroom before begin behind believe below "
    "better bicycle big bird black blanket blue board boat body book border borrow boss both box "
    "bread break breakfast bridge bright bring brother brown brush bucket build burn bus busy "
    "butter buy cabin cake call calm can captain car card careful carry castle cat catch cause "
    "ceiling centre change cheap check cheese chicken child choose church city class clean clear "
    "climb clock cloud coat cold colour come common cook cool copy corner correct cotton count "
    "country cousin cover cream cross crowd cup cut daily dance danger dark daughter day dead dear "
    "decide deep desk dinner dirty dish distance dog door double drawer dream dress drink drive "
    "drop dry during early earth east easy edge egg empty end engine enough enter ever "
    "every exit explain face fact fall family famous far farm fast father fear feel field fight "
    "fill film find finger finish fire fish flag flat floor flower fly follow food foot forget "
    "fork friend front fruit full funny future game garage gate gentle get gift girl give glass "
    "glove good grass great green grey ground group grow guest guitar hair half hall hand handle "
    "hang hard hat head health hear heart heavy help here high hill history hold hole home honey "
    "hope horse hospital hot house hungry hurry ice idea island jacket job join juice jump just "
    "keep key kind king kiss knee knife know lady lake lamp land language last late laugh lazy "
    "learn leave lemon lesson level library lift like line lion list listen live long look lose "
    "loud love low lunch machine magic main make man map mark marry meat meet memory metal milk "
    "mirror miss mistake moment money month moon mother mountain mouse mouth move much name "
    "narrow near neck need never new news next nice night noise north nose note notice now ocean "
    "office often oil old only oven page paint pair park party pass path pay peace pen "
    "pepper phone piano pick piece pillow place plan plant plate play police poor potato "
    "power present pretty price print private pull push queen quiet radio rain read ready real "
    "red remember rent rest rice rich ride ring river road rock roof room round rule run safe "
    "salt same sand save say school sea seat secret see sell send sentence share sharp sheep shelf "
    "ship shirt shoe shop short shoulder show shut sign silence sing sister sit sleep slow smile "
    "snow soap soft soldier something song soon sound soup south space speak special spring "
    "square stairs star start stone story street strong student sugar sun supper sure sweet swim "
    "take talk tall taxi tea team tell thank that thing think this ticket tiger time tired today "
    "together tomorrow tonight tool top touch towel town toy train turn uncle understand "
    "until use usual valley vegetable very village visit voice wait walk wall want warm wash "
    "watch wave way wear wedding week west wet wheel white wide wife wild wind wine wing winner "
    "wish woman wood word work world write wrong year young"
).split()
PHRASES = (
    "good afternoon", "thank you", "turn it off", "switch on the lamp", "what time is it",
    "see you soon", "excuse me", "how are you", "not now", "stay away", "come here",
    "play a song", "never mind", "all done", "wait a moment", "good night",
    "call my mother", "shut the door", "that is okay", "let me think",
)
WORDS = tuple(dict.fromkeys(NEAR_MISSES + EVERYDAY)) + PHRASES
"""Everything the voices say: near-misses, everyday words, short phrases (no digit homophones)."""
NOISE_KINDS = ("white", "pink", "brown", "hum", "click", "babble")
RECORDED_VOICES = (("flite", "kal"), ("flite", "awb"), ("festival", "kal_diphone"))
"""(engine, voice) of English voices from recordings of real people; the benchmarks' people are others."""
FOREIGN_VOICES = ("lp_diphone", "pc_diphone", "upc_ca_ona_hts", "czech_dita", "czech_machac",
                  "hy_fi_mv_diphone", "suo_fi_lj_diphone", "msu_ru_nsh_clunits")
"""festival voices of other languages (Italian, Catalan, Czech, Finnish, Russian; women and men)
reading the words with their own letter-to-sound rules: real voices saying no English digit."""
FOREIGN_PACKAGES = ("festvox-italp16k", "festvox-itapc16k", "festvox-ca-ona-hts", "festvox-czech-dita",
                    "festvox-czech-machac", "festvox-suopuhe-lj", "festvox-suopuhe-mv", "festvox-ru")
VERSION = 3


def corpus_dir(voices_per_word: int, n_noise: int, rate: int, seed: int, all_recorded: bool = False) -> Path:
    every = "-rall" if all_recorded else ""
    return default_dir() / f"nondigit-v{VERSION}-w{voices_per_word}{every}-n{n_noise}-r{rate}-seed{seed}"


def noise_clip(kind: str, rate: int, rng: np.random.Generator, words: list[np.ndarray]) -> np.ndarray:
    """One noise burst of ``kind`` (see NOISE_KINDS), 0.25-1.2 s, RMS -45..-10 dBFS."""
    n = int(rng.uniform(0.25, 1.2) * rate)
    if kind == "hum":
        x = hum(n, rate, float(rng.choice([50.0, 60.0])), rng)
    elif kind == "click":
        x = np.zeros(n, dtype=np.float32)
        for at in rng.integers(0, n, int(rng.integers(1, 6))):
            length = min(n - at, int(0.03 * rate))
            x[at:at + length] += (rng.standard_normal(length) * np.exp(-np.arange(length) / (0.004 * rate)))
        x = x / max(np.sqrt(np.mean(x ** 2)), 1e-9)
    elif kind == "babble":
        x = babble(words, n, int(rng.integers(3, 6)), rng)
    else:
        x = coloured_noise(kind, n, rate, rng)
    level = 10 ** (rng.uniform(-45, -10) / 20)
    return np.clip(x * level, -1, 1).astype(np.float32)


def _shape(rng: np.random.Generator) -> tuple[int, float]:
    """A recorded voice's pitch shift (cents) and tempo factor for one clip."""
    return int(rng.integers(*PITCH_CENTS)), round(float(rng.uniform(*TEMPO)), 3)


def generate(out: str | Path | None = None, voices_per_word: int = 2, n_noise: int = 400,
             rate: int = 8000, seed: int = 0, workers: int = 2, progress: bool = True,
             words: tuple[str, ...] = WORDS, all_recorded: bool = False) -> Path:
    """Write the non-digit corpus and return its root (skips clips already present).

    Each of the ``words`` is spoken by ``voices_per_word`` espeak-ng voices drawn
    at random (speaker ``nd{accent}x{variant}``), by one RECORDED_VOICES voice
    (speaker ``nd{engine}{voice}``; with ``all_recorded`` by each of them, the
    others shifted by draws of their own, so the first voice's clips stay as
    they are) and by one FOREIGN_VOICES voice (speaker ``ndfo{k}``); ``n_noise``
    noise bursts are spread over NOISE_KINDS (speaker ``ndnoise``).
    """
    import shutil
    import tempfile

    for program in ("espeak-ng", "flite", "festival", "sox"):
        if shutil.which(program) is None:
            raise EdgeError(f"{program} is not installed (Debian/Ubuntu: apt-get install {program})")
    root = Path(out) if out else corpus_dir(voices_per_word, n_noise, rate, seed, all_recorded)
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, VERSION])
    espeak_jobs, recorded_jobs = [], []
    for w, word in enumerate(words):
        # drawn for every clip, present or not, so a resumed run makes the same clips
        for _ in range(voices_per_word):
            a, v = int(rng.integers(len(ACCENTS))), int(rng.integers(len(VARIANTS)))
            speed, pitch = int(rng.integers(110, 201)), int(rng.integers(20, 81))
            path = rec / f"unknown_nd{a}x{v:02d}_{w}.wav"
            if not path.exists():
                espeak_jobs.append((path, word, f"{ACCENTS[a]}+{VARIANTS[v]}", speed, pitch))
        first = int(rng.integers(len(RECORDED_VOICES)))
        voices = [(first, rng)]
        if all_recorded:  # the others draw from a generator of their own: the first's clips stay as they are
            extra = np.random.default_rng([seed, VERSION, 2, w])
            voices += [(i, extra) for i in range(len(RECORDED_VOICES)) if i != first]
        for i, source in voices:
            engine, voice = RECORDED_VOICES[i]
            path = rec / f"unknown_nd{engine[:2]}{voice.split('_')[0]}_{w}.wav"
            cents, tempo = _shape(source)  # drawn for every clip, present or not
            if not path.exists():
                recorded_jobs.append((path, word, engine, voice, cents, tempo))
        k = int(rng.integers(len(FOREIGN_VOICES)))
        cents, tempo = _shape(rng)
        path = rec / f"unknown_ndfo{k}_{w}.wav"
        if not path.exists():
            recorded_jobs.append((path, word, "festival", FOREIGN_VOICES[k], cents, tempo))

    def say(job) -> None:
        path, word, engine, voice, *shape = job  # espeak: speed, pitch; flite: cents, tempo
        write_wav(path, (speak if engine == "espeak" else speak_flite)(word, voice, *shape, rate), rate)

    festival = [j for j in recorded_jobs if j[2] == "festival"]
    jobs = [(p, w, "espeak", v, s, t) for p, w, v, s, t in espeak_jobs] + \
        [j for j in recorded_jobs if j[2] == "flite"]
    total = len(jobs) + len(festival)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(say, jobs), 1):
            if progress and (done % 100 == 0 or done == len(jobs)):
                print(f"\rnondigit words: {done}/{total} clips", end="", file=sys.stderr)
    for voice in dict.fromkeys(j[3] for j in festival):
        mine = [j for j in festival if j[3] == voice]
        with tempfile.TemporaryDirectory() as tmp:
            # festival stretches duration itself (one process per voice); sox shifts the pitch
            raw = speak_festival([j[1] for j in mine], voice, [1.0 / j[5] for j in mine], Path(tmp))
            for (path, _, _, _, cents, _), wav in zip(mine, raw):
                write_wav(path, _shift(wav, rate, cents, 1.0), rate)
    if progress and total:
        print(f"\rnondigit words: {total}/{total} clips", file=sys.stderr)
    spoken = sorted(p for p in rec.glob("unknown_nd*_*.wav") if "_ndnoise_" not in p.name)
    sources = [read_wav(p)[0] for p in spoken[::max(1, len(spoken) // 200)]]
    noise_rng = np.random.default_rng([seed, VERSION, 1])
    for k in range(n_noise):
        kind = NOISE_KINDS[k % len(NOISE_KINDS)]
        clip = noise_clip(kind, rate, noise_rng, sources)  # drawn for every clip: a resumed run matches
        path = rec / f"unknown_ndnoise_{k}.wav"
        if not path.exists():
            write_wav(path, clip, rate)
    return root


def main(argv: list[str] | None = None) -> None:
    import argparse
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output folder (default: under ~/.cache/audiomnist-edge/synth)")
    parser.add_argument("--voices-per-word", type=int, default=2,
                        help="espeak-ng voices saying each word (besides one recorded voice)")
    parser.add_argument("--all-recorded", action="store_true",
                        help="every recorded English voice (flite kal, awb, festival kal) says every word, not one")
    parser.add_argument("--noise", type=int, default=400, help="noise bursts")
    parser.add_argument("--rate", type=int, default=8000, help="sample rate of the clips (Hz)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        print(generate(args.out, args.voices_per_word, args.noise, args.rate, args.seed,
                       all_recorded=args.all_recorded))
    except (EdgeError, subprocess.CalledProcessError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
