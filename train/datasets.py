"""Spoken-digit corpora on disk: layout detection, clip records, problems, splits.

Two layouts are detected automatically:

* FSDD: ``recordings/{digit}_{speaker}_{take}.wav`` (FSDD: 8 kHz, 6 speakers;
  HD-EN and the synthetic corpora use the same layout at other rates);
* AudioMNIST: ``data/NN/{digit}_{NN}_{take}.wav`` (48 kHz, 60 speakers), with
  ``data/audioMNIST_meta.txt`` (speaker metadata) when present.

``PATH`` may be the corpus root or the ``recordings``/``data`` folder itself.
Files whose names do not parse, or whose speaker disagrees with their folder,
are collected as problems (reported once, in a summary) and skipped.
Several corpora load as one Dataset (``load_many``); each clip keeps the name
of its corpus, and rates may differ (features resample every clip).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from ..errors import EdgeError

FSDD = "fsdd"
AUDIOMNIST = "audiomnist"
SYNTH = "synth"
LABELS = [str(d) for d in range(10)]
UNKNOWN = "unknown"
"""The label of non-digit speech and noise; its clips are named ``unknown_{speaker}_{take}.wav``
(synthetic corpora only, ``python -m audiomnist_edge.train.nondigit``) and get index 10."""
SPLITS = ("random", "speaker", "official")

_NAME = re.compile(r"^(\d+|unknown)_([A-Za-z0-9-]+)_(\d+)$")


def labels_for(classes: np.ndarray) -> list[str]:
    """The labels of a model trained on class indices ``classes``: the digits, plus unknown if present."""
    return LABELS + [UNKNOWN] if np.any(np.asarray(classes) == len(LABELS)) else list(LABELS)


class DatasetError(EdgeError):
    """A folder that holds no recognisable corpus, or a split it cannot make."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One recording: where it is and what it says."""

    path: Path
    digit: int
    speaker: str
    take: int
    synthetic: bool = False
    corpus: str = ""
    """The corpus folder's name (e.g. ``fsdd``, ``hd-en``)."""

    @property
    def name(self) -> str:
        return self.path.name


@dataclasses.dataclass
class Dataset:
    """The clips of one corpus, sorted by path, plus the files that were skipped."""

    root: Path
    layout: str
    clips: list[Clip]
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.clips})

    @property
    def digits(self) -> np.ndarray:
        return np.array([c.digit for c in self.clips], dtype=np.int64)

    @property
    def corpora(self) -> list[str]:
        return sorted({c.corpus for c in self.clips})

    def speakers_by_corpus(self) -> dict[str, list[str]]:
        """Each corpus name -> its sorted speakers."""
        out: dict[str, set[str]] = {}
        for c in self.clips:
            out.setdefault(c.corpus, set()).add(c.speaker)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def subset(self, indices) -> "Dataset":
        return Dataset(self.root, self.layout, [self.clips[i] for i in indices],
                       list(self.problems), self.meta)

    def summary(self) -> dict:
        return {
            "root": str(self.root), "layout": self.layout, "clips": len(self.clips),
            "corpora": self.corpora, "speakers": self.speakers,
            "per_digit": np.bincount(self.digits, minlength=10).tolist() if self.clips else [0] * 10,
            "skipped": len(self.problems),
        }


def problem_summary(problems: list[tuple[str, str]], limit: int = 10) -> str:
    """One paragraph: how many files were skipped, why, and their names."""
    if not problems:
        return ""
    shown = ", ".join(f"{name} ({why})" for name, why in problems[:limit])
    more = f" and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"skipped {len(problems)} file(s): {shown}{more}"


