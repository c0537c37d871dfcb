"""The capture-condition set: held-out clips as a microphone would deliver them.

Every condition except ``clean`` starts from what a microphone hands the
runtime: 0.5-1.0 s of untrimmed silence on each side of the word carrying a
white noise floor at -50 dBFS. On top of that, one effect each (noise at an
SNR relative to the speech's active power, a room, a quiet speaker, mains hum,
the telephone band). Clip ``i`` under condition ``c`` is drawn from a
generator seeded by (seed, c, i), so the audio is the same whichever subset of
conditions or clips is scored, and whichever recogniser scores it. Babble is
mixed from other held-out clips (other speakers where there are any).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import EdgeError
from ..resample import resample
from ..wav import read_wav
from .capture import NOISE_KINDS, CaptureParams, random_capture

EVAL_RIR_SEED = 10_000  # rooms never used by the training bank (seed 0)
BABBLE_SOURCES = 24     # other held-out clips a clip's babble is drawn from

MICROPHONE = CaptureParams(
    reverb=0.0, pad=1.0, pad_seconds=(0.5, 1.0), floor_dbfs=(-50.0, -50.0), floor_snr_db=None, noise=0.0,
    gain_db=(0.0, 0.0), lowcut=0.0, highcut=0.0, telephone=0.0, mulaw=0.0, dc=0.0, clipping=0.0)
"""Padding 0.5-1.0 s each side with a -50 dBFS white floor (whatever the speech's level); nothing else."""


def _noise(kind: str, snr_db: float, **extra) -> CaptureParams:
    weights = tuple(1.0 if k == kind else 0.0 for k in NOISE_KINDS)
    return dataclasses.replace(MICROPHONE, noise=1.0, noise_weights=weights,
                               snr_db=(snr_db, snr_db), **extra)


def _room(rt60: float) -> CaptureParams:
    return dataclasses.replace(MICROPHONE, reverb=1.0, rt60=(rt60, rt60), rir_count=32,
                               rir_seed=EVAL_RIR_SEED)


CONDITIONS: dict[str, CaptureParams | None] = {
    "clean": None,
    "padded": MICROPHONE,
    **{f"{kind}-{snr}dB": _noise(kind, float(snr))
       for kind in ("white", "pink", "babble") for snr in (20, 10, 5)},
    "reverb-0.3s": _room(0.3),
    "reverb-0.6s": _room(0.6),
    "quiet-20dB": dataclasses.replace(MICROPHONE, gain_db=(-20.0, -20.0)),
    "hum-50Hz": _noise("hum", 15.0, hum_hz=(50.0,)),
    "telephone": dataclasses.replace(MICROPHONE, telephone=1.0),
}
"""Condition name -> its capture settings (None: the clip as recorded)."""

DESCRIPTIONS = {
    "clean": "the clip as recorded (trimmed, quiet)",
    "padded": "0.5-1 s of silence each side, white noise floor -50 dBFS",
    **{f"{kind}-{snr}dB": f"padded + {kind} noise at {snr} dB SNR"
       for kind in ("white", "pink", "babble") for snr in (20, 10, 5)},
    "reverb-0.3s": "padded + simulated room, RT60 0.3 s",
    "reverb-0.6s": "padded + simulated room, RT60 0.6 s",
    "quiet-20dB": "padded, speech 20 dB quieter",
    "hum-50Hz": "padded + 50 Hz mains hum (5 harmonics) 15 dB below the speech",
    "telephone": "padded + telephone band 300-3400 Hz",
}


def check_names(names: Iterable[str] | None) -> list[str]:
    """The condition names to score (all by default); unknown names raise EdgeError."""
    if names is None:
        return list(CONDITIONS)
    names = list(names)
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise EdgeError(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}")
    return names


def condition_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The generator of clip ``index`` under condition ``name``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


def apply_condition(samples: np.ndarray, rate: int, name: str, seed: int, index: int,
                    babble: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Clip ``index`` (float32 mono at ``rate`` Hz) as condition ``name`` delivers it.

    ``babble`` holds other clips at ``rate`` for the babble conditions.
    """
    params = CONDITIONS[check_names([name])[0]]
    if params is None:
        return np.asarray(samples, dtype=np.float32)
    return random_capture(samples, rate, condition_rng(seed, name, index), params, babble)


@dataclasses.dataclass
class _Loaded:
    samples: np.ndarray
    rate: int
    digit: int
    speaker: str


def _speaker(path: Path) -> str:
    parts = path.stem.split("_")
    return parts[1] if len(parts) == 3 else path.stem


def _babble_sources(loaded: list[_Loaded], index: int, seed: int,
                    cache: dict[tuple[int, int], np.ndarray]) -> list[np.ndarray]:
    """Up to BABBLE_SOURCES other clips (other speakers where any), at clip ``index``'s rate."""
    me = loaded[index]
    others = [j for j, c in enumerate(loaded) if j != index and c.speaker != me.speaker]
    others = others or [j for j in range(len(loaded)) if j != index]
    if not others:
        return []
    rng = np.random.default_rng([seed, zlib.crc32(b"babble"), index])
    out = []
    for j in rng.choice(others, size=min(BABBLE_SOURCES, len(others)), replace=False):
        key = (int(j), me.rate)
        if key not in cache:
            c = loaded[int(j)]
            cache[key] = resample(c.samples, c.rate, me.rate) if c.rate != me.rate else c.samples
        out.append(cache[key])
    return out


def generate(clips: Sequence[tuple[str | Path, int]], seed: int = 0,
             conditions: Iterable[str] | None = None
             ) -> Iterator[tuple[str, int, np.ndarray, int, int]]:
    """(condition, clip index, samples, rate, digit) for every condition and clip, conditions outer.

    Clips are read at their own rate; conditions are applied there, as a
    microphone at that rate would deliver them.
    """
    names = check_names(conditions)
    loaded = []
    for path, digit in clips:
        samples, rate = read_wav(path)
        loaded.append(_Loaded(samples, int(rate), int(digit), _speaker(Path(path))))
    cache: dict[tuple[int, int], np.ndarray] = {}
    for name in names:
        for i, clip in enumerate(loaded):
            babble = _babble_sources(loaded, i, seed, cache) if name.startswith("babble") else None
            yield name, i, apply_condition(clip.samples, clip.rate, name, seed, i, babble), clip.rate, clip.digit


def score(classify: Callable[[np.ndarray, int], int | None], clips: Sequence[tuple[str | Path, int]],
          seed: int = 0, conditions: Iterable[str] | None = None, progress: bool = True,
          label: str = "conditions") -> dict:
    """Accuracy of ``classify(samples, rate) -> digit`` under each condition.

    Returns {"n": clips, "seed", "accuracy": {condition: fraction}, "mean": the
    mean over the conditions scored, "seconds_per_clip": mean classify time,
    "descriptions": {condition: text}}.
    """
    import click

    names = check_names(conditions)
    correct = dict.fromkeys(names, 0)
    elapsed = 0.0
    items = generate(clips, seed, names)
    total = len(names) * len(clips)

    def run(iterator) -> None:
        nonlocal elapsed
        for name, _, samples, rate, digit in iterator:
            t0 = time.perf_counter()
            guess = classify(samples, rate)
            elapsed += time.perf_counter() - t0
            correct[name] += int(guess == digit)

    if progress and total:
        with click.progressbar(items, length=total, label=label, file=sys.stderr) as bar:
            run(bar)
    else:
        run(items)
    n = len(clips)
    accuracy = {name: correct[name] / n if n else 0.0 for name in names}
    return {"n": n, "seed": seed, "accuracy": accuracy,
            "mean": float(np.mean(list(accuracy.values()))) if accuracy else 0.0,
            "seconds_per_clip": elapsed / total if total else 0.0,
            "descriptions": {name: DESCRIPTIONS[name] for name in names}}


DECISIONS = ("clip", "predict")


def decider(model, decision: str = "predict", **options) -> Callable[[np.ndarray, int], int | None]:
    """``classify(samples, rate) -> digit or None`` for an edge ``Model``; ``options`` go to
    ``predict``'s ``Recognizer`` (e.g. ``background_db``).

    ``predict``: what ``audiomnist-edge predict`` (and ``listen``) report for the
    audio: the runtime's segmentation, shift-averaged decision and confidence
    gate; right only when exactly one digit is reported (utterances rejected
    as unknown do not count) and it is the spoken one.
    ``clip``: ``Model.classify`` on the whole clip (trim, centre, one decision),
    as ``convert`` verifies a model: what the model hears, without the
    segmentation's part.
    """
    from ..recognizer import Recognizer

    if decision not in DECISIONS:
        raise EdgeError(f"unknown decision path {decision!r} (choose from {', '.join(DECISIONS)})")

    def clip(samples: np.ndarray, rate: int) -> int | None:
        label = model.classify(samples, rate).label
        return int(label) if label.isdigit() else None

    def predict(samples: np.ndarray, rate: int) -> int | None:
        recognizer = Recognizer(model, rate, **options)
        block = max(1, rate // 20)
        found = [d for k in range(0, len(samples), block)
                 for d in recognizer.feed(samples[k:k + block])] + recognizer.finish()
        digits = [d.digit for d in found if d.digit is not None]
        return int(digits[0]) if len(digits) == 1 else None

    return predict if decision == "predict" else clip


def condition_table(model, clips: Sequence[tuple[str | Path, int]], seed: int = 0,
                    conditions: Iterable[str] | None = None, progress: bool = True,
                    decision: str = "clip") -> dict:
    """Accuracy of an edge ``Model`` under each condition (``decider`` path); see ``score``."""
    result = score(decider(model, decision), clips, seed, conditions, progress)
    result["model"] = str(model.path)
    result["decision"] = decision
    return result


def held_out_clips(run_dir: str | Path, data=None) -> tuple[list[tuple[Path, int]], str]:
    """(path, digit) of a run's held-out clips, and the split's description."""
    from .datasets import load_many, make_split
    from .fit import read_run

    info, _, recipe = read_run(run_dir)
    ds = load_many(data or info["data"])
    split = make_split(ds, info["split"], info.get("fold"), recipe.splitting_seed)
    return [(ds.clips[i].path, ds.clips[i].digit) for i in split.test], split.describe()


def run_table(run_dir: str | Path, model_path: str | Path | None = None, data=None, seed: int = 0,
              progress: bool = True, decision: str = "clip") -> dict:
    """The condition table of a run's int8 model (RUN/model-int8.tflite or ``model_path``)."""
    from ..model import Model

    run_dir = Path(run_dir)
    run_dir = run_dir.parent if run_dir.is_file() else run_dir
    if not (run_dir / "run.json").is_file():
        raise EdgeError(f"{run_dir}: not a run folder (no run.json)")
    path = Path(model_path) if model_path else run_dir / "model-int8.tflite"
    if not path.is_file():
        raise EdgeError(f"{path}: no int8 model; run `audiomnist-edge convert {run_dir}` first "
                        "(or pass --model)")
    clips, split = held_out_clips(run_dir, data)
    result = condition_table(Model.load(path), clips, seed, progress=progress, decision=decision)
    result["split"] = split
    return result


def format_table(result: dict) -> str:
    """A plain-text table: condition, accuracy, description."""
    lines = [f"{result.get('split', 'clips')}: {result['n']} clips, seed {result['seed']}"]
    for name, acc in result["accuracy"].items():
        lines.append(f"  {name:<12} {acc:7.2%}  {result['descriptions'][name]}")
    lines.append(f"  {'mean':<12} {result['mean']:7.2%}")
    return "\n".join(lines)


def fold_conditions(rows: list[dict], decision: str) -> dict:
    """Per condition, the mean and the worst accuracy over fold rows (their ``decision`` tables)."""
    tables = [r["conditions"][decision]["accuracy"] for r in rows]
    table = {name: [t[name] for t in tables] for name in tables[0]}
    return {"mean": {n: float(np.mean(v)) for n, v in table.items()},
            "worst": {n: float(np.min(v)) for n, v in table.items()},
            "mean_of_conditions": float(np.mean([np.mean(v) for v in table.values()]))}


def format_fold_table(result: dict) -> str:
    """Plain text: each condition's mean and worst fold accuracy per decision path."""
    c = result["conditions"]
    lines = ["capture conditions on each fold's held-out speakers, int8: mean over folds (worst fold)",
             f"  {'condition':<12} " + "  ".join(f"{d:>16}" for d in c) + "  description"]
    for name in next(iter(c.values()))["mean"]:
        cells = "  ".join(f"{c[d]['mean'][name]:7.2%} ({c[d]['worst'][name]:6.2%})" for d in c)
        lines.append(f"  {name:<12} {cells}  {DESCRIPTIONS[name]}")
    lines.append(f"  {'mean':<12} " + "  ".join(f"{c[d]['mean_of_conditions']:7.2%}" + " " * 9 for d in c))
    return "\n".join(lines)