def detect_layout(path: str | Path) -> tuple[str, Path]:
    """(layout, root) of a corpus folder; raises DatasetError when neither matches."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder")
    if (path / "recordings").is_dir():
        return FSDD, path
    if (path / "data").is_dir() and _speaker_dirs(path / "data"):
        return AUDIOMNIST, path
    if path.name == "recordings" and any(path.glob("*.wav")):
        return FSDD, path.parent
    if _speaker_dirs(path):
        return AUDIOMNIST, path.parent if path.name == "data" else path
    raise DatasetError(
        f"{path}: no recognisable corpus (expected recordings/{{digit}}_{{speaker}}_{{take}}.wav "
        "for FSDD or data/NN/{digit}_{NN}_{take}.wav for AudioMNIST)")


def _speaker_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and p.name.isdigit() and any(p.glob("*.wav")))


def _parse(path: Path, problems: list, speaker_folder: str | None = None,
           synthetic: bool = False, corpus: str = "") -> Clip | None:
    match = _NAME.match(path.stem)
    if not match:
        problems.append((path.name, "name is not {digit}_{speaker}_{take}.wav"))
        return None
    digit, speaker, take = match.groups()
    if digit == UNKNOWN:
        if not synthetic:
            problems.append((path.name, "unknown clips belong in a synthetic corpus (--synth)"))
            return None
        return Clip(path, len(LABELS), speaker, int(take), synthetic, corpus)
    if not 0 <= int(digit) <= 9 or len(digit) != 1:
        problems.append((path.name, f"digit {digit} is not 0-9"))
        return None
    if speaker_folder is not None and speaker != speaker_folder:
        problems.append((path.name, f"speaker {speaker} in folder {speaker_folder}"))
        return None
    return Clip(path, int(digit), speaker, int(take), synthetic, corpus)


def load(path: str | Path, synthetic: bool = False) -> Dataset:
    """Scan a corpus folder (either layout) into a Dataset."""
    layout, root = detect_layout(path)
    corpus = root.name
    problems: list[tuple[str, str]] = []
    clips: list[Clip] = []
    meta: dict = {}
    if layout == FSDD:
        for wav in sorted((root / "recordings").iterdir() if (root / "recordings").is_dir()
                          else root.iterdir()):
            if wav.suffix.lower() != ".wav":
                continue
            clip = _parse(wav, problems, synthetic=synthetic, corpus=corpus)
            if clip:
                clips.append(clip)
    else:
        data = root / "data" if (root / "data").is_dir() else root
        for folder in _speaker_dirs(data):
            for wav in sorted(folder.glob("*.wav")):
                clip = _parse(wav, problems, folder.name, synthetic, corpus)
                if clip:
                    clips.append(clip)
        meta_file = data / "audioMNIST_meta.txt"
        if meta_file.is_file():
            try:
                meta = json.loads(meta_file.read_text())
            except (OSError, ValueError) as exc:
                problems.append((meta_file.name, f"unreadable metadata: {exc}"))
    if not clips:
        raise DatasetError(f"{root}: no usable clips ({problem_summary(problems) or 'no WAV files'})")
    return Dataset(root, SYNTH if synthetic else layout, clips, problems, meta)


def load_many(paths, synthetic: bool = False) -> Dataset:
    """Several corpus folders as one Dataset (clips in the order of ``paths``).

    A single path is exactly ``load``. Speakers must be unique across corpora
    (a name in two corpora would put one "speaker" on both sides of a split).
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise DatasetError("no corpus folder given")
    parts = [load(p, synthetic) for p in paths]
    if len(parts) == 1:
        return parts[0]
    seen: dict[str, str] = {}
    for part in parts:
        for speaker in part.speakers:
            other = seen.setdefault(speaker, part.root.name)
            if other != part.root.name:
                raise DatasetError(f"speaker {speaker!r} appears in both {other} and {part.root.name}")
    layouts = list(dict.fromkeys(part.layout for part in parts))
    return Dataset(parts[0].root, "+".join(layouts),
                   [c for part in parts for c in part.clips],
                   [p for part in parts for p in part.problems],
                   {part.root.name: part.meta for part in parts if part.meta})


# ---------------------------------------------------------------- splits


@dataclasses.dataclass(frozen=True)
class Split:
    """Indices into a Dataset's clips. ``val`` may be empty (then carved from train)."""

    name: str
    fold: int | None
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    test_speakers: tuple[str, ...] = ()

    def describe(self) -> str:
        text = self.name
        if self.fold is not None:
            text += f" fold {self.fold}"
        if self.test_speakers:
            text += f" (test speakers: {', '.join(self.test_speakers)})"
        return text


def stratified_random(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices with about test_fraction of each label in test, seeded."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def random_split(ds: Dataset, seed: int = 0, test_fraction: float = 0.25) -> Split:
    """The seed project's split: stratified by digit, 75/25, seeded."""
    train, test = stratified_random(ds.digits, test_fraction, seed)
    return Split("random", None, train, test)


def official_split(ds: Dataset) -> Split:
    """FSDD's official split: takes 0-4 of every speaker and digit are the test set.

    With several corpora, the first one (FSDD) gives the test takes and every
    clip of the others goes to training.
    """
    first = ds.clips[0].corpus if ds.clips else ""
    if ds.layout.split("+")[0] != FSDD or ds.clips[0].synthetic:
        raise DatasetError("the official split exists for FSDD only; use --split speaker or random")
    takes = np.array([c.take for c in ds.clips])
    primary = np.array([c.corpus == first for c in ds.clips])
    test = primary & (takes < 5)
    return Split("official", None, np.flatnonzero(~test), np.flatnonzero(test))


def speaker_groups(ds: Dataset, seed: int = 0) -> list[list[str]]:
    """Disjoint speaker groups for speaker-independent folds.

    One corpus of up to 12 speakers (FSDD): one group per speaker
    (leave-one-speaker-out). Up to 24 speakers (FSDD + HD-EN: 16): 4 groups;
    more (AudioMNIST): 5 groups. Groups are dealt round-robin from each corpus's
    speakers in a seeded order, corpus after corpus, so every group holds
    speakers of every corpus that has enough of them.
    """
    speakers = ds.speakers
    if len(speakers) < 2:
        raise DatasetError("a speaker-independent split needs at least 2 speakers")
    if len(speakers) <= 12 and len(ds.corpora) == 1:
        return [[s] for s in speakers]
    n_groups = min(len(speakers), 4 if len(speakers) <= 24 else 5)
    rng = np.random.default_rng(seed)
    order = [s for group in ds.speakers_by_corpus().values()
             for s in (group[i] for i in rng.permutation(len(group)))]
    return [sorted(order[k::n_groups]) for k in range(n_groups)]


def n_speaker_folds(ds: Dataset, seed: int = 0) -> int:
    return len(speaker_groups(ds, seed))


def speaker_split(ds: Dataset, fold: int = 0, seed: int = 0) -> Split:
    """Fold ``fold`` of the speaker-independent protocol.

    Small corpora: leave-one-speaker-out (test = one speaker, validation carved
    later from the training speakers' clips). Five groups (AudioMNIST, the
    authors' protocol): test = group k, validation = group k+1, train = the
    other three (36/12/12 speakers for 60).
    """
    groups = speaker_groups(ds, seed)
    if not 0 <= fold < len(groups):
        raise DatasetError(f"fold {fold} out of range: this corpus has {len(groups)} speaker folds")
    speakers = np.array([c.speaker for c in ds.clips])
    test = np.flatnonzero(np.isin(speakers, groups[fold]))
    if len(groups) == 5:
        val_group = groups[(fold + 1) % 5]
        val = np.flatnonzero(np.isin(speakers, val_group))
        train = np.flatnonzero(~np.isin(speakers, groups[fold] + val_group))
    else:
        val = np.zeros(0, dtype=np.int64)
        train = np.flatnonzero(~np.isin(speakers, groups[fold]))
    return Split("speaker", fold, train, test, val, tuple(groups[fold]))


def make_split(ds: Dataset, name: str, fold: int | None = None, seed: int = 0) -> Split:
    """Dispatch on the split name: random, speaker (fold, default 0) or official."""
    if name == "random":
        return random_split(ds, seed)
    if name == "official":
        return official_split(ds)
    if name == "speaker":
        return speaker_split(ds, fold or 0, seed)
    raise DatasetError(f"unknown split {name!r} (choose from {', '.join(SPLITS)})")
